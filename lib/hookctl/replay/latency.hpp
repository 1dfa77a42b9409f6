#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace hookctl::replay {

// Latency percentiles in constant memory: a log-scale histogram from 1 µs to ~100 s with
// buckets 1% wide, so a million requests cost the same as ten.
class LatencyHistogram {
public:
    void add(std::chrono::microseconds latency);
    std::uint64_t count() const { return m_count; }
    // The `q` quantile (0..1) in milliseconds, within 1%; 0 when empty.
    double quantile_ms(double q) const;
    double max_ms() const { return static_cast<double>(m_max_us) / 1000.0; }

private:
    static constexpr std::size_t k_buckets = 1900; // log(1e8) / log(1.01) ~ 1851
    std::array<std::uint64_t, k_buckets> m_buckets{};
    std::uint64_t m_count = 0;
    std::int64_t m_max_us = 0;
};

} // namespace hookctl::replay
