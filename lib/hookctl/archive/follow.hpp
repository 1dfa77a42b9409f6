#pragma once

// Following an archive while others write to it (`hookctl events tail [-f]`): the events stored
// (a receiver's archive while `listen` runs) and the delivery attempts recorded (a replay's),
// read after a cursor (events.seq, attempts.id) with filters.
//
// Cost and latency: the follower never scans for news. It asks SQLite's `PRAGMA data_version`
// (read from the WAL index: no table is touched) on a back-off poll (PollSchedule): soon after a
// change, then less and less often while nothing changes, never more than `max` apart. New rows
// are printed within `max` (100 ms) plus the time to read them of their commit, and an idle
// follower wakes ten times a second for a few microseconds of work.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/archive/archive.hpp>
#include <hookctl/util/clock.hpp>
#include <hookctl/util/wait.hpp>

namespace hookctl::archive {

// Which records `events tail` shows. Empty fields do not filter.
struct TailFilter {
    std::vector<std::string> statuses;    // the record's status: an event's, an attempt's outcome
    std::vector<std::string> org_ids;     // any of these
    std::optional<std::int64_t> since_ms; // received (events) or attempted (attempts) at or after
    std::string grep;                     // text the event's payload must contain
};

// One line of `events tail`: an event as stored, or one delivery attempt of an event.
struct TailRecord {
    enum class Kind { event, attempt };
    Kind kind = Kind::event;
    std::int64_t cursor = 0; // events.seq or attempts.id
    std::int64_t at_ms = 0;  // received_at, or when the attempt was made
    std::string event_id;
    std::string org_id;
    std::string status; // the event's status, or the attempt's outcome
    std::string reason; // the event's verdict or last error; the attempt's reason code
    std::optional<double> latency_ms; // attempts
    std::string verified_by;          // events: fingerprint of the key that verified it
    std::string source;               // events: who stored it (listen, import, ...)
    // Attempts only.
    std::string run_id;
    std::string target;
    std::int64_t attempt = 0;
    int http_status = 0;
    std::string detail;
};

// The record of a stored event, and of an attempt (with its event's org).
TailRecord record_of(const Event& event);
TailRecord record_of(const Attempt& attempt, std::string_view org_id);

// True when `record` passes `filter`; `payload` is its event's body (needed only for grep).
bool matches(const TailFilter& filter, const TailRecord& record, std::string_view payload);

// One line, columns two spaces apart: time, event id, org, status, reason, latency, key (and,
// for an attempt, its number and target). Empty columns are `-`.
std::string format_line(const TailRecord& record);

// One NDJSON object: {"type": "event"|"attempt", "at", "event_id", "org_id", "status",
// "reason", "latency_ms", "verified_by", ...}.
nlohmann::json to_json(const TailRecord& record);

// When to look at the archive next: the wait starts at `min` after a look that found a change
// and doubles after each look that found none, up to `max`. Pure: time comes in.
struct PollSettings {
    std::chrono::milliseconds min{10};
    std::chrono::milliseconds max{100};
};

class PollSchedule {
public:
    using SteadyTime = std::chrono::steady_clock::time_point;
    using Settings = PollSettings;
    explicit PollSchedule(Settings settings = {});

    // The time of the next look, after one at `now` that found a change or not.
    SteadyTime after_look(SteadyTime now, bool changed);
    std::chrono::milliseconds interval() const { return m_interval; }
    const Settings& settings() const { return m_settings; }

private:
    Settings m_settings;
    std::chrono::milliseconds m_interval;
};

// Reads an archive's new records after its cursors. Opens the file read-only; one thread.
class Follower {
public:
    // Fails (exit 4) when the archive cannot be opened.
    static Result<Follower> open(const std::string& path, TailFilter filter);

    // What to show before following: the last `last` records that pass the filter (or, with
    // `since_ms`, every one since then), in time order. Sets the cursors at the archive's end,
    // so poll() returns only what is committed afterwards.
    Result<std::vector<TailRecord>> backlog(std::size_t last);

    // Looks for news: when something was committed since the last look (data_version), reads
    // the records after the cursors that pass the filter, in time order, and moves the cursors.
    // `changed` says whether anything was committed at all.
    Result<std::vector<TailRecord>> poll(bool& changed);

    // True when the file at the path is no longer the one opened (deleted, or replaced).
    bool gone() const;

    const std::string& path() const { return m_path; }

private:
    Follower(std::string path, std::unique_ptr<Store> archive, TailFilter filter);
    Result<std::vector<TailRecord>> read_after(std::int64_t seq_high, std::int64_t attempt_high);
    Result<bool> keep(const TailRecord& record, const Event* event);

    std::string m_path;
    std::unique_ptr<Store> m_archive;
    TailFilter m_filter;
    std::int64_t m_seq = 0;
    std::int64_t m_attempt = 0;
    std::int64_t m_version = 0;
    unsigned long long m_dev = 0;
    unsigned long long m_ino = 0;
};

// Why following stopped.
enum class FollowEnd { stopped, archive_gone };

// The follow loop: waits (through `waiter`) as `schedule` says, polls `follower`, and hands
// what it found to `print` (which returns false to stop, e.g. when stdout is closed). Ends when
// the waiter is asked to stop (SIGINT), the archive goes away, or `print` says so. Fails on a
// read error (exit 4).
Result<FollowEnd> follow(Follower& follower, PollSchedule& schedule, const util::Clock& clock,
                         util::Waiter& waiter,
                         const std::function<bool(const std::vector<TailRecord>&)>& print);

} // namespace hookctl::archive
