#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <hookctl/archive/archive.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::replay {

// One event to deliver, from any source.
struct ReplayEvent {
    std::int64_t seq = 0; // archive: the event's seq; other sources: 1-based position
    std::string event_id;
    std::string org_id;
    std::int64_t received_at_ms = 0;
    std::string trace_id;
    std::string body; // the bytes to sign and send
};

enum class SourceKind {
    archive, // a hookctl archive (SQLite with hookctl's application id)
    query,   // --query SQL over any SQLite file
    mime,    // a .eml file, a directory of .eml files, a Maildir, or an mbox file
};

// Where events come from and which ones (replay --from and its filters).
struct SourceSpec {
    SourceKind kind = SourceKind::archive;
    std::string path;
    std::string query;           // kind query: the SQL
    archive::EventFilter filter; // kind archive (statuses default to failed + dead)
    bool reparse = false;        // kind archive: re-parse raw_mime with today's parser
    std::string org_id;          // kind mime: org_id of the parsed events
    bool ordered = false;        // visit in received_at order (archive: sorted; others: as read)

    // `archive FILE`, `query over FILE`, `mime FILE`: how summaries and runs name it.
    std::string describe() const;
};

// Picks the kind for `path`: query when `query` is set, archive for a SQLite file, mime for a
// directory or any other file. Fails (exit 2) when `path` cannot be read.
Result<SourceKind> detect_source_kind(const std::string& path, bool has_query);

// How many events `spec` selects. This is also the up-front check of the source: an
// unreadable file, an SQL error or a missing column fails here (exit 2), before anything is
// sent.
Result<std::uint64_t> count_events(const SourceSpec& spec);

// Calls `visit` for each selected event with seq > `after_seq`, in order, streaming (memory
// flat except `ordered` over an archive, which sorts the ids). `visit` returns false to stop.
using EventVisitor = std::function<Result<bool>(ReplayEvent&& event)>;
Result<void> for_each_event(const SourceSpec& spec, std::int64_t after_seq,
                            const EventVisitor& visit);

// Reads a source with for_each_event on a thread of its own, up to `max_events` (and about
// `max_bytes` of bodies) ahead of the sender, so page reads and MIME parsing never hold up a
// paced send. `wake` runs on the reader's thread when events arrive in an empty queue or the
// source ends (it must be thread-safe, e.g. http::Client::wakeup).
class Prefetch {
public:
    Prefetch(SourceSpec spec, std::int64_t after_seq, std::size_t max_events, std::size_t max_bytes,
             std::function<void()> wake);
    // Stops the reader (it may be waiting for room) and joins it.
    ~Prefetch();
    Prefetch(const Prefetch&) = delete;
    Prefetch& operator=(const Prefetch&) = delete;

    // The next event read, without waiting for the reader; nothing when none is ready (see
    // done()). With `skip_if_busy`, also nothing while the reader holds the queue: a sender
    // with events in hand must not wait behind a reader that lost its CPU holding the lock.
    std::optional<ReplayEvent> try_pop(bool skip_if_busy = false);
    // The source is read to its end (or failed) and every event was taken.
    bool done() const;
    // Why the reader failed, if it did (an SQL error, an unreadable message, ...).
    std::optional<Error> error() const;

private:
    void read(const SourceSpec& spec, std::int64_t after_seq);
    bool below_low_water() const; // with the mutex held

    std::size_t m_max_events;
    std::size_t m_max_bytes;
    std::function<void()> m_wake;
    mutable std::mutex m_mutex;
    std::condition_variable m_room;
    std::deque<ReplayEvent> m_queue;
    std::size_t m_queued_bytes = 0;
    bool m_finished = false; // the reader returned
    bool m_cancelled = false;
    bool m_reader_waiting = false; // the reader waits for the queue to fall to half
    std::optional<Error> m_error;
    std::thread m_thread;
};

} // namespace hookctl::replay
