// The HTTP side of `hookctl listen`: every Boost.Beast/Asio use of hookctl is in this one
// translation unit (Beast is slow to compile).
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/range/iterator_range.hpp>
#include <openssl/ssl.h>

#include <hookctl/receive/accept_backoff.hpp>
#include <hookctl/receive/server.hpp>
#include <hookctl/receive/tls.hpp>
#include <hookctl/util/signals.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/watch.hpp>

namespace hookctl::receive {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string json_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                static constexpr char k_hex[] = "0123456789abcdef";
                out += "\\u00";
                out += k_hex[(static_cast<unsigned char>(c) >> 4U) & 0xfU];
                out += k_hex[static_cast<unsigned char>(c) & 0xfU];
            } else {
                out += c;
            }
        }
    }
    return out;
}

class SessionBase {
public:
    virtual ~SessionBase() = default;
    // Posts to the session's strand: close the connection if it waits for a new request, and
    // after the current answer otherwise.
    virtual void request_close() = 0;
};

// What every session shares.
struct ServerState {
    ServerState(const ListenOptions& o, KeyStore& k, GroupCommitter& c, Metrics& m,
                const ServerHooks& h)
        : options(o)
        , keys(k)
        , committer(c)
        , metrics(m)
        , hooks(h)
        , faults(o.faults)
        , budget(o.max_buffered) {
        metrics.watch_budget(&budget);
    }
    ~ServerState() { metrics.watch_budget(nullptr); }
    ServerState(const ServerState&) = delete;
    ServerState& operator=(const ServerState&) = delete;

    const ListenOptions& options;
    KeyStore& keys;
    GroupCommitter& committer;
    Metrics& metrics;
    const ServerHooks& hooks;
    FaultPlan faults;
    BodyBudget budget;
    std::atomic<std::uint64_t> sequence{0};
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> store_failures{0};

    std::mutex sessions_mutex;
    std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;

    void add(SessionBase* key, std::weak_ptr<SessionBase> session) {
        std::lock_guard lock(sessions_mutex);
        sessions.emplace(key, std::move(session));
    }
    void remove(SessionBase* key) {
        std::lock_guard lock(sessions_mutex);
        sessions.erase(key);
    }
    std::vector<std::shared_ptr<SessionBase>> live() {
        std::vector<std::shared_ptr<SessionBase>> out;
        std::lock_guard lock(sessions_mutex);
        for (auto& [key, weak] : sessions) {
            if (auto s = weak.lock()) {
                out.push_back(std::move(s));
            }
        }
        return out;
    }
};

// The transfer coding of `req` other than chunked, if any (`gzip, chunked`): hookctl does not
// decode them, and must not store the coded bytes as if they were the body (501).
template <class Request>
std::optional<std::string> unsupported_transfer_coding(const Request& req) {
    auto [first, last] = req.equal_range(http::field::transfer_encoding);
    for (auto field = first; field != last; ++field) {
        std::string_view value(field->value().data(), field->value().size());
        while (!value.empty()) {
            auto comma = value.find(',');
            auto token = util::trim(value.substr(0, comma));
            if (!token.empty() && !util::iequals(token, "chunked")) {
                return std::string(field->value());
            }
            if (comma == std::string_view::npos) {
                break;
            }
            value.remove_prefix(comma + 1);
        }
    }
    return std::nullopt;
}

bool is_disconnect(const beast::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
           ec == beast::error::timeout || ec == asio::error::broken_pipe ||
           ec == asio::error::not_connected || ec == asio::ssl::error::stream_truncated;
}

// One connection: reads requests one after another (pipelined requests are answered in order
// because the next one is read only after the previous answer is written).
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
public:
    static constexpr bool k_tls = !std::is_same_v<Stream, beast::tcp_stream>;

    Session(Stream stream, ServerState& state, std::string peer)
        : m_stream(std::move(stream))
        , m_state(state)
        , m_peer(std::move(peer))
        , m_timer(m_stream.get_executor())
        , m_deadline(m_stream.get_executor())
        , m_reservation(state.budget) {}

    ~Session() override { m_state.remove(this); }

    void start() {
        m_state.add(this, this->weak_from_this());
        if constexpr (k_tls) {
            lowest().expires_after(m_state.options.header_timeout);
            m_stream.async_handshake(ssl::stream_base::server,
                                     [self = this->shared_from_this()](beast::error_code ec) {
                                         if (ec) {
                                             self->on_handshake_failed(ec);
                                             self->close();
                                             return;
                                         }
                                         self->on_handshake();
                                         self->read_header();
                                     });
        } else {
            asio::dispatch(m_stream.get_executor(),
                           [self = this->shared_from_this()] { self->read_header(); });
        }
    }

    void request_close() override {
        asio::post(m_stream.get_executor(),
                   [self = this->shared_from_this()] { self->close_if_idle(); });
    }

