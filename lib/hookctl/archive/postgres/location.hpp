#pragma once

// What hookctl accepts and shows of a PostgreSQL archive's location (a libpq URI,
// `postgres://[user@]host[:port]/dbname[?param=value...]`), and when it reconnects after the
// server was lost.

#include <chrono>
#include <string>
#include <string_view>

#include <hookctl/util/error.hpp>

namespace hookctl::archive::postgres {

// True when `where` is a PostgreSQL URI (`postgres://` or `postgresql://`).
bool is_uri(std::string_view where);

// Fails (exit 2) when `uri` carries a password (`user:password@` or a `password=` or
// `sslpassword=` parameter): like a secret on argv, it would sit in process lists, shell
// history and the runs this archive records. The message names neither the URI nor the
// password and says where the password goes instead (PGPASSWORD, ~/.pgpass, a service file).
Result<void> check_uri(std::string_view uri);

// `uri` as messages and records show it: any password removed, and of the query parameters
// only the names of those that are not known to be harmless (their values shown as `...`).
std::string display_uri(std::string_view uri);

// When a lost connection is tried again: at once the first time, then not before a delay that
// doubles from `initial` to `max` while the server stays away, so a receiver under load does not
// retry in a tight loop. Time comes in as an argument.
class ReconnectPacer {
public:
    using Clock = std::chrono::steady_clock;
    ReconnectPacer(std::chrono::milliseconds initial = std::chrono::milliseconds(250),
                   std::chrono::milliseconds max = std::chrono::milliseconds(2000));

    // True when a connection may be attempted at `now`.
    bool may_try(Clock::time_point now) const;
    // A connection attempt failed at `now`: the next waits one delay more (doubled).
    void failed(Clock::time_point now);
    // Connected: the next loss is tried again at once.
    void succeeded();
    // The delay the next failure will impose.
    std::chrono::milliseconds next_delay() const { return m_delay; }

private:
    std::chrono::milliseconds m_initial;
    std::chrono::milliseconds m_max;
    std::chrono::milliseconds m_delay;
    Clock::time_point m_not_before{};
};

} // namespace hookctl::archive::postgres
