#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <hookctl/receive/access.hpp>
#include <hookctl/receive/budget.hpp>
#include <hookctl/receive/committer.hpp>
#include <hookctl/receive/faults.hpp>
#include <hookctl/receive/forward.hpp>
#include <hookctl/receive/handler.hpp>
#include <hookctl/receive/keyset.hpp>
#include <hookctl/receive/metrics.hpp>
#include <hookctl/receive/reload.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::receive {

// How `hookctl listen` serves (every field has its flag; see hookctl-listen(1)).
struct ListenOptions {
    std::string host = "127.0.0.1"; // --bind HOST:PORT
    std::uint16_t port = 8080;      // 0: a free port
    std::string path = "/webhooks/email";
    CheckOptions check;
    std::size_t max_body = 25 * 1024 * 1024;
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_header_count = 100;
    std::chrono::milliseconds header_timeout{10'000}; // whole header block, and keep-alive idle
    std::chrono::milliseconds body_timeout{30'000};
    std::size_t max_inflight = 4096; // accepted, not yet committed; beyond: 429
    // Body bytes held for requests whose signature is not checked yet; beyond: 503 before the
    // body is read (see BodyBudget).
    std::size_t max_buffered = 256 * 1024 * 1024;
    std::chrono::seconds overload_retry_after{1};
    std::size_t max_batch = 2048; // events per archive transaction at most
    FaultOptions faults;
    std::string tls_cert; // PEM files: both set means HTTPS (TLS 1.2 minimum)
    std::string tls_key;
    std::string tls_client_ca;                       // set: client certificates required (mTLS)
    std::vector<std::string> tls_client_subjects;    // accepted client subjects (patterns)
    AccessOptions access;                            // --allow-from, --trust-proxy
    unsigned threads = 0;                            // 0: one per core, at least 2
    std::chrono::milliseconds drain_timeout{10'000}; // after SIGINT/SIGTERM
    HangupAction hangup = HangupAction::reload;      // what SIGHUP does (SIGUSR1 always reloads)
};

// One request as answered (or dropped: `status` 0), for the log line.
struct RequestRecord {
    std::string method;
    std::string target;
    std::string peer;
    int status = 0;
    std::string reason_code; // `accepted`, `duplicate`, `no_match`, `fault_fail`, ...
    std::string reason;      // one line for a person (empty when accepted)
    std::string event_id;
    std::string trace_id;
    std::string verified_by; // fingerprint of the key that verified the signature, or empty
    std::chrono::microseconds latency{};
    std::string client;          // the client address a trusted proxy forwarded, if any
    std::string client_identity; // the verified TLS client certificate's subject, if any
};

// What the server tells its caller. Called from server threads; must be thread-safe.
struct ServerHooks {
    std::function<void(const std::string& url)> on_listening;
    std::function<void(const RequestRecord&)> on_request;
    std::function<void(std::string_view message, bool warning)> on_notice;
    // Set: every newly stored event (after its commit) is passed here (`--forward-to`).
    std::function<void(StoredEvent event)> on_stored;
};

// What a run did, for the summary printed on shutdown.
struct Summary {
    std::uint64_t requests = 0;
    std::uint64_t accepted = 0; // 202
    std::uint64_t duplicates = 0;
    std::uint64_t rejected = 0; // 4xx other than injected faults
    std::uint64_t faults = 0;
    std::uint64_t store_failures = 0; // 503 because the archive could not be written
    std::uint64_t batches = 0;
    std::chrono::milliseconds elapsed{};
    bool drained = true; // false: the drain timeout cut in-flight requests off
};

// What one answered request counts as in the Summary.
enum class RequestKind {
    internal,  // /metrics and /healthz: not counted
    fault,     // an injected fault (--fail-rate, --drop-rate, ...), whatever its status
    accepted,  // 202
    duplicate, // 200, already stored
    rejected,  // any other 4xx
    other,     // counted in `requests` only (e.g. 503 when the store failed)
};
// The kind of a request answered `status` with `reason_code` (as logged and in /metrics).
RequestKind classify_request(int status, std::string_view reason_code);
// Adds `count` requests of `kind` to `summary`.
void count_requests(Summary& summary, RequestKind kind, std::uint64_t count);

// Opens the store accepted events go to; called once, after the address is bound, so a receiver
// that cannot bind creates no archive. The store must outlive serve().
using StoreOpener = std::function<Result<EventStore*>()>;

// Serves webhooks on `options.host:port` until SIGINT or SIGTERM (or SIGHUP, see
// `options.hangup`); SIGUSR1 runs `reloader`, to which the TLS certificates are added (they are
// also reloaded when their files change). Verifies every POST to `options.path` before
// parsing it (what the headers alone can refuse is refused before the body is read; the bodies
// waiting for their check are bounded by `options.max_buffered`), stores accepted events
// through the store `open_store` gives, with group commit (202 only after the commit; 503 when
// it fails), answers duplicates 200, injects the configured faults, serves `/metrics` (from
// `metrics`) and `/healthz`. On a stop signal it stops accepting, finishes in-flight requests,
// commits and returns the summary. Fails (exit 4) when it cannot bind or the store cannot be
// opened; (exit 2) when the TLS files cannot be read. With `options.tls_client_ca`, a client
// without a certificate issued by that CA (and matching `tls_client_subjects`) is refused in
// the handshake and counted in /metrics; the verified subject is stored with each event. With
// `options.access`, a request from a source outside --allow-from is answered 403 before its
// body is read.
Result<Summary> serve(const ListenOptions& options, KeyStore& keys, const StoreOpener& open_store,
                      Metrics& metrics, Reloader& reloader, const ServerHooks& hooks);

} // namespace hookctl::receive
