#pragma once

#include <chrono>
#include <cstdint>

#include <hookctl/util/time.hpp>

namespace hookctl::util {

// The two clocks a decision needs, behind one seam so tests run it on fake time
// (ARCHITECTURE.md, "Seams"): a steady clock for schedules, pauses and timeouts, and the wall
// clock in Unix milliseconds for signing timestamps and the records. Code that decides (what to
// send next, whether to retry, when a run is done) takes a Clock and never reads the system
// clocks itself.
class Clock {
public:
    using SteadyTime = std::chrono::steady_clock::time_point;

    virtual ~Clock() = default;
    virtual SteadyTime steady() const = 0;
    virtual std::int64_t unix_ms() const = 0;

    std::chrono::system_clock::time_point wall() const {
        return std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms()));
    }
};

// The machine's clocks.
class SystemClock final : public Clock {
public:
    SteadyTime steady() const override { return std::chrono::steady_clock::now(); }
    std::int64_t unix_ms() const override { return unix_now_ms(); }
};

// A clock that moves only when told: both readings advance together.
class ManualClock final : public Clock {
public:
    explicit ManualClock(std::int64_t unix_ms = 1'764'000'000'000)
        : m_unix_ms_at_start(unix_ms) {}

    SteadyTime steady() const override { return m_now; }
    std::int64_t unix_ms() const override {
        return m_unix_ms_at_start +
               std::chrono::duration_cast<std::chrono::milliseconds>(m_now - SteadyTime{}).count();
    }
    void advance(std::chrono::nanoseconds by) { m_now += by; }
    void advance_to(SteadyTime to) {
        if (to > m_now) {
            m_now = to;
        }
    }

private:
    SteadyTime m_now{};
    std::int64_t m_unix_ms_at_start;
};

} // namespace hookctl::util
