#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <hookctl/receive/budget.hpp>

namespace hookctl::receive {

// Counters of one receiver, rendered in the Prometheus text format on `GET /metrics`.
// Thread-safe.
class Metrics {
public:
    // One answered (or dropped: `status` 0) request: its HTTP status, reason code and latency.
    void record_request(int status, std::string_view reason, std::chrono::microseconds latency);
    // A request that failed verification, by outcome code (`no_match`, `stale_timestamp`, ...).
    void record_verification_failure(std::string_view outcome);
    // An injected fault, by kind (`drop`, `fail`, `fail_first`, `throttle`).
    void record_fault(std::string_view kind);
    // A request whose signature the key with this fingerprint verified (never the secret).
    void record_verified(std::string_view fingerprint);
    // An accept() that failed (out of file descriptors, ...).
    void record_accept_failure() { m_accept_failures.fetch_add(1, std::memory_order_relaxed); }
    // Renders the body budget's bytes in use and limit (`--max-buffered`); `budget` must outlive
    // every render().
    void watch_budget(const BodyBudget* budget) { m_budget = budget; }
    // A TLS client refused in the handshake, by reason (`tls_no_client_cert`, ...).
    void record_tls_refusal(std::string_view reason);
    // One group commit of `size` events.
    void record_batch(std::size_t size);
    void record_duplicate() { m_duplicates.fetch_add(1, std::memory_order_relaxed); }
    void record_stored() { m_stored.fetch_add(1, std::memory_order_relaxed); }
    void add_inflight(std::int64_t delta) {
        m_inflight.fetch_add(delta, std::memory_order_relaxed);
    }
    std::int64_t inflight() const { return m_inflight.load(std::memory_order_relaxed); }

    std::uint64_t requests(int status) const;
    std::uint64_t requests_total() const;
    std::uint64_t stored() const { return m_stored.load(); }
    std::map<std::string, std::uint64_t> verified_by_key() const;
    std::uint64_t duplicates() const { return m_duplicates.load(); }
    std::map<std::pair<int, std::string>, std::uint64_t> requests_by_status_reason() const;

    // The Prometheus text exposition (version 0.0.4).
    std::string render() const;

    // Latency histogram bucket bounds, seconds.
    static constexpr std::array<double, 12> k_latency_bounds = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
    static constexpr std::array<double, 8> k_batch_bounds = {1, 4, 16, 64, 256, 1024, 4096, 16384};

private:
    mutable std::mutex m_mutex;
    std::map<std::pair<int, std::string>, std::uint64_t> m_requests;
    std::map<std::string, std::uint64_t> m_verification_failures;
    std::map<std::string, std::uint64_t> m_faults;
    std::map<std::string, std::uint64_t> m_verified;
    std::atomic<std::uint64_t> m_accept_failures{0};
    std::atomic<const BodyBudget*> m_budget{nullptr};
    std::map<std::string, std::uint64_t> m_tls_refusals;
    std::array<std::uint64_t, k_latency_bounds.size() + 1> m_latency_buckets{};
    double m_latency_sum = 0;
    std::uint64_t m_latency_count = 0;
    std::array<std::uint64_t, k_batch_bounds.size() + 1> m_batch_buckets{};
    std::uint64_t m_batch_sum = 0;
    std::uint64_t m_batch_count = 0;
    std::atomic<std::uint64_t> m_duplicates{0};
    std::atomic<std::uint64_t> m_stored{0};
    std::atomic<std::int64_t> m_inflight{0};
};

} // namespace hookctl::receive