private:
    // The verified client certificate (--tls-client-ca): its subject goes with every event and
    // log line of the connection.
    void on_handshake() {
        if constexpr (k_tls) {
            if (m_state.options.tls_client_ca.empty()) {
                return;
            }
            m_client_identity = peer_identity(m_stream.native_handle()).text();
        }
    }

    // A client refused in the handshake for its certificate is counted and logged; other
    // failed handshakes (scanners, plain HTTP on the TLS port) are dropped quietly as before.
    void on_handshake_failed(const beast::error_code& ec) {
        if constexpr (k_tls) {
            if (m_state.options.tls_client_ca.empty() ||
                ec.category() != asio::error::get_ssl_category()) {
                return;
            }
            std::string detail;
            auto reason = handshake_refusal(m_stream.native_handle(),
                                            static_cast<unsigned long>(ec.value()), detail);
            if (reason.empty()) {
                return;
            }
            m_state.metrics.record_tls_refusal(reason);
            if (m_state.hooks.on_request) {
                RequestRecord record;
                record.method = "-";
                record.target = "-";
                record.peer = m_peer;
                record.reason_code = std::string(reason);
                record.reason = "refused in the TLS handshake: " + detail;
                m_state.hooks.on_request(record);
            }
        }
    }

    // --allow-from / --trust-proxy, from the headers alone: a refused source gets 403 and the
    // connection is closed without reading the body. False when it was refused.
    bool admit(const http::request<http::string_body>& req) {
        const AccessOptions& access = m_state.options.access;
        if (!access.any()) {
            return true;
        }
        if (!m_peer_address) {
            beast::error_code ignored;
            auto remote = lowest().socket().remote_endpoint(ignored);
            if (!ignored) {
                m_peer_address = util::parse_ip(remote.address().to_string());
            }
        }
        if (!m_peer_address) {
            respond_and_close(403, "source_not_allowed", "the source address is unknown");
            return false;
        }
        std::vector<std::string_view> forwarded;
        std::vector<std::string_view> x_forwarded_for;
        if (!access.trusted_proxies.empty()) {
            for (const auto& f :
                 boost::make_iterator_range(req.equal_range(http::field::forwarded))) {
                forwarded.emplace_back(f.value().data(), f.value().size());
            }
            for (const auto& f : boost::make_iterator_range(req.equal_range("X-Forwarded-For"))) {
                x_forwarded_for.emplace_back(f.value().data(), f.value().size());
            }
        }
        auto decision = decide_access(access, *m_peer_address, forwarded, x_forwarded_for);
        if (decision.client.forwarded) {
            m_client = decision.client.text;
        }
        if (!decision.allowed) {
            respond_and_close(403, "source_not_allowed", decision.reason);
            return false;
        }
        return true;
    }

    void close_if_idle() {
        m_closing = true;
        if (m_idle) {
            close();
        }
    }

    beast::tcp_stream& lowest() { return beast::get_lowest_layer(m_stream); }

    // Reads are timed by m_deadline, not by the stream's own timer (which closes the socket):
    // when the peer is too slow, the read is cancelled and it gets 408 before the close.
    void arm_deadline(std::chrono::milliseconds timeout) {
        lowest().expires_never();
        m_timed_out = false;
        auto generation = ++m_deadline_generation;
        m_deadline.expires_after(timeout);
        m_deadline.async_wait([self = this->shared_from_this(), generation](beast::error_code ec) {
            if (ec || generation != self->m_deadline_generation) {
                return; // re-armed or disarmed meanwhile
            }
            self->m_timed_out = true;
            beast::error_code ignored;
            self->lowest().socket().cancel(ignored);
        });
    }

    void disarm_deadline() {
        ++m_deadline_generation;
        m_deadline.cancel();
    }

    // The pending read ended because m_deadline fired.
    bool timed_out(const beast::error_code& ec) const {
        return m_timed_out && ec == asio::error::operation_aborted;
    }

    void read_header() {
        if (m_state.stopping.load() && m_buffer.size() == 0) {
            close();
            return;
        }
        m_idle = m_buffer.size() == 0;
        m_parser.emplace();
        m_parser->header_limit(static_cast<std::uint32_t>(m_state.options.max_header_bytes));
        m_parser->body_limit(m_state.options.max_body);
        m_event_id.clear();
        m_trace_id.clear();
        m_verified_by.clear();
        m_headers = {};
        m_client.clear();
        m_stored.reset();
        m_reservation.release();
        m_delay = {};
        m_keep_alive = true;
        m_linger = false;
        m_version = 11;
        arm_deadline(m_state.options.header_timeout);
        http::async_read_header(m_stream, m_buffer, *m_parser,
                                [self = this->shared_from_this()](
                                    beast::error_code ec, std::size_t) { self->on_header(ec); });
    }

    void on_header(beast::error_code ec) {
        disarm_deadline();
        m_idle = false;
        m_start = Clock::now();
        if (timed_out(ec)) {
            if (m_buffer.size() == 0) {
                close(); // an idle keep-alive connection: nothing to answer
                return;
            }
            m_method = "-";
            m_target = "-";
            respond_early(408, "header_timeout",
                          "the request headers did not arrive within --header-timeout");
            return;
        }
        if (ec == http::error::body_limit) {
            m_method = "POST";
            m_target = "-";
            respond_early(413, "too_large",
                          "body over the limit of " + std::to_string(m_state.options.max_body) +
                              " bytes");
            return;
        }
        if (ec == http::error::header_limit) {
            m_method = "-";
            m_target = "-";
            respond_early(431, "headers_too_large",
                          "request headers larger than " +
                              std::to_string(m_state.options.max_header_bytes) + " bytes");
            return;
        }
        if (ec) {
            if (is_disconnect(ec) || m_closing) {
                close();
                return;
            }
            m_method = "-";
            m_target = "-";
            respond_early(400, "bad_request", "malformed HTTP request: " + ec.message());
            return;
        }
        auto& req = m_parser->get();
        m_method = std::string(req.method_string());
        m_target = std::string(req.target());
        m_keep_alive = req.keep_alive();
        m_version = req.version();
        if (!admit(req)) {
            return;
        }
        auto count = static_cast<std::size_t>(std::distance(req.begin(), req.end()));
        if (count > m_state.options.max_header_count) {
            respond_early(431, "headers_too_large",
                          std::to_string(count) + " request headers, more than the limit of " +
                              std::to_string(m_state.options.max_header_count));
            return;
        }
        std::string_view path(req.target().data(), req.target().size());
        if (auto q = path.find('?'); q != std::string_view::npos) {
            path = path.substr(0, q);
        }
        // Routes other than the webhook do not read a body: answered, then closed if one came.
        bool has_body = !m_parser->is_done();
        if (auto coding = unsupported_transfer_coding(req)) {
            respond_early(501, "transfer_coding",
                          "Transfer-Encoding '" + *coding +
                              "' is not supported: send the body without a transfer coding "
                              "other than chunked");
            return;
        }
        if (path != m_state.options.path) {
            if (has_body) {
                m_keep_alive = false;
                m_linger = true;
            }
            std::string why;
            if (path == "/healthz" &&
                (req.method() == http::verb::get || req.method() == http::verb::head)) {
                if (m_state.committer.healthy(&why)) {
                    respond(200, "healthz", "ok\n", "text/plain");
                } else {
                    // The archive cannot be written: events would get 503, so should this.
                    m_retry_after = std::chrono::seconds(1);
                    respond(503, "healthz", "archive unavailable: " + why + "\n", "text/plain");
                }
            } else if (path == "/metrics" && req.method() == http::verb::get) {
                respond(200, "metrics", m_state.metrics.render(),
                        "text/plain; version=0.0.4; charset=utf-8");
            } else if (path == "/metrics" || path == "/healthz") {
                respond(405, "method_not_allowed", "use GET\n", "text/plain");
            } else {
                respond(404, "not_found",
                        "no such path: webhooks go to " + m_state.options.path + "\n",
                        "text/plain");
            }
            return;
        }
        if (req.method() != http::verb::post) {
            if (has_body) {
                m_keep_alive = false;
                m_linger = true;
            }
            respond(405, "method_not_allowed", "webhooks are POSTed\n", "text/plain");
            return;
        }
        if (auto length = m_parser->content_length();
            length && *length > m_state.options.max_body) {
            respond_early(413, "too_large",
                          "body of " + std::to_string(*length) + " bytes is over the limit of " +
                              std::to_string(m_state.options.max_body) + " bytes");
            return;
        }
        // What the headers alone can refuse is refused before a byte of the body is held.
        for (const auto& field : req) {
            m_headers.add(std::string(field.name_string()), std::string(field.value()));
        }
        if (auto tp = m_headers.find("traceparent")) {
            m_trace_id = trace_id_of(*tp);
        }
        if (auto refused =
                check_request_headers(m_state.options.check, m_headers, util::unix_now_ms())) {
            m_state.metrics.record_verification_failure(refused->reason_code);
            if (has_body) {
                respond_early(refused->status, refused->reason_code, refused->reason);
            } else {
                respond(refused->status, refused->reason_code, refused->reason + "\n",
                        "text/plain");
            }
            return;
        }
        if (!m_reservation.hold(m_parser->content_length().value_or(0))) {
            refuse_over_budget();
            return;
        }
        auto expect = req[http::field::expect];
        if (!m_parser->is_done() && beast::iequals(expect, "100-continue")) {
            m_continue.emplace(http::status::continue_, 11);
            lowest().expires_after(m_state.options.body_timeout);
            http::async_write(
                m_stream, *m_continue,
                [self = this->shared_from_this()](beast::error_code wec, std::size_t) {
                    if (wec) {
                        self->close();
                        return;
                    }
                    self->read_body();
                });
            return;
        }
        read_body();
    }

    // Reads the body part by part: a chunked body (no Content-Length) takes its bytes from the
    // budget as they come, and is refused (503) once they do not fit.
    void read_body() {
        arm_deadline(m_state.options.body_timeout);
        read_body_part();
    }

    void read_body_part() {
        http::async_read_some(m_stream, m_buffer, *m_parser,
                              [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                                  self->on_body_part(ec);
                              });
    }

    void on_body_part(beast::error_code ec) {
        if (!ec && !m_parser->is_done()) {
            if (!m_reservation.hold(m_parser->get().body().size())) {
                disarm_deadline();
                refuse_over_budget();
                return;
            }
            read_body_part();
            return;
        }
        disarm_deadline();
        on_body(ec);
    }

    void refuse_over_budget() {
        m_retry_after = m_state.options.overload_retry_after;
        respond_early(503, "buffer_full",
                      "more than " + std::to_string(m_state.budget.limit()) +
                          " bytes of request bodies are waiting for their signature check "
                          "(--max-buffered); retry later");
    }

    void on_body(beast::error_code ec) {
        if (timed_out(ec)) {
            respond_early(408, "body_timeout",
                          "the request body did not arrive within --body-timeout");
            return;
        }
        if (ec == http::error::body_limit) {
            respond_early(413, "too_large",
                          "body over the limit of " + std::to_string(m_state.options.max_body) +
                              " bytes");
            return;
        }
        if (ec) {
            if (is_disconnect(ec)) {
                record_drop("client_gone", "connection closed or timed out while reading the "
                                           "body: " +
                                               ec.message());
                close();
                return;
            }
            respond_early(400, "bad_request", "malformed HTTP body: " + ec.message());
            return;
        }
        auto req = m_parser->release();
        auto now_ms = util::unix_now_ms();
        auto keys = m_state.keys.current(now_ms / 1000);
        auto checked =
            check_request(m_state.options.check, *keys, m_headers, std::move(req.body()), now_ms);
        m_reservation.release(); // checked: the body no longer counts against --max-buffered
        checked.event.client_identity = m_client_identity;
        if (checked.status != 0) {
            m_state.metrics.record_verification_failure(checked.reason_code);
            respond(checked.status, checked.reason_code, checked.reason + "\n", "text/plain");
            return;
        }
        m_event_id = checked.event.event_id;
        m_verified_by = checked.event.verified_by;
        m_state.metrics.record_verified(m_verified_by);
        auto fault = m_state.faults.decide(m_state.sequence.fetch_add(1), checked.event.event_id);
        m_delay = fault.latency;
        using Kind = FaultDecision::Kind;
        switch (fault.kind) {
        case Kind::drop:
            m_state.metrics.record_fault("drop");
            after_delay([self = this->shared_from_this()] {
                self->record_drop("fault_drop", "injected: connection dropped (--drop-rate)");
                self->close();
            });
            return;
        case Kind::fail_first:
        case Kind::fail: {
            bool first = fault.kind == Kind::fail_first;
            m_state.metrics.record_fault(first ? "fail_first" : "fail");
            int status = m_state.options.faults.fail_status;
            respond(status, std::string(fault.reason()),
                    first ? "injected failure (--fail-first)\n"
                          : "injected failure (--fail-rate)\n",
                    "text/plain");
            return;
        }
        case Kind::throttle:
            m_state.metrics.record_fault("throttle");
            m_retry_after = m_state.options.faults.retry_after;
            respond(429, "fault_throttle", "injected throttle (--throttle-rate)\n", "text/plain");
            return;
        case Kind::none:
            break;
        }
        if (m_state.metrics.inflight() >= static_cast<std::int64_t>(m_state.options.max_inflight)) {
            m_retry_after = m_state.options.overload_retry_after;
            respond(429, "overloaded",
                    "more than " + std::to_string(m_state.options.max_inflight) +
                        " events waiting to be committed; retry later\n",
                    "text/plain");
            return;
        }
        m_state.metrics.add_inflight(1);
        if (m_state.hooks.on_stored) {
            m_stored = StoredEvent{checked.event.event_id, checked.event.scheme, checked.event.body,
                                   checked.event.trace_id};
        }
        auto guard = asio::make_work_guard(m_stream.get_executor());
        m_state.committer.submit(std::move(checked.event), [self = this->shared_from_this(),
                                                            guard](StoreResult result) mutable {
            auto executor = guard.get_executor();
            asio::post(executor, [self, result, g = std::move(guard)]() mutable {
                self->on_committed(result);
                g.reset();
            });
        });
    }

    void on_committed(StoreResult result) {
        m_state.metrics.add_inflight(-1);
        auto body = [&](std::string_view status) {
            return "{\"status\":\"" + std::string(status) + "\",\"event_id\":\"" +
                   json_escape(m_event_id) + "\"}\n";
        };
        switch (result) {
        case StoreResult::inserted:
            m_state.metrics.record_stored();
            respond(202, "accepted", body("accepted"), "application/json");
            if (m_stored) {
                m_state.hooks.on_stored(std::move(*m_stored));
                m_stored.reset();
            }
            return;
        case StoreResult::duplicate:
            m_state.metrics.record_duplicate();
            respond(200, "duplicate", body("duplicate"), "application/json");
            return;
        case StoreResult::failed:
            m_state.store_failures.fetch_add(1);
            m_retry_after = std::chrono::seconds(1);
            respond(503, "archive_unavailable",
                    "the archive could not be written; the event was not stored\n", "text/plain");
            return;
        }
    }

    template <class F> void after_delay(F&& then) {
        if (m_delay.count() <= 0) {
            then();
            return;
        }
        m_timer.expires_after(m_delay);
        m_timer.async_wait([then = std::forward<F>(then)](beast::error_code) { then(); });
    }

    void log(int status, std::string reason_code, std::string reason) {
        RequestRecord record;
        record.method = m_method;
        record.target = m_target;
        record.peer = m_peer;
        record.status = status;
        record.reason_code = std::move(reason_code);
        record.reason = std::move(reason);
        record.event_id = m_event_id;
        record.trace_id = m_trace_id;
        record.verified_by = m_verified_by;
        record.client = m_client;
        record.client_identity = m_client_identity;
        record.latency =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - m_start) +
            std::chrono::duration_cast<std::chrono::microseconds>(m_delay);
        m_state.metrics.record_request(status, record.reason_code, record.latency);
        if (m_state.hooks.on_request && record.reason_code != "metrics" &&
            record.reason_code != "healthz") {
            m_state.hooks.on_request(record);
        }
    }

    void record_drop(std::string reason_code, std::string reason) {
        log(0, std::move(reason_code), std::move(reason));
    }

    void respond_and_close(int status, std::string reason_code, std::string reason) {
        m_keep_alive = false;
        respond(status, std::move(reason_code), reason + "\n", "text/plain");
    }

    // Answers before the request's body was read (or all of it), then closes: the peer may still
    // be sending, so the close lingers (see linger_close) for the answer to reach it.
    void respond_early(int status, std::string reason_code, std::string reason) {
        m_linger = true;
        respond_and_close(status, std::move(reason_code), std::move(reason));
    }

    // Answers the current request (after the injected latency, if any).
    void respond(int status, std::string reason_code, std::string body,
                 std::string_view content_type) {
        std::string line;
        if (status >= 400) {
            line = body;
            if (!line.empty() && line.back() == '\n') {
                line.pop_back();
            }
        }
        log(status, std::move(reason_code), std::move(line));
        m_response.emplace();
        m_response->version(11);
        m_response->result(static_cast<unsigned>(status));
        m_response->set(http::field::server, "hookctl");
        m_response->set(http::field::content_type,
                        beast::string_view(content_type.data(), content_type.size()));
        if (status == 405) {
            m_response->set(http::field::allow,
                            m_target.starts_with(m_state.options.path) ? "POST" : "GET");
        }
        if (m_retry_after) {
            m_response->set(http::field::retry_after, std::to_string(m_retry_after->count()));
            m_retry_after.reset();
        }
        if (m_method != "HEAD") {
            m_response->body() = std::move(body);
        }
        bool keep = m_keep_alive && !m_closing && !m_state.stopping.load();
        m_response->keep_alive(keep);
        if (keep && m_version < 11) {
            // HTTP/1.0 closes after each answer unless the answer says keep-alive.
            m_response->set(http::field::connection, "keep-alive");
        }
        m_response->prepare_payload();
        after_delay([self = this->shared_from_this()] { self->write(); });
    }

    void write() {
        lowest().expires_after(m_state.options.body_timeout);
        http::async_write(m_stream, *m_response,
                          [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_write(ec);
                          });
    }

    void on_write(beast::error_code ec) {
        bool keep = m_response->keep_alive();
        m_response.reset();
        if (!ec && !keep && m_linger) {
            linger_close();
            return;
        }
        if (ec || !keep) {
            close();
            return;
        }
        read_header();
    }

    // Closes after an answer given before the request was read to its end. Closing a socket
    // with unread bytes sends a reset, which can destroy the answer before the peer reads it;
    // so the sending side is shut first and what the peer still sends is read and dropped (into
    // a small buffer: it is never kept) until it stops, for at most k_linger.
    void linger_close() {
        m_reservation.release();
        if constexpr (k_tls) {
            close();
        } else {
            beast::error_code ignored;
            lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
            m_discard = std::make_unique<std::array<char, 16 * 1024>>();
            lowest().expires_after(k_linger);
            drain();
        }
    }

    void drain() {
        lowest().async_read_some(asio::buffer(*m_discard), [self = this->shared_from_this()](
                                                               beast::error_code ec, std::size_t) {
            if (ec) {
                self->close();
                return;
            }
            self->drain();
        });
    }

    void close() {
        if (m_closed) {
            return;
        }
        m_closed = true;
        m_idle = false;
        disarm_deadline();
        m_reservation.release();
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        lowest().close();
    }

    static constexpr std::chrono::seconds k_linger{2};

    Stream m_stream;
    ServerState& m_state;
    std::string m_peer;
    asio::steady_timer m_timer;
    asio::steady_timer m_deadline;
    std::uint64_t m_deadline_generation = 0;
    bool m_timed_out = false;
    BodyReservation m_reservation;
    util::HeaderList m_headers; // of the webhook POST being read
    std::unique_ptr<std::array<char, 16 * 1024>> m_discard;
    beast::flat_buffer m_buffer;
    std::optional<http::request_parser<http::string_body>> m_parser;
    std::optional<http::response<http::empty_body>> m_continue;
    std::optional<http::response<http::string_body>> m_response;
    std::optional<std::chrono::seconds> m_retry_after;
    std::optional<StoredEvent> m_stored; // kept for --forward-to until the commit
    Clock::time_point m_start = Clock::now();
    std::chrono::milliseconds m_delay{};
    std::string m_method = "-";
    std::string m_target = "-";
    std::string m_event_id;
    std::string m_trace_id;
    std::string m_verified_by;
    unsigned m_version = 11;       // the request's HTTP version: 10 or 11
    std::string m_client;          // the forwarded client address (--trust-proxy), if any
    std::string m_client_identity; // the verified client certificate's subject, if any
    std::optional<util::IpAddress> m_peer_address; // read once, when --allow-from needs it
    bool m_keep_alive = true;
    bool m_linger = false; // answered before the request was read: close lingering
    bool m_idle = false;
    bool m_closing = false;
    bool m_closed = false;
};

