#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <hookctl/http/client.hpp>

namespace hookctl::http {
namespace {

struct EasyDeleter {
    void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct MultiDeleter {
    void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct SlistDeleter {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// curl_global_init once per process, before any thread might race on it.
bool global_init() {
    static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    return ok;
}

// One transfer in flight: the request bytes it points into and the response it fills.
struct Transfer {
    EasyPtr easy;
    Request request;
    SlistPtr header_list;
    Response response;
    Client::Completion done;
    std::size_t body_limit = 0;
    std::chrono::steady_clock::time_point started;
    std::optional<std::chrono::steady_clock::time_point> launched; // libcurl's first run of it
    char error_buffer[CURL_ERROR_SIZE] = {};
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::size_t n = size * count;
    std::size_t room =
        t->body_limit > t->response.body.size() ? t->body_limit - t->response.body.size() : 0;
    t->response.body.append(data, std::min(n, room));
    return n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::size_t n = size * count;
    std::string_view line(data, n);
    if (line.starts_with("HTTP/")) {
        // A new response (after 100 Continue or a redirect): keep only the last one's headers.
        t->response.headers = util::HeaderList{};
        return n;
    }
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
        line.remove_suffix(1);
    }
    auto colon = line.find(':');
    if (colon != std::string_view::npos && colon > 0) {
        t->response.headers.add(std::string(line.substr(0, colon)),
                                std::string(util::trim(line.substr(colon + 1))));
    }
    return n;
}

std::string describe_curl_error(CURLcode code, const char* detail) {
    switch (code) {
    case CURLE_COULDNT_CONNECT:
        return std::string("connection failed") + (detail[0] ? std::string(": ") + detail : "");
    case CURLE_COULDNT_RESOLVE_HOST:
        return std::string("cannot resolve host") + (detail[0] ? std::string(": ") + detail : "");
    case CURLE_OPERATION_TIMEDOUT:
        return "timed out";
    case CURLE_GOT_NOTHING:
        return "connection closed without a response";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        return std::string("connection reset") + (detail[0] ? std::string(": ") + detail : "");
    default:
        return detail[0] ? std::string(detail) : std::string(curl_easy_strerror(code));
    }
}

// The TLS settings every request of a client shares: the CAs trusted and the client
// certificate. The certificate and key go to libcurl as the bytes resolve_tls_client checked
// (copied by libcurl), so a file changed since is not read half-way.
void set_tls_options(CURL* e, const TlsClient& tls) {
    if (tls.trust.ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO,
                         tls.trust.ca_file->empty() ? nullptr : tls.trust.ca_file->c_str());
    }
    if (tls.trust.ca_path) {
        curl_easy_setopt(e, CURLOPT_CAPATH,
                         tls.trust.ca_path->empty() ? nullptr : tls.trust.ca_path->c_str());
    }
    if (!tls.client_cert) {
        return;
    }
    const ClientCertificate& c = *tls.client_cert;
    curl_blob cert{const_cast<char*>(c.cert_pem.data()), c.cert_pem.size(), CURL_BLOB_COPY};
    curl_blob key{const_cast<char*>(c.key_pem.view().data()), c.key_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    if (!c.key_passphrase.empty()) {
        std::string passphrase(c.key_passphrase.view()); // libcurl copies it
        curl_easy_setopt(e, CURLOPT_KEYPASSWD, passphrase.c_str());
        OPENSSL_cleanse(passphrase.data(), passphrase.size());
    }
}

// Ends a transfer libcurl would not start: its completion runs at once, with a transport
// error, and nothing went out (sent_at and done_at are now, as for any response).
void refuse(Transfer& t, std::string_view why) {
    t.response.transport_error = "cannot start the request: " + std::string(why);
    t.response.curl_code = -1;
    t.response.sent_at = std::chrono::steady_clock::now();
    t.response.done_at = t.response.sent_at;
    Client::Completion done = std::move(t.done);
    if (done) {
        done(std::move(t.response));
    }
}

} // namespace

struct Client::Impl {
    ClientOptions options;
    std::unordered_map<CURL*, std::unique_ptr<Transfer>> active;
    std::vector<EasyPtr> idle;      // easy handles kept for reuse, with the shared options
    std::atomic<bool> woken{false}; // wakeup() was called: poll() returns
    // libcurl's sockets, the deadline timer and the wakeup eventfd, waited on together. libcurl
    // says which sockets to watch (on_socket) and when its own timeouts fall due (on_timer);
    // each ready socket is handed to curl_multi_socket_action with its events, so libcurl
    // neither rescans every transfer nor polls each socket again to learn what is ready.
    int epoll = ::epoll_create1(EPOLL_CLOEXEC);
    int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    // Armed to the next wait's end (poll_until's deadline or libcurl's timeout, whichever comes
    // first), to the microsecond; -1 when the kernel has no timerfd, and poll then waits whole
    // milliseconds, at least one.
    int timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    std::optional<std::chrono::steady_clock::time_point> armed; // the timer's expiry, if set
    // When libcurl wants curl_multi_socket_action(CURL_SOCKET_TIMEOUT); none: no timeout set.
    std::optional<std::chrono::steady_clock::time_point> curl_due;
    std::vector<Transfer*> unlaunched; // started, not yet run by libcurl (see Response::sent_at)
    MultiPtr multi; // last: cleaned up first, while the callbacks' state above still exists

    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
    ~Impl() {
        if (multi) {
            for (auto& [easy, t] : active) {
                curl_multi_remove_handle(multi.get(), easy);
            }
            active.clear();
            multi.reset();
        }
        for (int fd : {timer, wake, epoll}) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }

