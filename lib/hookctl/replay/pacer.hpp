#pragma once

#include <chrono>
#include <optional>

#include <hookctl/util/units.hpp>

namespace hookctl::replay {

// Paces sends on a fixed schedule like vegeta: the n-th send is due at start + n / rate, so
// the achieved rate does not drift with per-send overhead. After a stall (full concurrency,
// a slow loop) at most `burst` overdue sends go out back to back; older missed slots are
// dropped rather than flooding the target. pause_until() moves the schedule past a pause
// (429 Retry-After) without any catch-up burst afterwards.
class Pacer {
public:
    using Clock = std::chrono::steady_clock;

    // `rate` unlimited: every take succeeds. `burst` < 1 counts as 1.
    Pacer(util::Rate rate, int burst, Clock::time_point start);

    // When the next send may go, or nothing when the rate is unlimited.
    std::optional<Clock::time_point> next_due() const;

    // Takes a slot if one is due at `now` and returns when it was due (`now` when the rate
    // is unlimited); nothing when the next send is not due yet.
    std::optional<Clock::time_point> try_take(Clock::time_point now);

    // No send before `until`; the schedule restarts from there.
    void pause_until(Clock::time_point until);

    // The schedule interval (zero when unlimited).
    std::chrono::nanoseconds interval() const { return m_interval; }

private:
    bool m_unlimited = false;
    std::chrono::nanoseconds m_interval{0};
    int m_burst = 1;
    Clock::time_point m_next;
};

} // namespace hookctl::replay
