#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
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
    std::int64_t item = 0;   // its run item (0: not part of a run, e.g. a dry run)
    int attempts_before = 0; // attempts earlier invocations of the run made
    std::int64_t seq = 0;    // archive: the event's seq; other sources: 1-based position
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
    har,     // a HAR file: the request bodies of its entries (archive::read_har)
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
    // kind archive: the archive keys its bodies are read with (never part of a stored plan).
    std::shared_ptr<const archive::BodyCipher> cipher = nullptr;

    // `archive FILE`, `query over FILE`, `mime FILE`, `har FILE`: how summaries and runs name
    // it.
    std::string describe() const;
};

// Picks the kind for `path`: query when `query` is set, archive for a SQLite file, har for a
// `.har` file or one that starts with `{`, mime for a directory or any other file. Fails
// (exit 2) when `path` cannot be read.
Result<SourceKind> detect_source_kind(const std::string& path, bool has_query);

// Opens the hookctl archive a source of kind archive names, once per command: read-write (an
// older file is migrated; none is created) with the source's archive keys. The handle then
// serves the counting, the walk and the run (see count_events, for_each_event, start_run).
// Fails (exit 2) when the file cannot be read as an archive; (exit 4) when the keys do not
// open its bodies, as in every command.
Result<std::unique_ptr<archive::Store>> open_source_archive(const SourceSpec& spec);

// How many events `spec` selects (its limit honoured). This is also the up-front check of
// the source: an unreadable file, an SQL error or a missing column fails here (exit 2).
// `archive`: for a source of kind archive, its handle (open_source_archive); the file is not
// opened again. Ignored for other kinds (they read their files themselves).
Result<std::uint64_t> count_events(const SourceSpec& spec, archive::Store* archive);

// Calls `visit` for each event `spec` selects, in the run's sending order, streaming (memory
// flat). `visit` returns false to stop. (A dry run's walk: no run is involved.) `archive` as
// for count_events.
using EventVisitor = std::function<Result<bool>(ReplayEvent&& event)>;
Result<void> for_each_event(const SourceSpec& spec, archive::Store* archive,
                            const EventVisitor& visit);

// Records the selection of `spec` as the items of run `run_id` in `store` (the run's archive;
// for an archive source, the source itself): numbered 1.. in sending order, memory flat.
// Returns how many events were selected. Fails (exit 2) on a source error.
Result<std::int64_t> select_items(const SourceSpec& spec, archive::Store& store,
                                  std::string_view run_id);

// Calls `visit` for each pending item of run `run_id` in item order, with its event read
// from the source: from `store` itself for an archive source (re-parsed with `reparse`), else
// by walking the source and matching each event to its item by position and event id.
// `store` is a connection of the calling thread to the run's archive. A pending item whose
// event is no longer in the source is reported through `missing` (the run cannot complete).
Result<void> for_each_pending(const SourceSpec& spec, archive::Store& store,
                              std::string_view run_id, const EventVisitor& visit,
                              const std::function<void(const archive::RunItem&)>& missing);

// The event to send for the pending item `item` of a run over an archive source, read with its
// `stored` event (re-parsed when the spec says so); nothing when the item's event was deleted
// (stored.event_id empty).
Result<std::optional<ReplayEvent>>
pending_event(const SourceSpec& spec, const archive::RunItem& item, const archive::Event& stored);

// Where a replay takes its next event from (ARCHITECTURE.md, "Seams"): the real one reads
// ahead on a thread of its own (Prefetch); unit tests feed a list.
class Feed {
public:
    virtual ~Feed() = default;
    // The next event, without waiting; nothing when none is ready (see done()). With
    // `skip_if_busy`, also nothing while the feed is busy filling: a sender with events in
    // hand must not wait behind a reader that lost its CPU holding a lock.
    virtual std::optional<ReplayEvent> try_pop(bool skip_if_busy = false) = 0;
    // Every event was read and taken (or the source failed).
    virtual bool done() const = 0;
    // Why the source failed, if it did.
    virtual std::optional<Error> error() const = 0;
    // Pending items whose events are no longer in the source (seen so far).
    virtual std::int64_t missing() const = 0;
};

// A Feed that reads the pending items of a run with for_each_pending on a thread of its own,
// up to `max_events` (and about `max_bytes` of bodies) ahead of the sender, so page reads and
// MIME parsing never hold up a paced send. `wake` runs on the reader's thread when events
// arrive in an empty queue or the source ends (it must be thread-safe, e.g. Sender::wakeup).
class Prefetch final : public Feed {
public:
    Prefetch(SourceSpec spec, std::unique_ptr<archive::Store> store, std::string run_id,
             std::size_t max_events, std::size_t max_bytes, std::function<void()> wake);
    // Stops the reader (it may be waiting for room) and joins it.
    ~Prefetch() override;
    Prefetch(const Prefetch&) = delete;
    Prefetch& operator=(const Prefetch&) = delete;

    std::optional<ReplayEvent> try_pop(bool skip_if_busy = false) override;
    bool done() const override;
    std::optional<Error> error() const override;
    std::int64_t missing() const override;

private:
    void read(const SourceSpec& spec, archive::Store& store, const std::string& run_id);
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
    std::int64_t m_missing = 0;
    std::thread m_thread;
};

} // namespace hookctl::replay
