#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace hookctl::receive {

// What the receiver does when accept() fails (out of file descriptors, EMFILE/ENFILE, or out of
// memory): it waits before the next accept, twice as long each time in a row (`k_first_wait`
// up to `k_max_wait`; new connections wait in the kernel's queue meanwhile), and logs at most
// one line per `k_report_interval`, saying how many accepts failed since the last line, instead
// of one line per failure. A successful accept resets the wait, not the line's interval (so a
// limit the load keeps hitting still gives one line per interval).
//
// Decisions only: the caller passes the time (a steady clock's). Not thread-safe: the accept
// loop owns it.
class AcceptBackoff {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds k_first_wait{50};
    static constexpr std::chrono::milliseconds k_max_wait{1000};
    static constexpr std::chrono::seconds k_report_interval{10};

    struct Decision {
        std::chrono::milliseconds wait; // before the next accept
        // Set: log one line now, with this many failures since the last line (this one included).
        std::optional<std::uint64_t> report;
    };

    Decision failed(Clock::time_point now);
    void succeeded();

    std::uint64_t total_failures() const { return m_total; }

private:
    std::chrono::milliseconds m_wait{0};
    std::optional<Clock::time_point> m_last_report;
    std::uint64_t m_unreported = 0;
    std::uint64_t m_total = 0;
};

} // namespace hookctl::receive