    bool ready() const { return epoll >= 0 && wake >= 0; }

    // Watches one more fd for reading; false when epoll refuses it.
    bool watch(int fd) const {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        return ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) == 0;
    }

    // CURLMOPT_SOCKETFUNCTION: what to watch on one of libcurl's sockets.
    static int on_socket(CURL*, curl_socket_t fd, int what, void* user, void*) {
        auto* self = static_cast<Impl*>(user);
        if (what == CURL_POLL_REMOVE) {
            ::epoll_ctl(self->epoll, EPOLL_CTL_DEL, fd, nullptr); // may be closed already
            return 0;
        }
        epoll_event ev{};
        ev.events = ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0U) |
                    ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0U);
        ev.data.fd = fd;
        if (::epoll_ctl(self->epoll, EPOLL_CTL_MOD, fd, &ev) == 0) {
            return 0;
        }
        // Not watched yet (or the fd number was closed and reused): add it.
        return errno == ENOENT && ::epoll_ctl(self->epoll, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -1;
    }

    // CURLMOPT_TIMERFUNCTION: when libcurl's next timeout falls due (-1: none).
    static int on_timer(CURLM*, long timeout_ms, void* user) {
        auto* self = static_cast<Impl*>(user);
        if (timeout_ms < 0) {
            self->curl_due.reset();
        } else {
            self->curl_due =
                std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        }
        return 0;
    }

    // Arms the timer to fire at `deadline` (steady_clock is CLOCK_MONOTONIC); false when it
    // cannot, and the caller waits in milliseconds instead.
    bool arm_timer(std::chrono::steady_clock::time_point deadline) {
        if (timer < 0) {
            return false;
        }
        if (armed == deadline) {
            return true; // still armed for it: no system call
        }
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch())
                      .count();
        itimerspec spec{};
        spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) {
            spec.it_value.tv_nsec = 1; // all zero would disarm it
        }
        if (::timerfd_settime(timer, TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
            armed.reset();
            return false;
        }
        armed = deadline;
        return true;
    }

    // Runs libcurl's timeouts when they are due.
    Result<void> run_timeouts() {
        auto now = std::chrono::steady_clock::now();
        if (!curl_due || now < *curl_due) {
            return {};
        }
        curl_due.reset(); // libcurl sets the next one from inside the call
        // Transfers added since the last run start in this call: it is when they begin to go.
        auto acted = socket_action(CURL_SOCKET_TIMEOUT, 0);
        for (Transfer* t : unlaunched) {
            t->launched = now;
        }
        unlaunched.clear();
        return acted;
    }

    Result<void> socket_action(curl_socket_t fd, int events) {
        int running = 0;
        CURLMcode mc = curl_multi_socket_action(multi.get(), fd, events, &running);
        if (mc != CURLM_OK) {
            return fail(ExitCode::environment,
                        std::string("libcurl multi interface failed: ") + curl_multi_strerror(mc));
        }
        return {};
    }