class Listener : public std::enable_shared_from_this<Listener> {
public:
    Listener(asio::io_context& ioc, tcp::acceptor acceptor, ServerState& state, TlsServer* tls)
        : m_ioc(ioc)
        , m_acceptor(std::move(acceptor))
        , m_state(state)
        , m_tls(tls)
        , m_retry(ioc) {}

    void start() { accept(); }

    void stop() {
        asio::post(m_acceptor.get_executor(), [self = shared_from_this()] {
            beast::error_code ignored;
            self->m_acceptor.close(ignored);
            self->m_retry.cancel();
        });
    }

private:
    void accept() {
        m_acceptor.async_accept(
            asio::make_strand(m_ioc),
            [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                self->on_accept(ec, std::move(socket));
            });
    }

    void on_accept(beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !m_acceptor.is_open()) {
            return;
        }
        if (ec) {
            // Out of descriptors or similar: wait (longer each time in a row), go on accepting,
            // and say so once per interval, not once per failure.
            m_state.metrics.record_accept_failure();
            auto decision = m_backoff.failed(Clock::now());
            if (decision.report && m_state.hooks.on_notice) {
                m_state.hooks.on_notice(accept_failure_message(ec, *decision.report), true);
            }
            m_retry.expires_after(decision.wait);
            m_retry.async_wait([self = shared_from_this()](beast::error_code wec) {
                if (!wec) {
                    self->accept();
                }
            });
            return;
        }
        m_backoff.succeeded();
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto remote = socket.remote_endpoint(ignored);
        std::string peer =
            ignored ? "-" : remote.address().to_string() + ":" + std::to_string(remote.port());
        if (m_tls != nullptr) {
            // The certificates current now (a reload changes later connections only): the
            // stream's SSL holds its own reference to the SSL_CTX, `context` only wraps it.
            auto native = m_tls->current();
            SSL_CTX_up_ref(native.get());
            ssl::context context(native.get());
            std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
                beast::ssl_stream<beast::tcp_stream>(std::move(socket), context), m_state,
                std::move(peer))
                ->start();
        } else {
            std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)),
                                                         m_state, std::move(peer))
                ->start();
        }
        accept();
    }

    std::string accept_failure_message(const beast::error_code& ec, std::uint64_t failures) {
        std::string text = failures == 1 && m_backoff.total_failures() == 1
                               ? "accept failed: " + ec.message()
                               : "accept failed " + std::to_string(failures) +
                                     " times since the last message: " + ec.message();
        if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
            text += "; new connections wait in the kernel's queue meanwhile: raise the open-file "
                    "limit (ulimit -n, or LimitNOFILE= for a systemd service)";
        }
        return text;
    }

    asio::io_context& m_ioc;
    tcp::acceptor m_acceptor;
    ServerState& m_state;
    TlsServer* m_tls;
    asio::steady_timer m_retry;
    AcceptBackoff m_backoff;
};

} // namespace

