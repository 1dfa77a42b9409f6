#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <hookctl/http/tls.hpp>
#include <hookctl/util/error.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::http {

// How the client connects (DESIGN.md §7).
struct ClientOptions {
    std::chrono::milliseconds connect_timeout{10'000}; // --connect-timeout
    std::chrono::milliseconds total_timeout{30'000};   // --timeout: whole request
    bool insecure = false;                             // --insecure: skip TLS verification
    std::size_t max_connections = 64;                  // connections kept per host
    std::size_t body_limit = 64 * 1024;                // response bytes kept (rest dropped)
    TlsClient tls; // CAs trusted (default: the system store) and the client certificate, if any
};

// One HTTP request. The body is owned, so it lives as long as the transfer.
struct Request {
    std::string method = "POST";
    std::string url;
    util::HeaderList headers;
    std::string body;
};

// What came back: an HTTP status, or a transport error (`status == 0`).
struct Response {
    long status = 0;                     // 0: no HTTP response (see `transport_error`)
    util::HeaderList headers;            // response headers (of the last response)
    std::string body;                    // at most ClientOptions::body_limit bytes
    std::chrono::microseconds latency{}; // start of the transfer to its end
    // When the request began to leave: libcurl's first run of the transfer plus its
    // pre-transfer time (connecting, when no kept-alive connection was free), so a pacer can
    // tell how late a send really went out, not only when it was handed over. Set on every
    // response, never before start() was called (a request refused at start: that moment).
    std::chrono::steady_clock::time_point sent_at{};
    // When the transfer ended (the response's last byte, or the failure); done_at - sent_at
    // is how long the target took once the request was on its way.
    std::chrono::steady_clock::time_point done_at{};
    int curl_code = 0;           // CURLcode, 0 on success
    std::string transport_error; // e.g. "connection refused", "timed out"
    bool timed_out = false;      // the transport error was a timeout
    bool tls_failed = false;     // the transport error was about TLS (see describe_tls_failure)
    bool tls_permanent = false;  // ... and retrying cannot help (an untrusted certificate)
    std::string http_version;    // "1.1", "2"

    bool ok() const { return status >= 200 && status < 300; }
};

// A libcurl multi-interface client: many requests in flight, keep-alive connections reused
// across requests, HTTP/2 (multiplexed) when the server offers it over TLS, certificates
// verified unless `insecure`. Not thread-safe: drive it from one thread.
class Client {
public:
    // Fails (exit 4) when libcurl cannot be initialised.
    static Result<Client> create(const ClientOptions& options);

    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;
    ~Client();

    using Completion = std::function<void(Response&&)>;

    // Queues `request`; `done` runs from inside poll() when it finishes (from start() itself
    // only when libcurl refuses to add the transfer, reported as a transport error).
    void start(Request request, Completion done);

    // Drives transfers until `deadline`, returning early when at least one finished (its
    // completion has run) or wakeup() was called. The deadline is kept to the microsecond (a
    // timerfd waits beside libcurl's sockets), not rounded to libcurl's whole milliseconds: a
    // pacer's slot at 5,000/s is 200 us away. Fails (exit 4) only when libcurl's multi
    // interface fails.
    Result<void> poll_until(std::chrono::steady_clock::time_point deadline);
    Result<void> poll(std::chrono::milliseconds timeout) {
        return poll_until(std::chrono::steady_clock::now() + timeout);
    }

    // Makes a poll() in progress (or the next one) return; thread-safe, not async-signal-safe.
    void wakeup();

    // Requests started and not yet completed.
    std::size_t in_flight() const;

    // Sends one request and waits for it (convenience for `send` and `probe`).
    Result<Response> perform(Request request);

private:
    struct Impl;
    explicit Client(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

// The libcurl version string, for `--version -v` and bug reports.
std::string curl_version();

} // namespace hookctl::http