    // Runs the completions of finished transfers; true when there was at least one.
    bool reap() {
        bool any = false;
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi.get(), &queued)) {
            if (msg->msg == CURLMSG_DONE) {
                finish(msg->easy_handle, msg->data.result);
                any = true;
            }
        }
        return any;
    }

    // Waits until `until` or until an fd is ready, and hands ready sockets to libcurl.
    Result<void> wait(std::chrono::steady_clock::time_point until) {
        auto now = std::chrono::steady_clock::now();
        int wait_ms = -1; // the timer ends the wait, to the microsecond
        if (!arm_timer(until)) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
            wait_ms = static_cast<int>(std::clamp<std::int64_t>(left, 1, 60'000));
        }
        std::array<epoll_event, 64> events{};
        int n = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), wait_ms);
        if (n < 0) {
            if (errno == EINTR) {
                return {};
            }
            return fail(ExitCode::environment,
                        std::string("waiting for the network failed: ") + std::strerror(errno));
        }
        for (int i = 0; i < n; ++i) {
            int fd = events[static_cast<std::size_t>(i)].data.fd;
            std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
            if (fd == timer || fd == wake) {
                std::uint64_t count = 0;
                (void)!::read(fd, &count, sizeof count); // drain it; nonblocking
                if (fd == timer) {
                    armed.reset();
                }
                continue;
            }
            // A hang-up or error is read like data: libcurl then sees the real error (reset,
            // closed) or the response that came before it.
            int mask = ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 ? CURL_CSELECT_IN : 0) |
                       ((ev & EPOLLOUT) != 0 ? CURL_CSELECT_OUT : 0) |
                       ((ev & EPOLLERR) != 0 ? CURL_CSELECT_ERR : 0);
            auto acted = socket_action(fd, mask);
            if (!acted) {
                return acted;
            }
        }
        return {};
    }

    // An easy handle with the options every request of this client shares; a reused one keeps
    // them (start() sets each per-request option, so nothing of the last request leaks).
    EasyPtr take_easy() {
        if (!idle.empty()) {
            EasyPtr easy = std::move(idle.back());
            idle.pop_back();
            return easy;
        }
        EasyPtr easy(curl_easy_init());
        if (!easy) {
            return easy;
        }
        CURL* e = easy.get();
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(options.connect_timeout.count()));
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options.total_timeout.count()));
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "hookctl/" HOOKCTL_VERSION);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, options.insecure ? 0L : 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, options.insecure ? 0L : 2L);
        set_tls_options(e, options.tls);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        return easy;
    }

    void finish(CURL* easy, CURLcode code) {
        auto it = active.find(easy);
        if (it == active.end()) {
            return;
        }
        std::unique_ptr<Transfer> t = std::move(it->second);
        active.erase(it);
        std::erase(unlaunched, t.get());
        curl_multi_remove_handle(multi.get(), easy);
        Response& r = t->response;
        r.done_at = std::chrono::steady_clock::now();
        r.latency = std::chrono::duration_cast<std::chrono::microseconds>(r.done_at - t->started);
        curl_off_t pretransfer_us = 0;
        curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
        r.sent_at = t->launched.value_or(t->started) + std::chrono::microseconds(pretransfer_us);
        r.curl_code = static_cast<int>(code);
        if (code == CURLE_OK) {
            long status = 0;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
            r.status = status;
            long version = 0;
            curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
            r.http_version = version == CURL_HTTP_VERSION_2_0   ? "2"
                             : version == CURL_HTTP_VERSION_3   ? "3"
                             : version == CURL_HTTP_VERSION_1_0 ? "1.0"
                                                                : "1.1";
        } else {
            r.status = 0;
            r.timed_out = code == CURLE_OPERATION_TIMEDOUT;
            auto tls = describe_tls_failure(code, t->error_buffer, options.tls.trust,
                                            options.tls.client_cert.has_value(), options.tls.names);
            if (tls) {
                r.transport_error = std::move(tls->message);
                r.tls_failed = true;
                r.tls_permanent = tls->permanent;
            } else {
                r.transport_error = describe_curl_error(code, t->error_buffer);
            }
        }
        if (idle.size() < options.max_connections) {
            idle.push_back(std::move(t->easy));
        }
        Completion done = std::move(t->done);
        Response out = std::move(t->response);
        t.reset();
        if (done) {
            done(std::move(out));
        }
    }
};

