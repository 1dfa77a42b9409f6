#include <cerrno>
#include <csignal>
#include <ctime>
#include <thread>

#include <hookctl/util/wait.hpp>

namespace hookctl::util {
namespace {

sigset_t stop_set() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

} // namespace

SignalWaiter::SignalWaiter() {
    sigset_t set = stop_set();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool SignalWaiter::wait_until(SteadyTime deadline) {
    if (m_signal != 0) {
        return false;
    }
    sigset_t set = stop_set();
    for (;;) {
        auto left = deadline - std::chrono::steady_clock::now();
        if (left < std::chrono::nanoseconds(0)) {
            left = std::chrono::nanoseconds(0);
        }
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        timespec timeout{static_cast<std::time_t>(ns / 1'000'000'000),
                         static_cast<long>(ns % 1'000'000'000)};
        int got = sigtimedwait(&set, nullptr, &timeout);
        if (got > 0) {
            m_signal = got;
            return false;
        }
        if (errno == EAGAIN) {
            return true; // the deadline came
        }
        if (errno != EINTR) {
            std::this_thread::sleep_until(deadline); // cannot wait on signals: a plain sleep
            return true;
        }
    }
}

} // namespace hookctl::util
