#include <algorithm>
#include <cmath>

#include <hookctl/replay/latency.hpp>

namespace hookctl::replay {
namespace {
const double k_log_step = std::log(1.01);
}

void LatencyHistogram::add(std::chrono::microseconds latency) {
    std::int64_t us = std::max<std::int64_t>(1, latency.count());
    auto index = static_cast<std::size_t>(std::log(static_cast<double>(us)) / k_log_step);
    m_buckets[std::min(index, k_buckets - 1)] += 1;
    m_count += 1;
    m_max_us = std::max(m_max_us, us);
}

double LatencyHistogram::quantile_ms(double q) const {
    if (m_count == 0) {
        return 0;
    }
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(m_count)));
    rank = std::clamp<std::uint64_t>(rank, 1, m_count);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < k_buckets; ++i) {
        seen += m_buckets[i];
        if (seen >= rank) {
            // The bucket's geometric middle, never above the largest latency seen.
            double us = std::exp((static_cast<double>(i) + 0.5) * k_log_step);
            return std::min(us, static_cast<double>(m_max_us)) / 1000.0;
        }
    }
    return max_ms();
}

} // namespace hookctl::replay