Client::Client(std::unique_ptr<Impl> impl)
    : m_impl(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::create(const ClientOptions& options) {
    if (!global_init()) {
        return fail(ExitCode::environment, "cannot initialise libcurl (curl_global_init failed)");
    }
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    if (!impl->ready() || !impl->watch(impl->wake) ||
        (impl->timer >= 0 && !impl->watch(impl->timer))) {
        return fail(ExitCode::environment,
                    std::string("cannot set up waiting for the network (epoll, eventfd): ") +
                        std::strerror(errno) + "; check the open-file limit (ulimit -n)");
    }
    impl->multi.reset(curl_multi_init());
    if (!impl->multi) {
        return fail(ExitCode::environment, "cannot initialise libcurl's multi interface");
    }
    curl_multi_setopt(impl->multi.get(), CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
    curl_multi_setopt(impl->multi.get(), CURLMOPT_SOCKETDATA, impl.get());
    curl_multi_setopt(impl->multi.get(), CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
    curl_multi_setopt(impl->multi.get(), CURLMOPT_TIMERDATA, impl.get());
    curl_multi_setopt(impl->multi.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(impl->multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS,
                      static_cast<long>(options.max_connections));
    curl_multi_setopt(impl->multi.get(), CURLMOPT_MAXCONNECTS,
                      static_cast<long>(options.max_connections));
    return Client(std::move(impl));
}

void Client::start(Request request, Completion done) {
    auto t = std::make_unique<Transfer>();
    t->easy = m_impl->take_easy();
    t->request = std::move(request);
    t->done = std::move(done);
    t->body_limit = m_impl->options.body_limit;
    CURL* easy = t->easy.get();
    if (easy == nullptr) {
        refuse(*t, "libcurl is out of memory");
        return;
    }

    // Per request; the options every request shares were set when the handle was made.
    const std::string& method = t->request.method;
    curl_easy_setopt(easy, CURLOPT_URL, t->request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error_buffer);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, nullptr);
    if (method == "POST" || method == "PUT" || method == "PATCH") {
        curl_easy_setopt(easy, CURLOPT_POST, 1L); // also clears a HEAD's NOBODY
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->request.body.data());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(t->request.body.size()));
        if (method != "POST") {
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
        }
    } else {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, nullptr); // the last request's body is gone
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);         // clears a POST and a HEAD's NOBODY
        if (method == "HEAD") {
            curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        } else if (method != "GET") {
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
        }
    }
    curl_slist* list = nullptr;
    // No `Expect: 100-continue` round trip for larger bodies.
    list = curl_slist_append(list, "Expect:");
    for (const auto& [name, value] : t->request.headers.entries()) {
        std::string line = value.empty() ? name + ";" : name + ": " + value;
        list = curl_slist_append(list, line.c_str());
    }
    t->header_list.reset(list);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());

    t->started = std::chrono::steady_clock::now();
    CURLMcode added = curl_multi_add_handle(m_impl->multi.get(), easy);
    if (added != CURLM_OK) {
        refuse(*t, curl_multi_strerror(added));
        return;
    }
    m_impl->unlaunched.push_back(t.get());
    m_impl->active.emplace(easy, std::move(t));
}

Result<void> Client::poll_until(std::chrono::steady_clock::time_point deadline) {
    Impl& m = *m_impl;
    while (true) {
        auto timed = m.run_timeouts();
        if (!timed) {
            return timed;
        }
        if (m.reap() || m.woken.exchange(false)) {
            return {};
        }
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
            return {};
        }
        auto until = m.curl_due ? std::min(deadline, *m.curl_due) : deadline;
        if (until <= now) {
            continue; // libcurl's timeout is due: run it first
        }
        auto waited = m.wait(until);
        if (!waited) {
            return waited;
        }
    }
}

void Client::wakeup() {
    m_impl->woken.store(true);
    std::uint64_t one = 1;
    (void)!::write(m_impl->wake, &one, sizeof one); // nonblocking; a full counter wakes anyway
}

std::size_t Client::in_flight() const {
    return m_impl->active.size();
}

Result<Response> Client::perform(Request request) {
    bool finished = false;
    Response out;
    start(std::move(request), [&](Response&& r) {
        out = std::move(r);
        finished = true;
    });
    while (!finished) {
        auto polled = poll(std::chrono::milliseconds(1000));
        HOOKCTL_RETURN_IF_ERROR(polled);
    }
    return out;
}

std::string curl_version() {
    return ::curl_version();
}

} // namespace hookctl::http
