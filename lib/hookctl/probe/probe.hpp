#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/http/client.hpp>
#include <hookctl/keys/secret.hpp>
#include <hookctl/sig/scheme.hpp>
#include <hookctl/util/error.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::probe {

// What one POST to the endpoint brought back.
struct Exchange {
    long status = 0;                     // 0: no HTTP answer (see `error`)
    std::string body;                    // the start of the answer's body
    std::chrono::microseconds latency{}; // request start to answer end
    std::string error;                   // transport error, e.g. "connection refused"
    bool timed_out = false;              // no answer within the timeout
    bool unreachable = false;            // could not connect at all (refused, no such host)
    bool tls_failed = false;             // the TLS handshake failed or was refused (see `error`)
};

// How an endpoint answered a handshake that offered only TLS 1.0 and 1.1.
struct LegacyTls {
    enum class Outcome {
        refused,     // no handshake: the endpoint needs TLS 1.2 or later
        accepted,    // a handshake completed at `version`
        not_offered, // this machine could not offer TLS 1.0/1.1 (or could not connect)
    };
    Outcome outcome = Outcome::not_offered;
    std::string version; // "TLSv1.1" when accepted
    std::string detail;  // the handshake's error, for the report
};

// How the battery reaches the endpoint: the real one is libcurl (make_http_transport), tests
// swap in a fake.
class Transport {
public:
    virtual ~Transport() = default;
    // POSTs `body` with `headers` to `url`, giving up after `timeout`; transport failures are
    // reported in the Exchange, never thrown.
    virtual Exchange post(const std::string& url, const util::HeaderList& headers,
                          const std::string& body, std::chrono::milliseconds timeout) = 0;
    // As post(), on a new connection that presents no client certificate (mtls-required).
    virtual Exchange post_without_client_cert(const std::string& url,
                                              const util::HeaderList& headers,
                                              const std::string& body,
                                              std::chrono::milliseconds timeout) = 0;
    // Connects to `url`'s host and port and attempts a TLS handshake offering only TLS 1.0 and
    // 1.1, then hangs up (tls-version). Nothing is sent after the handshake.
    virtual LegacyTls offer_legacy_tls(const std::string& url,
                                       std::chrono::milliseconds timeout) = 0;
};

// The libcurl transport (http::Client, keep-alive reused across checks) with `client`'s TLS
// settings (insecure, trust, client certificate; its timeouts are set per request). Fails
// (exit 4) when libcurl cannot be initialised.
Result<std::unique_ptr<Transport>> make_http_transport(const http::ClientOptions& client);

// The checks, in the order they run. The TLS checks are reported only where they apply:
// `tls-version` for an https:// URL, `mtls-required` with `expect_mtls`; either when named in
// `only`.
const std::vector<std::string>& check_names();

struct ProbeOptions {
    std::string url;
    sig::Scheme scheme = sig::Scheme::mailparse;
    std::vector<keys::Key> keys;                   // the endpoint's secrets; the first signs
    std::size_t max_body = 26 * 1024 * 1024;       // the endpoint's body limit
    std::chrono::milliseconds latency_budget{200}; // for the `latency` check
    std::chrono::milliseconds timeout{10'000};     // per request
    std::chrono::seconds timestamp_offset{600};    // stale/future timestamps
    std::vector<std::string> only;                 // empty: every check
    std::vector<std::string> skip;                 // checks left out
    bool expect_mtls = false; // mtls-required: a request without a client certificate must fail
    std::function<std::int64_t()> now;                   // Unix seconds; default the clock
    std::function<void(std::string_view check)> started; // progress, before each check
};

enum class Status { pass, fail, skip };

std::string_view to_string(Status status);

struct CheckResult {
    std::string name;
    Status status = Status::skip;
    std::string expected; // e.g. "2xx", "4xx (401 or 403)"
    std::string got;      // e.g. "202", "500: {\"error\":...}", "no answer within 10s"
    std::string detail;   // why it failed, or the reason it was skipped, or a note
    std::chrono::microseconds latency{};
};

struct Report {
    std::string url;
    std::string scheme;
    std::vector<CheckResult> checks;
    int passed = 0;
    int failed = 0;
    int skipped = 0;

    // True when no selected check failed and at least one passed.
    bool ok() const { return failed == 0 && passed > 0; }
};

// Fails (exit 2) when `only` or `skip` name a check that does not exist, or select nothing.
Result<void> validate_selection(const std::vector<std::string>& only,
                                const std::vector<std::string>& skip);

// Runs the battery against `options.url` through `transport`. A check not selected is reported
// as skipped. Fails (exit 4) when the endpoint cannot be reached at all on the first request,
// (exit 2) on a bad selection or when no key is given.
Result<Report> run(const ProbeOptions& options, Transport& transport);

// {"url", "scheme", "passed", "failed", "skipped", "checks": [{"name", "status", "expected",
// "got", "detail", "latency_ms"}]}
nlohmann::json to_json(const Report& report);

// JUnit XML: one <testsuite>, one <testcase> per check, <failure> or <skipped> inside.
std::string to_junit(const Report& report);

// A table for a terminal, one row per check and a summary line.
std::string to_table(const Report& report);

} // namespace hookctl::probe
