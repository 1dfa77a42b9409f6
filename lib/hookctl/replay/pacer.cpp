#include <algorithm>

#include <hookctl/replay/pacer.hpp>

namespace hookctl::replay {

Pacer::Pacer(util::Rate rate, int burst, Clock::time_point start)
    : m_unlimited(rate.unlimited())
    , m_burst(std::max(1, burst))
    , m_next(start) {
    if (!m_unlimited) {
        m_interval = std::chrono::nanoseconds(
            static_cast<std::int64_t>(1e9 / std::max(*rate.per_second, 1e-9)));
        m_interval = std::max(m_interval, std::chrono::nanoseconds(1));
    }
}

std::optional<Pacer::Clock::time_point> Pacer::next_due() const {
    if (m_unlimited) {
        return std::nullopt;
    }
    return m_next;
}

std::optional<Pacer::Clock::time_point> Pacer::try_take(Clock::time_point now) {
    if (m_unlimited) {
        return now;
    }
    if (now < m_next) {
        return std::nullopt;
    }
    // Slots due now: lateness under one interval is not a stall and keeps the schedule.
    // More than `burst` due means a stall: the older missed slots are dropped.
    auto due = (now - m_next) / m_interval + 1;
    if (due > m_burst) {
        m_next = now - m_interval * (m_burst - 1);
    }
    auto slot = m_next;
    m_next += m_interval;
    return slot;
}

void Pacer::pause_until(Clock::time_point until) {
    if (m_next < until) {
        m_next = until;
    }
}

} // namespace hookctl::replay
