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

// Waits with SIGINT and SIGTERM blocked in the calling thread and read from a signalfd, so a
// stop signal ends the wait at once (or the next one, if it came while the thread was busy),
// with no handler and no busy loop. When `watch_fd` is given (stdout), the wait also ends when
// its reader goes away (a pipe whose reader exited, `tail -f | head -1`; a hung-up terminal),
// as GNU tail -f does, so a follower that prints nothing for hours still exits. For
// single-threaded commands (`events tail -f`); the signals stay blocked after it is destroyed,
// until the process exits.
class SignalWaiter final : public Waiter {
public:
    explicit SignalWaiter(int watch_fd = -1);
    ~SignalWaiter() override;
    SignalWaiter(const SignalWaiter&) = delete;
    SignalWaiter& operator=(const SignalWaiter&) = delete;

    bool wait_until(SteadyTime deadline) override;
    // The signal that stopped the wait (SIGINT or SIGTERM), 0 before one came.
    int signal() const { return m_signal; }
    // True when the wait stopped because the reader of `watch_fd` went away.
    bool output_closed() const { return m_output_closed; }

private:
    int m_signal_fd = -1;
    int m_watch_fd = -1;
    int m_signal = 0;
    bool m_output_closed = false;
};

} // namespace hookctl::util
