#pragma once

#include <chrono>

namespace hookctl::util {

// Waits for a deadline, or less when asked to stop: the seam through which a polling loop
// sleeps, so tests run it on fake time (a fake moves a ManualClock to the deadline).
class Waiter {
public:
    using SteadyTime = std::chrono::steady_clock::time_point;
    virtual ~Waiter() = default;
    // Waits until `deadline`; returns false when a stop was requested (now or before).
    virtual bool wait_until(SteadyTime deadline) = 0;
};

// Waits with SIGINT and SIGTERM blocked in the calling thread and taken by sigtimedwait, so a
// stop signal ends the wait at once (or the next one, if it came while the thread was busy),
// with no handler and no busy loop. For single-threaded commands (`events tail -f`); the
// signals stay blocked after it is destroyed, until the process exits.
class SignalWaiter final : public Waiter {
public:
    SignalWaiter();
    bool wait_until(SteadyTime deadline) override;
    // The signal that stopped the wait (SIGINT or SIGTERM), 0 before one came.
    int signal() const { return m_signal; }

private:
    int m_signal = 0;
};

} // namespace hookctl::util
