#include <cstdio>

#include <hookctl/receive/metrics.hpp>

namespace hookctl::receive {
namespace {

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    // Prometheus reads both, but short forms read better: 0.001 rather than 0.0010000000000000002.
    char shortest[64];
    std::snprintf(shortest, sizeof shortest, "%g", v);
    return std::stod(shortest) == v ? shortest : buf;
}

template <std::size_t N>
void add_to_histogram(const std::array<double, N>& bounds,
                      std::array<std::uint64_t, N + 1>& buckets, double value) {
    std::size_t i = 0;
    while (i < N && value > bounds[i]) {
        ++i;
    }
    ++buckets[i];
}

template <std::size_t N>
void render_histogram(std::string& out, std::string_view name, const std::array<double, N>& bounds,
                      const std::array<std::uint64_t, N + 1>& buckets, double sum,
                      std::uint64_t count) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < N; ++i) {
        cumulative += buckets[i];
        out += std::string(name) + "_bucket{le=\"" + number(bounds[i]) + "\"} " +
               std::to_string(cumulative) + "\n";
    }
    out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(count) + "\n";
    out += std::string(name) + "_sum " + number(sum) + "\n";
    out += std::string(name) + "_count " + std::to_string(count) + "\n";
}

} // namespace

void Metrics::record_request(int status, std::string_view reason,
                             std::chrono::microseconds latency) {
    double seconds = static_cast<double>(latency.count()) / 1e6;
    std::lock_guard lock(m_mutex);
    ++m_requests[{status, std::string(reason)}];
    add_to_histogram(k_latency_bounds, m_latency_buckets, seconds);
    m_latency_sum += seconds;
    ++m_latency_count;
}

void Metrics::record_verification_failure(std::string_view outcome) {
    std::lock_guard lock(m_mutex);
    ++m_verification_failures[std::string(outcome)];
}

void Metrics::record_fault(std::string_view kind) {
    std::lock_guard lock(m_mutex);
    ++m_faults[std::string(kind)];
}

void Metrics::record_verified(std::string_view fingerprint) {
    std::lock_guard lock(m_mutex);
    ++m_verified[std::string(fingerprint)];
}

std::map<std::string, std::uint64_t> Metrics::verified_by_key() const {
    std::lock_guard lock(m_mutex);
    return m_verified;
}

void Metrics::record_tls_refusal(std::string_view reason) {
    std::lock_guard lock(m_mutex);
    ++m_tls_refusals[std::string(reason)];
}

void Metrics::record_batch(std::size_t size) {
    std::lock_guard lock(m_mutex);
    add_to_histogram(k_batch_bounds, m_batch_buckets, static_cast<double>(size));
    m_batch_sum += size;
    ++m_batch_count;
}

std::uint64_t Metrics::requests(int status) const {
    std::lock_guard lock(m_mutex);
    std::uint64_t n = 0;
    for (const auto& [key, count] : m_requests) {
        if (key.first == status) {
            n += count;
        }
    }
    return n;
}

std::uint64_t Metrics::requests_total() const {
    std::lock_guard lock(m_mutex);
    return m_latency_count;
}

std::map<std::pair<int, std::string>, std::uint64_t> Metrics::requests_by_status_reason() const {
    std::lock_guard lock(m_mutex);
    return m_requests;
}

std::string Metrics::render() const {
    std::string out;
    std::lock_guard lock(m_mutex);
    out += "# HELP hookctl_requests_total Requests answered, by HTTP status (0: dropped) and "
           "reason.\n# TYPE hookctl_requests_total counter\n";
    for (const auto& [key, count] : m_requests) {
        out += "hookctl_requests_total{status=\"" + std::to_string(key.first) + "\",reason=\"" +
               key.second + "\"} " + std::to_string(count) + "\n";
    }
    out += "# HELP hookctl_verification_failures_total Requests that failed signature "
           "verification, by outcome.\n# TYPE hookctl_verification_failures_total counter\n";
    for (const auto& [reason, count] : m_verification_failures) {
        out += "hookctl_verification_failures_total{reason=\"" + reason + "\"} " +
               std::to_string(count) + "\n";
    }
    out += "# HELP hookctl_verified_total Requests whose signature verified, by the fingerprint "
           "of the key that verified it.\n# TYPE hookctl_verified_total counter\n";
    for (const auto& [key, count] : m_verified) {
        out += "hookctl_verified_total{key=\"" + key + "\"} " + std::to_string(count) + "\n";
    }
    out += "# HELP hookctl_faults_injected_total Faults injected by the fault flags, by kind.\n"
           "# TYPE hookctl_faults_injected_total counter\n";
    for (const auto& [kind, count] : m_faults) {
        out +=
            "hookctl_faults_injected_total{kind=\"" + kind + "\"} " + std::to_string(count) + "\n";
    }
    out += "# HELP hookctl_tls_client_refused_total TLS clients refused in the handshake "
           "(--tls-client-ca), by reason.\n# TYPE hookctl_tls_client_refused_total counter\n";
    for (const auto& [reason, count] : m_tls_refusals) {
        out += "hookctl_tls_client_refused_total{reason=\"" + reason + "\"} " +
               std::to_string(count) + "\n";
    }
    out += "# HELP hookctl_events_stored_total Events committed to the archive.\n"
           "# TYPE hookctl_events_stored_total counter\n"
           "hookctl_events_stored_total " +
           std::to_string(m_stored.load()) + "\n";
    out += "# HELP hookctl_duplicates_total Requests for an event already stored.\n"
           "# TYPE hookctl_duplicates_total counter\n"
           "hookctl_duplicates_total " +
           std::to_string(m_duplicates.load()) + "\n";
    out += "# HELP hookctl_inflight Requests accepted and not yet committed.\n"
           "# TYPE hookctl_inflight gauge\n"
           "hookctl_inflight " +
           std::to_string(m_inflight.load()) + "\n";
    if (const BodyBudget* budget = m_budget.load()) {
        out += "# HELP hookctl_buffered_bytes Body bytes held for requests whose signature is "
               "not checked yet.\n# TYPE hookctl_buffered_bytes gauge\nhookctl_buffered_bytes " +
               std::to_string(budget->in_use()) +
               "\n# HELP hookctl_buffered_bytes_limit The limit of hookctl_buffered_bytes "
               "(--max-buffered); beyond it requests get 503.\n# TYPE "
               "hookctl_buffered_bytes_limit gauge\nhookctl_buffered_bytes_limit " +
               std::to_string(budget->limit()) + "\n";
    }
    out += "# HELP hookctl_accept_failures_total Connections the receiver failed to accept (out of "
           "file descriptors, ...).\n# TYPE hookctl_accept_failures_total counter\n"
           "hookctl_accept_failures_total " +
           std::to_string(m_accept_failures.load()) + "\n";
    out += "# HELP hookctl_commit_batch_size Events per archive transaction (group commit).\n"
           "# TYPE hookctl_commit_batch_size histogram\n";
    render_histogram(out, "hookctl_commit_batch_size", k_batch_bounds, m_batch_buckets,
                     static_cast<double>(m_batch_sum), m_batch_count);
    out += "# HELP hookctl_request_duration_seconds Time from the request's headers to the "
           "answer.\n# TYPE hookctl_request_duration_seconds histogram\n";
    render_histogram(out, "hookctl_request_duration_seconds", k_latency_bounds, m_latency_buckets,
                     m_latency_sum, m_latency_count);
    return out;
}

} // namespace hookctl::receive
