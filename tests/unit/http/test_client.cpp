#include <arpa/inet.h>
#include <atomic>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/http/client.hpp>

using namespace hookctl;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST_CASE("http::Client::poll_until keeps its deadline below libcurl's millisecond") {
    auto client = http::Client::create({});
    REQUIRE(client);
    // Nothing in flight: each poll sleeps to its deadline, never returns before it (a pacer
    // would send early) and does not overshoot by a whole second (it would hang a run).
    for (auto wait : {300us, 1500us, 5000us}) {
        CAPTURE(wait.count());
        auto start = Clock::now();
        REQUIRE(client->poll_until(start + wait));
        auto took = Clock::now() - start;
        CHECK(took >= wait);
        CHECK(took < wait + 1s);
    }
    // A deadline already past returns at once.
    auto start = Clock::now();
    REQUIRE(client->poll_until(start - 1ms));
    CHECK(Clock::now() - start < 1s);
}

TEST_CASE("http::Client::wakeup ends a poll_until long before its deadline") {
    auto client = http::Client::create({});
    REQUIRE(client);
    auto start = Clock::now();
    std::thread waker([&] {
        std::this_thread::sleep_for(20ms);
        client->wakeup();
    });
    REQUIRE(client->poll_until(start + 30s));
    auto took = Clock::now() - start;
    waker.join();
    CHECK(took >= 20ms);
    CHECK(took < 10s);
}

namespace {

// A loopback TCP socket bound to a free port; listening (the kernel completes handshakes, no
// one answers) or closed again (connections are refused). Returns the fd (-1 when closed).
struct LoopbackPort {
    int fd = -1;
    int port = 0;
    explicit LoopbackPort(bool listening) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port = ntohs(addr.sin_port);
        if (listening) {
            REQUIRE(::listen(fd, 64) == 0);
        } else {
            ::close(fd);
            fd = -1;
        }
    }
    LoopbackPort(const LoopbackPort&) = delete;
    LoopbackPort& operator=(const LoopbackPort&) = delete;
    ~LoopbackPort() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/hook"; }
};

// A minimal HTTP/1.1 server on a LoopbackPort: it answers every request 200 with the body
// "ok" on a kept-alive connection and records each request's method, whether it carried a
// Content-Length, and its body. Enough to see what libcurl put on the wire.
class RecordingServer {
public:
    struct Seen {
        std::string method;
        bool has_length = false;
        std::string body;
    };

    RecordingServer()
        : m_port(true)
        , m_thread([this] { serve(); }) {}
    RecordingServer(const RecordingServer&) = delete;
    RecordingServer& operator=(const RecordingServer&) = delete;
    ~RecordingServer() {
        m_stop = true;
        m_thread.join();
    }

    std::string url() const { return m_port.url(); }
    std::vector<Seen> seen() {
        std::lock_guard lock(m_mutex);
        return m_seen;
    }
    int connections() const { return m_connections; }

private:
    // Waits until `fd` is readable or the server stops; false when it stops.
    bool readable(int fd) {
        while (!m_stop) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 20) > 0) {
                return true;
            }
        }
        return false;
    }

    void serve() {
        while (readable(m_port.fd)) {
            int conn = ::accept4(m_port.fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn < 0) {
                continue;
            }
            m_connections += 1;
            talk(conn);
            ::close(conn);
        }
    }

    // Appends what `conn` has to `buffer`; false when the peer closed or the server stops.
    bool read_more(int conn, std::string& buffer) {
        if (!readable(conn)) {
            return false;
        }
        char chunk[4096];
        ssize_t n = ::read(conn, chunk, sizeof chunk);
        if (n <= 0) {
            return false;
        }
        buffer.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    void talk(int conn) {
        std::string buffer;
        while (true) {
            std::size_t head_end;
            while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
                if (!read_more(conn, buffer)) {
                    return;
                }
            }
            Seen seen;
            std::string head = buffer.substr(0, head_end + 2);
            seen.method = head.substr(0, head.find(' '));
            std::size_t length = 0;
            if (auto at = head.find("\r\nContent-Length: "); at != std::string::npos) {
                seen.has_length = true;
                length = std::stoul(head.substr(at + 18));
            }
            buffer.erase(0, head_end + 4);
            while (buffer.size() < length) {
                if (!read_more(conn, buffer)) {
                    return;
                }
            }
            seen.body = buffer.substr(0, length);
            buffer.erase(0, length);
            {
                std::lock_guard lock(m_mutex);
                m_seen.push_back(seen);
            }
            std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
            if (seen.method != "HEAD") {
                answer += "ok";
            }
            if (::write(conn, answer.data(), answer.size()) !=
                static_cast<ssize_t>(answer.size())) {
                return;
            }
        }
    }

    LoopbackPort m_port;
    std::atomic<bool> m_stop{false};
    std::atomic<int> m_connections{0};
    std::mutex m_mutex;
    std::vector<Seen> m_seen;
    std::thread m_thread;
};

