#include <cerrno>
#include <csignal>
#include <ctime>
#include <poll.h>
#include <sys/signalfd.h>
#include <thread>
#include <unistd.h>

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

timespec left_until(Waiter::SteadyTime deadline) {
    auto left = deadline - std::chrono::steady_clock::now();
    if (left < std::chrono::nanoseconds(0)) {
        left = std::chrono::nanoseconds(0);
    }
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    return {static_cast<std::time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

} // namespace

SignalWaiter::SignalWaiter(int watch_fd)
    : m_watch_fd(watch_fd) {
    sigset_t set = stop_set();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    m_signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
}

SignalWaiter::~SignalWaiter() {
    if (m_signal_fd >= 0) {
        ::close(m_signal_fd);
    }
}

bool SignalWaiter::wait_until(SteadyTime deadline) {
    if (m_signal != 0 || m_output_closed) {
        return false;
    }
    if (m_signal_fd < 0) { // no signalfd: signals only, by sigtimedwait
        sigset_t set = stop_set();
        for (;;) {
            timespec timeout = left_until(deadline);
            int got = sigtimedwait(&set, nullptr, &timeout);
            if (got > 0) {
                m_signal = got;
                return false;
            }
            if (errno == EAGAIN) {
                return true;
            }
            if (errno != EINTR) {
                std::this_thread::sleep_until(deadline);
                return true;
            }
        }
    }
    for (;;) {
        // events 0 on the watched fd: poll reports only POLLERR (a pipe without readers) and
        // POLLHUP (a hung-up terminal or socket), never that it is writable.
        pollfd fds[2] = {{m_signal_fd, POLLIN, 0}, {m_watch_fd, 0, 0}};
        timespec timeout = left_until(deadline);
        int ready = ppoll(fds, m_watch_fd >= 0 ? 2 : 1, &timeout, nullptr);
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            std::this_thread::sleep_until(deadline);
            return true;
        }
        if ((fds[0].revents & POLLIN) != 0) {
            signalfd_siginfo info{};
            if (::read(m_signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
                m_signal = static_cast<int>(info.ssi_signo);
                return false;
            }
        }
        if (m_watch_fd >= 0 && (fds[1].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
            m_output_closed = true;
            return false;
        }
        if (ready == 0) {
            return true; // the deadline came
        }
    }
}

} // namespace hookctl::util