RequestKind classify_request(int status, std::string_view reason_code) {
    if (reason_code == "metrics" || reason_code == "healthz") {
        return RequestKind::internal;
    }
    if (parse_fault_reason(reason_code)) {
        return RequestKind::fault;
    }
    if (status == 202) {
        return RequestKind::accepted;
    }
    if (reason_code == "duplicate") {
        return RequestKind::duplicate;
    }
    if (status >= 400 && status < 500) {
        return RequestKind::rejected;
    }
    return RequestKind::other;
}

void count_requests(Summary& summary, RequestKind kind, std::uint64_t count) {
    switch (kind) {
    case RequestKind::internal:
        return;
    case RequestKind::fault:
        summary.faults += count;
        break;
    case RequestKind::accepted:
        summary.accepted += count;
        break;
    case RequestKind::duplicate:
        summary.duplicates += count;
        break;
    case RequestKind::rejected:
        summary.rejected += count;
        break;
    case RequestKind::other:
        break;
    }
    summary.requests += count;
}

Result<Summary> serve(const ListenOptions& options, KeyStore& keys, const StoreOpener& open_store,
                      Metrics& metrics, Reloader& reloader, const ServerHooks& hooks) {
    auto started = Clock::now();
    std::unique_ptr<TlsServer> tls;
    if (!options.tls_cert.empty() || !options.tls_key.empty()) {
        auto created = TlsServer::create({options.tls_cert, options.tls_key, options.tls_client_ca,
                                          options.tls_client_subjects});
        HOOKCTL_RETURN_IF_ERROR(created);
        tls = std::move(*created);
    } else if (!options.tls_client_ca.empty()) {
        return fail(ExitCode::usage, "--tls-client-ca needs TLS: pass --tls-cert FILE and "
                                     "--tls-key FILE too");
    }
    // Certificates are reloaded with the secrets (SIGUSR1, SIGHUP when it means reload) and when
    // their own files change.
    if (tls) {
        reloader.add("TLS certificates", [server = tls.get()]() -> Result<std::string> {
            if (auto reloaded = server->reload(); !reloaded) {
                return std::unexpected(reloaded.error());
            }
            return std::string("new connections use them");
        });
    }
    struct StepRemover {
        Reloader& reloader;
        bool active;
        ~StepRemover() {
            if (active) {
                reloader.remove("TLS certificates");
            }
        }
    } tls_step_remover{reloader, tls != nullptr};
    util::FileWatcher tls_watcher(
        tls ? tls->files() : std::vector<std::string>{}, std::chrono::milliseconds(250),
        [&tls, &hooks] { tls->reload_and_report("certificate files changed", hooks.on_notice); });

    beast::error_code ec;
    auto address = asio::ip::make_address(options.host, ec);
    if (ec) {
        return fail(ExitCode::usage, "--bind: '" + options.host +
                                         "' is not an IP address; give HOST:PORT such as "
                                         "127.0.0.1:8080 or [::1]:8080");
    }
    unsigned threads =
        options.threads != 0 ? options.threads : std::max(2U, std::thread::hardware_concurrency());
    // Declared before the io_context, so it outlives the sessions that a cut drain leaves in the
    // io_context's queue (they are destroyed with it, and tell the state when they go).
    std::optional<ServerState> state_holder;
    asio::io_context ioc(static_cast<int>(threads));
    tcp::endpoint endpoint(address, options.port);
    tcp::acceptor acceptor(ioc);
    std::string where = options.host + ":" + std::to_string(options.port);
    if (acceptor.open(endpoint.protocol(), ec); !ec) {
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) {
            acceptor.bind(endpoint, ec);
        }
        if (!ec) {
            acceptor.listen(asio::socket_base::max_listen_connections, ec);
        }
    }
    if (ec) {
        return fail(ExitCode::environment,
                    "cannot listen on " + where + ": " + ec.message() +
                        "; pick another --bind address or port (127.0.0.1:0 picks a free one)");
    }
    auto port = acceptor.local_endpoint(ec).port();
    // Bound: only now is the archive opened (or created), so a receiver that cannot bind leaves
    // no new file behind.
    auto opened = open_store();
    HOOKCTL_RETURN_IF_ERROR(opened);
    EventStore& store = **opened;
    std::string host = address.is_v6() ? "[" + options.host + "]" : options.host;
    std::string url = std::string(tls ? "https" : "http") + "://" + host + ":" +
                      std::to_string(port) + options.path;

    std::atomic<bool> store_failed{false};
    GroupCommitter committer(
        store, options.max_batch,
        [&metrics, &hooks, &store_failed](std::size_t size, const Error* error) {
            metrics.record_batch(size);
            if (error != nullptr && hooks.on_notice && !store_failed.exchange(true)) {
                hooks.on_notice(error->message, true);
            }
            if (error == nullptr) {
                store_failed.store(false);
            }
        });
    ServerState& state = state_holder.emplace(options, keys, committer, metrics, hooks);
    auto listener = std::make_shared<Listener>(ioc, std::move(acceptor), state, tls.get());
    listener->start();

    std::mutex stop_mutex;
    std::condition_variable stop_cv;
    bool threads_done = false;
    bool drain_cut = false;
    std::thread watchdog;

    // SIGUSR1 reloads; SIGHUP stops, reloads or stays ignored (see HangupAction).
    asio::signal_set signals(ioc, SIGINT, SIGTERM, SIGUSR1);
    if (options.hangup != HangupAction::ignore) {
        signals.add(SIGHUP);
    }
    std::function<void(beast::error_code, int)> on_signal = [&](beast::error_code sec, int signo) {
        if (sec) {
            return;
        }
        if (signo == SIGUSR1 || (signo == SIGHUP && options.hangup == HangupAction::reload)) {
            reloader.reload(signo == SIGUSR1 ? "SIGUSR1" : "SIGHUP");
            signals.async_wait(on_signal);
            return;
        }
        if (state.stopping.exchange(true)) {
            return;
        }
        if (hooks.on_notice) {
            std::string_view name = signo == SIGINT    ? "SIGINT"
                                    : signo == SIGTERM ? "SIGTERM"
                                                       : "SIGHUP (the terminal hung up)";
            hooks.on_notice(std::string(name) + ": stopping, finishing in-flight requests", false);
        }
        listener->stop();
        for (auto& session : state.live()) {
            session->request_close();
        }
        beast::error_code ignored;
        signals.cancel(ignored);
        watchdog = std::thread([&] {
            std::unique_lock lock(stop_mutex);
            if (!stop_cv.wait_for(lock, options.drain_timeout, [&] { return threads_done; })) {
                drain_cut = true;
                ioc.stop();
            }
        });
    };
    signals.async_wait(on_signal);

    if (hooks.on_listening) {
        hooks.on_listening(url);
    }

    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (unsigned i = 1; i < threads; ++i) {
        pool.emplace_back([&ioc] { ioc.run(); });
    }
    ioc.run();
    for (auto& t : pool) {
        t.join();
    }
    // A second SIGINT/SIGTERM while we finish (an impatient supervisor, a test harness) must
    // not kill the process between the last commit and its exit status: block them before
    // `signals` is destroyed and restores the default action. The writer and forwarder
    // threads block them from their start, so they stay pending until exit.
    util::block_stop_signals();
    {
        std::lock_guard lock(stop_mutex);
        threads_done = true;
    }
    stop_cv.notify_all();
    if (watchdog.joinable()) {
        watchdog.join();
    }
    committer.close();

    Summary summary;
    auto by = metrics.requests_by_status_reason();
    for (const auto& [key, count] : by) {
        count_requests(summary, classify_request(key.first, key.second), count);
    }
    summary.store_failures = state.store_failures.load();
    summary.batches = committer.batches();
    summary.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    summary.drained = !drain_cut;
    return summary;
}

} // namespace hookctl::receive