// Starts `n` requests to `url` and polls until all completed or `limit` passed.
std::vector<http::Response> run_all(http::Client& client, const std::string& url, int n,
                                    std::chrono::seconds limit) {
    std::vector<http::Response> done;
    for (int i = 0; i < n; ++i) {
        http::Request request;
        request.url = url;
        request.body = R"({"n":)" + std::to_string(i) + "}";
        client.start(std::move(request), [&](http::Response&& r) { done.push_back(std::move(r)); });
    }
    auto end = Clock::now() + limit;
    while (done.size() < static_cast<std::size_t>(n) && Clock::now() < end) {
        REQUIRE(client.poll_until(std::min(end, Clock::now() + 100ms)));
    }
    return done;
}

} // namespace

TEST_CASE("http::Client reports refused connections as transport errors, each one") {
    LoopbackPort closed(false);
    auto client = http::Client::create({});
    REQUIRE(client);
    auto done = run_all(*client, closed.url(), 8, 10s);
    REQUIRE(done.size() == 8);
    for (const auto& r : done) {
        CHECK(r.status == 0);
        CHECK(!r.timed_out);
        CHECK(r.transport_error.starts_with("connection failed"));
    }
    CHECK(client->in_flight() == 0);
}

TEST_CASE("http::Client times out a request the server never answers") {
    // The kernel accepts the connections; nothing reads or answers them. Only libcurl's own
    // timeout can end these requests, so this fails (or hangs to the limit) if its timers are
    // not run.
    LoopbackPort silent(true);
    http::ClientOptions options;
    options.total_timeout = 300ms;
    auto client = http::Client::create(options);
    REQUIRE(client);
    auto start = Clock::now();
    auto done = run_all(*client, silent.url(), 4, 10s);
    auto took = Clock::now() - start;
    REQUIRE(done.size() == 4);
    for (const auto& r : done) {
        CHECK(r.status == 0);
        CHECK(r.timed_out);
        CHECK(r.transport_error == "timed out");
        // The requests went out (the kernel completed the connections) once libcurl ran them,
        // well before they timed out.
        CHECK(r.sent_at >= start);
        CHECK(r.sent_at < start + 250ms);
        CHECK(r.done_at >= start + 300ms); // the timeout ended it, after it had gone out
        CHECK(r.done_at > r.sent_at);
        CHECK(r.done_at <= Clock::now());
    }
    CHECK(took >= 300ms);
    CHECK(took < 5s);
}

TEST_CASE("http::Client sends each method as asked on a reused handle and connection") {
    // One request at a time, so each one takes the easy handle the last one gave back (with
    // its options) and the kept-alive connection: a GET after a POST must not carry the POST's
    // body, a PUT after a HEAD must carry its own, and so on.
    RecordingServer server;
    auto client = http::Client::create({});
    REQUIRE(client);
    struct Ask {
        std::string method;
        std::string body;
    };
    std::vector<Ask> asks = {
        {"POST", R"({"a":1})"}, {"GET", ""},    {"HEAD", ""}, {"PUT", R"({"b":22})"},
        {"PATCH", "patched"},   {"DELETE", ""}, {"GET", ""},  {"POST", R"({"c":3})"}};
    for (const auto& ask : asks) {
        CAPTURE(ask.method);
        http::Request request;
        request.method = ask.method;
        request.url = server.url();
        request.body = ask.body;
        std::optional<http::Response> got;
        client->start(std::move(request), [&](http::Response&& r) { got = std::move(r); });
        auto end = Clock::now() + 10s;
        while (!got && Clock::now() < end) {
            REQUIRE(client->poll_until(std::min(end, Clock::now() + 100ms)));
        }
        REQUIRE(got);
        CHECK(got->status == 200);
        CHECK(got->body == (ask.method == "HEAD" ? "" : "ok"));
    }
    auto seen = server.seen();
    REQUIRE(seen.size() == asks.size());
    for (std::size_t i = 0; i < asks.size(); ++i) {
        CAPTURE(i);
        CHECK(seen[i].method == asks[i].method);
        CHECK(seen[i].body == asks[i].body);
        bool sends_body =
            asks[i].method == "POST" || asks[i].method == "PUT" || asks[i].method == "PATCH";
        CHECK(seen[i].has_length == sends_body);
    }
    CHECK(server.connections() == 1);
}
