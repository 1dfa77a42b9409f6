#pragma once

// hookctl::archive: the archive of DESIGN.md §5 (events, delivery attempts, runs, and the
// receiver's request log) behind one interface, Store, that each backend implements. The SQLite
// backend (archive/sqlite/) is the one built; its schema is documented in hookctl-events(1),
// section SCHEMA.
//
// Thread-safety: a Store is used by one thread at a time (one Store per thread; the receiver's
// writer thread owns one). Several Stores, in one process or several, may open the same
// archive: in SQLite, WAL mode lets readers run while one writer writes, and every connection
// waits up to `busy_timeout` for a lock instead of failing at once.
//
// Times are Unix milliseconds (UTC) in the API and in the file (INTEGER columns named *_ms);
// NDJSON import and export use RFC 3339 text with milliseconds (`2026-11-26T18:00:00.123Z`).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/archive/encryption.hpp>
#include <hookctl/util/error.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::archive {

// The schema version this build writes (`PRAGMA user_version`). Opening an older file
// migrates it forward in one transaction; a newer file is refused (exit 4).
//   1: events, attempts, runs.
//   2: events.trace_id and events.source columns, the `requests` table (the receiver's log,
//      injected faults included), index attempts(run_id, event_id).
//   3: events.body and events.raw_mime moved to the `event_bodies` table (keyed by seq), so a
//      status update rewrites a small row; a trigger deletes a body with its event.
//   4: events.verified_by (fingerprint of the key that verified it) and
//      events.client_identity (the verified TLS client certificate's subject), attempts.detail
//      (why an attempt failed: a response excerpt or the transport error), runs.started_by and
//      runs.paused_until_ms,
//      the `run_items` table (a run's selection and each item's state), index events_org.
//   5: the `archive_meta` table (encryption at rest: whether bodies are encrypted, under which
//      keys, an unfinished rekey) and the `event_reparses` table (new parses of an event's raw
//      MIME stored beside its body by `events reparse --write`).
inline constexpr int k_schema_version = 5;

// `PRAGMA application_id` of a hookctl archive ("hkct"); a file with another id is refused.
inline constexpr std::int32_t k_application_id = 0x686b6374;

enum class Mode {
    create,     // read-write; creates the file (and the schema) when missing
    read_write, // read-write; the file must exist
    read_only,  // reads only; the file must exist and be at the current schema version
};

struct OpenOptions {
    Mode mode = Mode::create;
    std::chrono::milliseconds busy_timeout{5000};
    // `PRAGMA synchronous`: true = FULL (a committed transaction survives power loss),
    // false = NORMAL (survives a process crash, the WAL default). The receiver wants true.
    bool synchronous_full = true;
    // The archive keys (hookctl-events(1), ENCRYPTION): bodies, raw MIME and re-parses are
    // sealed under the cipher's first key when stored and opened when read. Null: no key; an
    // encrypted archive's metadata still reads and updates, its bodies do not. Store::another
    // keeps the cipher of the archive it is called on unless `options` gives one.
    std::shared_ptr<const BodyCipher> cipher = nullptr;
};

// Event status. `received` is the state of a stored event nobody delivered yet.
enum class EventStatus { received, delivered, failed, dead };

std::string_view to_string(EventStatus status);
// Parses `received|delivered|failed|dead`; fails (exit 2) naming the accepted values.
Result<EventStatus> parse_event_status(std::string_view text);

// An event to store.
struct NewEvent {
    std::string event_id; // unique; a second insert of the same id is a duplicate
    std::int64_t received_at_ms = 0;
    std::string org_id;       // may be empty
    std::string scheme;       // signature scheme it arrived with (`mailparse`, ...), or empty
    util::HeaderList headers; // as received, order and repeats kept
    std::string body;         // raw bytes, exactly as signed
    std::optional<std::string> raw_mime; // raw MIME bytes when known
    EventStatus status = EventStatus::received;
    std::int64_t attempts = 0;   // attempts made elsewhere (import); the receiver leaves 0
    std::string last_error;      // e.g. the reason given on import
    std::string trace_id;        // W3C trace id (32 hex) or empty
    std::string source;          // who stored it: `listen`, `import`, ...
    std::string verified_by;     // fingerprint of the key that verified it, or empty
    std::string client_identity; // the verified TLS client certificate's subject, or empty
    // When set, stored as the event's updated_at_ms (`events copy` keeps it); else the time of
    // the insert.
    std::optional<std::int64_t> updated_at_ms;
};

enum class InsertResult { inserted, duplicate };

// A stored event.
struct Event {
    std::int64_t seq = 0; // insertion order (SQLite rowid); stable, used as a resume cursor
    std::string event_id;
    std::int64_t received_at_ms = 0;
    std::string org_id;
    std::string scheme;
    util::HeaderList headers;
    std::string body;
    std::optional<std::string> raw_mime;
    EventStatus status = EventStatus::received;
    std::int64_t attempts = 0; // delivery attempts recorded for this event
    std::string last_error;
    std::int64_t updated_at_ms = 0; // last change of status / attempts
    std::string trace_id;
    std::string source;
    std::string verified_by;
    std::string client_identity;
};

// Which events a query selects. Empty fields do not filter. Results come in `seq` order.
struct EventFilter {
    std::vector<EventStatus> statuses;     // any of these
    std::optional<std::int64_t> since_ms;  // received_at_ms >= since_ms
    std::optional<std::int64_t> until_ms;  // received_at_ms <  until_ms
    std::vector<std::string> org_ids;      // any of these
    std::vector<std::string> event_ids;    // any of these
    std::optional<std::int64_t> after_seq; // seq > after_seq (resume cursor)
    std::optional<std::uint64_t> limit;    // at most this many
    bool with_body = true; // false: body and raw_mime are left empty (cheaper listings)
};

// The state of one event in a run's selection (a run item): the ledger of DESIGN.md §7.
enum class ItemState { pending, delivered, dead };
std::string_view to_string(ItemState state);
// Parses `pending|delivered|dead`; nothing on any other text.
std::optional<ItemState> parse_item_state(std::string_view text);

// What became of one delivery attempt. Stored as its to_string text (`delivered`, `retry`,
// `failed`, `dead`) in attempts.outcome: the text is the archive format and never changes.
enum class AttemptOutcome { delivered, retry, failed, dead };
std::string_view to_string(AttemptOutcome outcome);
// Parses the stored text back; nothing on any other text.
std::optional<AttemptOutcome> parse_attempt_outcome(std::string_view text);

// One delivery attempt of one event in one run.
struct Attempt {
    std::int64_t id = 0; // attempts.id when read by for_each_attempt (0 otherwise)
    std::string run_id;  // may be empty (a delivery outside a run, e.g. listen --forward-to)
    std::string event_id;
    std::string target;       // URL or target name
    std::int64_t attempt = 1; // 1-based attempt number for this event in this run
    std::int64_t at_ms = 0;   // when the request was sent
    int http_status = 0;      // 0 when there was no HTTP response
    double latency_ms = 0;
    AttemptOutcome outcome = AttemptOutcome::delivered;
    std::string reason; // reason code, e.g. `http_503`, `timeout`, `connect_refused`
    // Why, in words: an excerpt of the response body (at most k_detail_limit bytes) or the
    // transport error; empty when delivered.
    std::string detail;
    // When set, the event's status becomes this (and last_error = reason unless delivered).
    std::optional<EventStatus> new_status;
    // The run item this attempt is for (0: none); its attempt count goes up by one and, when
    // `item_state` is set, the item is settled in that state.
    std::int64_t item = 0;
    std::optional<ItemState> item_state;
    // A run shared by workers (SharedRun): the lease token the worker holds the item under.
    // The item and the event's status change only while the item is still leased with it, so
    // a stale worker's outcome is ignored (the attempt itself is recorded). Empty: no lease.
    std::string lease;
};

// A run item settled without a new attempt: a replay held its last failed attempt's verdict
// back (a systemic failure was possible) and then judged it per event. Applies `state` to the
// item and, when `event_status` is set, that status and `reason` (as last_error) to the event.
struct ItemVerdict {
    std::string run_id;
    std::int64_t item = 0;
    std::string event_id;
    ItemState state = ItemState::dead;
    std::optional<EventStatus> event_status;
    std::string reason;
    std::string lease; // as Attempt::lease
};

// A new parse of an event's raw MIME, stored beside its body (`events reparse --write`).
struct NewReparse {
    std::string event_id;
    std::string parser;                 // what parsed it, e.g. `hookctl 0.1.0`
    std::vector<std::string> divergent; // the fields that differ from the stored body
    std::string body;                   // the new event JSON
};

// A stored re-parse. The body an event was stored with is its version 0; re-parses count up.
struct Reparse {
    std::int64_t version = 0;
    std::string parser;
    std::int64_t created_at_ms = 0;
    std::vector<std::string> divergent;
    std::string body; // empty when read without bodies
};

// One value as stored in the file (sealed or in clear), for `events rekey`.
struct StoredValue {
    StoredTable table = StoredTable::bodies;
    std::int64_t row = 0; // event_bodies.seq or event_reparses.id
    std::string event_id; // the value is bound to it
    std::string field;    // `body`, `raw_mime`, `reparse:N`
    std::string bytes;
};

// The most bytes of a response body an attempt keeps as its detail.
inline constexpr std::size_t k_detail_limit = 512;

enum class RunState { running, paused, completed, aborted, failed };
std::string_view to_string(RunState state);
Result<RunState> parse_run_state(std::string_view text);

// A run's ledger, as stored in its row: selected = delivered + dead + pending.
struct RunProgress {
    std::int64_t total = 0; // events selected
    std::int64_t done = 0;  // events settled (delivered + dead)
    std::int64_t delivered = 0;
    std::int64_t dead = 0;   // dead-lettered (column `failed`)
    std::int64_t cursor = 0; // runs of schema version 3 and before: last seq completed in order
    // A 429's Retry-After asked the run to send nothing before this (Unix ms; 0: no pause), so
    // a resume started during the pause waits it out too.
    std::int64_t paused_until_ms = 0;

    std::int64_t pending() const { return total - delivered - dead; }
};

// One item of a run's selection.
struct RunItem {
    std::int64_t item = 0; // 1-based position in the run's sending order
    std::string event_id;
    std::int64_t seq = 0; // events.seq in a hookctl archive source, else the position in it
    ItemState state = ItemState::pending;
    std::int64_t attempts = 0; // attempts this run made
};

// A run item as `events copy` moves it between archives. `of_event`: its seq is the seq of its
// event in the archive it was read from (a run over that archive), so the copy gives it the seq
// that event has in the destination; otherwise (a foreign source's position) seq is kept.
struct RunItemCopy {
    RunItem item;
    bool of_event = false;
};

// How many of a run's items are in each state.
struct ItemCounts {
    std::int64_t pending = 0;
    std::int64_t delivered = 0;
    std::int64_t dead = 0;
    std::int64_t total() const { return pending + delivered + dead; }
};

struct NewRun {
    std::string run_id;              // empty: a random id `run_<16 hex>` is generated
    std::string kind;                // `replay`, `send`, ...
    std::string source;              // where events came from (archive path, query, ...)
    std::string target;              // target URL or name
    std::string options_json = "{}"; // the options the run was started with (JSON object text)
    std::string started_by;          // user@host
};

struct Run {
    std::string run_id;
    std::string kind;
    std::string source;
    std::string target;
    std::string options_json;
    RunState state = RunState::running;
    RunProgress progress;
    std::int64_t created_at_ms = 0;
    std::int64_t updated_at_ms = 0;
    std::string last_error;
    std::string started_by;
};

// One request the receiver answered (accepted, rejected, or an injected fault).
struct RequestLog {
    std::int64_t at_ms = 0;
    std::string event_id;  // may be empty (e.g. rejected before an id was found)
    int http_status = 0;   // what was answered; 0 for a dropped connection
    std::string reason;    // `accepted`, `duplicate`, `bad_signature`, `injected_fail`, ...
    bool injected = false; // true for an injected fault (never stored as an event)
    double latency_ms = 0;
    std::string trace_id;
};

struct LatencyPercentiles {
    std::int64_t count = 0; // attempts with a latency
    double p50 = 0, p95 = 0, p99 = 0, max = 0;
};

struct Stats {
    std::int64_t total = 0;
    std::vector<std::pair<std::string, std::int64_t>> by_status; // every status, fixed order
    std::vector<std::pair<std::string, std::int64_t>> by_org;    // most events first
    std::vector<std::pair<std::string, std::int64_t>> by_day;    // `YYYY-MM-DD` (UTC), ascending
    std::int64_t attempts = 0;
    std::vector<std::pair<std::string, std::int64_t>> attempts_by_outcome;
    LatencyPercentiles latency; // over every attempt (or the run's, see stats())
};

// --- runs shared by workers (replay --join; hookctl-replay(1), WORKERS) -----------------------

// A worker of a shared run: one replay process. Its `token` leases the items it claims.
struct WorkerLease {
    std::string token;                       // random, one per worker process; also its worker id
    std::string worker;                      // user@host:pid, for people
    std::chrono::milliseconds length{30000}; // a lease expires this long after its last renewal
};

// The state a worker of a shared run records when it ends the run's share in `state` (as
// Worker::state shows it): running, done, tripped, stopped or failed.
std::string_view worker_state(RunState state);

// A worker as `events runs` shows it.
struct Worker {
    std::string token;
    std::string worker;
    std::string state; // `running`, `done`, `stopped`, `tripped`, `failed`
    std::int64_t started_at_ms = 0;
    std::int64_t seen_at_ms = 0; // last heartbeat
    std::int64_t claimed = 0;    // items it claimed
    std::int64_t delivered = 0;  // items it settled
    std::int64_t dead = 0;
    std::int64_t holding = 0; // items it holds now (leased, pending)
    bool live = false;        // its lease is still valid (heartbeat within the lease length)
};

// Where a shared run stands, as one worker sees it.
struct SharedRunState {
    ItemCounts items;
    std::int64_t mine = 0;      // pending items leased to the asking worker
    std::int64_t leased = 0;    // pending items other workers hold under a valid lease
    std::int64_t claimable = 0; // pending items nobody holds (never leased, or lease expired)
    // Milliseconds until the first of the others' leases expires (0: none held).
    std::int64_t next_expiry_in_ms = 0;
    RunState state = RunState::running;
    std::string last_error;
};

// A block of send slots of a shared run's schedule (SharedRun::reserve_slots): `count` slots,
// `interval_ns` apart, the first `first_in_us` microseconds from when the server answered.
struct SlotBlock {
    std::int64_t first_in_us = 0;
    std::int64_t interval_ns = 0;
    int count = 0;
};

// An open archive: the one handle a command opens (archive::open) and passes down. Every
// backend implements it (SQLite in archive/sqlite/; PostgreSQL is issue 17): events, their
// bodies, delivery attempts, runs and run items, their queries and transactions. Callers never
// learn which backend they talk to; nothing outside archive/ writes SQL. Bodies, raw MIME and
// re-parses are sealed and opened by the store itself when the archive is encrypted (see
// OpenOptions::cipher), so no caller changes with encryption at rest.
//
// A Store is used by one thread at a time; a thread of the same command that needs a
// connection of its own asks the handle for another().
class Store {
public:
    Store() = default;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    // Closes the connection; an open transaction is rolled back.
    virtual ~Store() = default;

    // Where the archive is, as it was given to open(): a file path (SQLite) or a URI. It names
    // the archive in messages and in the resume commands of runs.
    virtual const std::string& path() const = 0;
    // The same archive opened again (a connection of its own) with `options`: for another
    // thread of the command that opened this one. Keeps this handle's archive keys unless
    // `options` gives some.
    virtual Result<std::unique_ptr<Store>> another(const OpenOptions& options) const = 0;
    // The schema version of the open archive (k_schema_version after open).
    virtual int schema_version() const = 0;

    // --- explicit transactions ------------------------------------------------------------

    // Groups several writes into one all-or-nothing transaction (e.g. a whole import):
    // begin() takes the write lock (BEGIN IMMEDIATE, waiting up to the busy timeout); writes
    // made until commit() join it; rollback() undoes them. Without begin() every write call is
    // its own transaction. Destroying the Store with a transaction open rolls it back.
    virtual Result<void> begin() = 0;
    virtual Result<void> commit() = 0;
    virtual void rollback() = 0;
    virtual bool in_transaction() const = 0;

    // --- events ---------------------------------------------------------------------------

    // Stores `events` in ONE transaction (one commit): for each, `inserted` or `duplicate`
    // (its event_id is already stored, or appeared earlier in the same batch; the stored
    // event is left untouched). On error nothing is stored (exit 4). Prepared statements are
    // reused across calls: this is the receiver's group-commit hot path.
    virtual Result<std::vector<InsertResult>> insert_events(std::span<const NewEvent> events) = 0;

    // Calls `visit` for each event `filter` selects, in seq order, streaming (memory stays
    // flat for any number of events). `visit` returns false to stop early. Returns how many
    // events were visited. Do not write through this Store from inside `visit`.
    virtual Result<std::uint64_t>
    for_each_event(const EventFilter& filter, const std::function<bool(const Event&)>& visit) = 0;

    // The backend's plan for the for_each_event query of `filter` (SQLite: the EXPLAIN QUERY
    // PLAN details, one per line): lets tests check that paged reads walk the primary key.
    virtual Result<std::string> event_query_plan(const EventFilter& filter) = 0;

    // How many events `filter` selects (ignores limit, after_seq honoured).
    virtual Result<std::uint64_t> count_events(const EventFilter& filter) = 0;

    // The event `event_id`, or nullopt when there is none.
    virtual Result<std::optional<Event>> get_event(std::string_view event_id) = 0;

    // Sets the status of `event_ids` to `status` with `reason` as last_error (empty reason
    // clears it), in one transaction. Returns the ids that are not in the archive (those are
    // skipped; the others are still marked).
    virtual Result<std::vector<std::string>> mark_events(std::span<const std::string> event_ids,
                                                         EventStatus status,
                                                         std::string_view reason) = 0;

    // --- delivery attempts ----------------------------------------------------------------

    // Records `attempts` in one transaction; each increments its event's `attempts` count and
    // applies `new_status` when set. An attempt for an unknown event id is still recorded.
    virtual Result<void> record_attempts(std::span<const Attempt> attempts) = 0;
    Result<void> record_attempt(const Attempt& attempt) { return record_attempts({&attempt, 1}); }

    // The attempts of `event_id` in time order (optionally only those of `run_id`).
    virtual Result<std::vector<Attempt>> attempts_for(std::string_view event_id,
                                                      std::string_view run_id = {}) = 0;

    // --- runs -----------------------------------------------------------------------------

    // Creates a run in state `running`; fails (exit 2) if `run.run_id` already exists.
    virtual Result<Run> create_run(const NewRun& run) = 0;
    // Sets the progress and state of `run_id` (and last_error); fails (exit 2) if unknown.
    virtual Result<void> update_run(std::string_view run_id, const RunProgress& progress,
                                    RunState state, std::string_view last_error = {}) = 0;
    virtual Result<std::optional<Run>> get_run(std::string_view run_id) = 0;
    // Every run, newest first.
    virtual Result<std::vector<Run>> list_runs() = 0;
    // Replaces the stored options of `run_id` (a resume that overrode its pacing records it).
    virtual Result<void> set_run_options(std::string_view run_id,
                                         std::string_view options_json) = 0;

    // --- run items: a run's selection ------------------------------------------------------

    // Selects the events `filter` picks (limit honoured, after_seq ignored) as the items of
    // `run_id`, in seq order or, with `by_received_at`, in (received_at_ms, seq) order; one
    // INSERT ... SELECT, memory flat for any count. Returns how many were selected.
    virtual Result<std::int64_t>
    select_run_items(std::string_view run_id, const EventFilter& filter, bool by_received_at) = 0;
    // Appends items (a foreign source's events, numbered by the caller) to `run_id`.
    virtual Result<void> add_run_items(std::string_view run_id, std::span<const RunItem> items) = 0;
    // Calls `visit` for each pending item of `run_id` with item > `after_item`, in item order,
    // up to `limit` items, with its event (body included) from this archive's events: the
    // selection of a run over this archive. An item whose event was deleted is visited with
    // an empty event_id in the Event. Returns how many were visited.
    virtual Result<std::uint64_t>
    for_each_pending_event(std::string_view run_id, std::int64_t after_item, std::uint64_t limit,
                           const std::function<bool(const RunItem&, const Event&)>& visit) = 0;
    // The item `item` of `run_id`, or when it does not carry `event_id`, the first pending item
    // that does; nullopt when neither exists.
    virtual Result<std::optional<RunItem>> find_run_item(std::string_view run_id, std::int64_t item,
                                                         std::string_view event_id) = 0;
    // How many items of `run_id` are pending, delivered and dead.
    virtual Result<ItemCounts> count_run_items(std::string_view run_id) = 0;
    // Settles items judged without a new attempt (see ItemVerdict), in one transaction.
    virtual Result<void> settle_items(std::span<const ItemVerdict> verdicts) = 0;
    // The attempts of `run_id` counted by (outcome, reason), most first.
    struct AttemptCount {
        std::string outcome;
        std::string reason;
        std::int64_t count = 0;
    };
    virtual Result<std::vector<AttemptCount>> count_attempts(std::string_view run_id) = 0;

    // --- copying between archives (`events copy`, hookctl-events(1) COPY) -------------------

    // Calls `visit` for each item of `run_id` with item > `after_item` (any state), in item
    // order, up to `limit` items. Returns how many were visited.
    virtual Result<std::uint64_t>
    for_each_run_item(std::string_view run_id, std::int64_t after_item, std::uint64_t limit,
                      const std::function<bool(const RunItemCopy&)>& visit) = 0;
    // Stores `run` as it is (state, ledger, times, options) unless a run with its run_id is
    // stored already (that one is left untouched). Returns true when it was stored.
    virtual Result<bool> copy_run(const Run& run) = 0;
    // Stores the items of `run_id` that are not stored yet (key: run_id, item), as they are;
    // one transaction. Returns how many were stored.
    virtual Result<std::uint64_t> copy_run_items(std::string_view run_id,
                                                 std::span<const RunItemCopy> items) = 0;
    // Stores `attempts` as they are, without counting them on their events or run items (a
    // copy brings those counts along), each unless an attempt with the same (run_id, event_id,
    // target, attempt, at_ms) is stored already; one transaction. Returns how many were stored.
    virtual Result<std::uint64_t> copy_attempts(std::span<const Attempt> attempts) = 0;

    // --- the receiver's request log ---------------------------------------------------------

    // Appends `entries` in one transaction.
    virtual Result<void> log_requests(std::span<const RequestLog> entries) = 0;
    // Request counts by (http_status, reason, injected), most first.
    struct RequestCount {
        int http_status = 0;
        std::string reason;
        bool injected = false;
        std::int64_t count = 0;
    };
    virtual Result<std::vector<RequestCount>> request_counts() = 0;

    // --- statistics -----------------------------------------------------------------------

    // Counts by status, org and day of the events `filter` selects (statuses/since/until/orgs
    // honoured), and attempt latency percentiles (of `run_id`'s attempts when not empty).
    virtual Result<Stats> stats(const EventFilter& filter = {}, std::string_view run_id = {}) = 0;

    // Moves what the write-ahead log holds into the archive and gives its space back (SQLite:
    // `PRAGMA wal_checkpoint(TRUNCATE)`, e.g. before a copy of the file is taken), waiting for
    // other connections' locks up to `max_wait` (default: the busy timeout). Still blocked
    // then, it copies what it can and is not an error; a write error (a full disk) is.
    virtual Result<void>
    checkpoint(std::optional<std::chrono::milliseconds> max_wait = std::nullopt) = 0;

    // --- following: what `events tail` reads -------------------------------------------------

    // A number that changes when another connection (this process or another) commits to the
    // archive, cheap enough that a follower can look for news many times a second (SQLite:
    // `PRAGMA data_version`, read from the WAL index without touching the tables).
    virtual Result<std::int64_t> data_version() = 0;
    // The newest rows: the largest events.seq and attempts.id (0 when there are none).
    struct HighWater {
        std::int64_t seq = 0;
        std::int64_t attempt_id = 0;
    };
    virtual Result<HighWater> high_water() = 0;
    // Calls `visit` for each attempt with id > `after_id`, in id order, up to `limit` attempts,
    // with the org_id of its event (empty when the event is not in this archive). `visit`
    // returns false to stop. Returns how many were visited.
    virtual Result<std::uint64_t>
    for_each_attempt(std::int64_t after_id, std::uint64_t limit,
                     const std::function<bool(const Attempt&, std::string_view org_id)>& visit) = 0;

    // --- re-parses (hookctl-events(1), REPARSE) -------------------------------------------

    // Stores each re-parse as the next version of its event, in one transaction (its body
    // sealed like the event's). Returns the versions given. Fails (exit 2) naming an event id
    // that is not in the archive; then nothing is stored.
    virtual Result<std::vector<std::int64_t>>
    add_reparses(std::span<const NewReparse> reparses) = 0;
    // The re-parses of `event_id`, oldest first; bodies left empty unless `with_body`.
    virtual Result<std::vector<Reparse>> reparses_of(std::string_view event_id,
                                                     bool with_body = true) = 0;

    // --- encryption at rest (hookctl-events(1), ENCRYPTION; see encryption.hpp) -----------

    // What the archive recorded about its encryption when it was last read by this handle.
    virtual const EncryptionState& encryption() const = 0;
    // The key id the bodies this handle stores go under; empty when it stores them in clear.
    // Fails (exit 4) as an insert would: an encrypted archive and no key or another key, or a
    // key for an archive that holds events in clear. An archive with no events yet that is
    // given a key is recorded as encrypted under it. The receiver calls this before it listens.
    virtual Result<std::string> prepare_body_writes() = 0;

    // For `events rekey` (rekey.cpp), inside begin()/commit(): the state read again from the
    // file, and recorded.
    virtual Result<EncryptionState> reload_encryption() = 0;
    virtual Result<void> record_encryption(const EncryptionState& state) = 0;
    // The values of `table` with row > `after_row`, in row order, up to `limit` rows (a body
    // row gives its body and, when present, its raw MIME), as stored.
    virtual Result<std::vector<StoredValue>>
    stored_values(StoredTable table, std::int64_t after_row, std::size_t limit) = 0;
    // Replaces the stored bytes of each value (matched by table, row and field).
    virtual Result<void> replace_stored_values(std::span<const StoredValue> values) = 0;
    // The highest row of `table` (0 when empty).
    virtual Result<std::int64_t> last_stored_row(StoredTable table) = 0;
    // The codec this handle seals and opens values with.
    virtual const BodyCodec& codec() const = 0;

    // --- runs shared by workers (PostgreSQL; hookctl-replay(1), WORKERS) ------------------
    // A backend that cannot share a run (SQLite: one host) answers shares_runs() false and
    // fails the calls below with exit 2.

    virtual bool shares_runs() const { return false; }
    // Claims up to `limit` pending items of `run_id` with item > `after_item` that no valid
    // lease holds, in item order, skipping rows other workers are claiming (FOR UPDATE SKIP
    // LOCKED), leases them to `lease` and calls `visit` for each with its event (as
    // for_each_pending_event), after the claim is committed. Returns how many were claimed. (A
    // worker claims onward from its last claim, and from 0 when that finds nothing: a scan
    // from the start each time would step over every item settled so far.)
    virtual Result<std::uint64_t>
    claim_items(std::string_view run_id, const WorkerLease& lease, std::int64_t after_item,
                std::uint64_t limit,
                const std::function<void(const RunItem&, const Event&)>& visit);
    // Extends the leases of the pending items `lease` holds and records the worker's heartbeat
    // and counts (registering it on the first call). Returns how many items it holds.
    virtual Result<std::int64_t> renew_leases(std::string_view run_id, const WorkerLease& lease,
                                              std::string_view worker_state);
    // Gives back the pending items `lease` holds (they can be claimed at once) and records the
    // worker's final state; wakes the other workers.
    virtual Result<void> release_leases(std::string_view run_id, const WorkerLease& lease,
                                        std::string_view worker_state);
    // Where `run_id` stands for the worker holding `token`.
    virtual Result<SharedRunState> shared_state(std::string_view run_id, std::string_view token);
    // Reserves the next `count` slots of the run's schedule (one every `interval_ns`), never
    // before a pause the run waits out. The schedule is one row on the server's clock, so the
    // run's rate is the total over its workers.
    virtual Result<SlotBlock> reserve_slots(std::string_view run_id, int count,
                                            std::int64_t interval_ns);
    // No slot of `run_id` before `pause_ms` from now (a 429's Retry-After), for every worker.
    virtual Result<void> pause_slots(std::string_view run_id, std::int64_t pause_ms);
    // Writes the run row as the worker `lease` ending or reporting with `state`: the ledger is
    // counted from the run items; `completed` only when none is pending; a worker stopping
    // (`paused`, `failed`) leaves the run `running` while other workers are live; `aborted`
    // (the breaker) stops every worker. Wakes the other workers.
    virtual Result<RunState> update_shared_run(std::string_view run_id, const WorkerLease& lease,
                                               RunState state, std::string_view last_error,
                                               std::int64_t paused_until_ms);
    // The workers of `run_id`, first started first.
    virtual Result<std::vector<Worker>> list_workers(std::string_view run_id);
    // Waits up to `max_wait` for another worker of `run_id` to release items, settle the last
    // one or stop the run (LISTEN/NOTIFY). True when woken, false on the timeout.
    virtual Result<bool> wait_for_news(std::string_view run_id, std::chrono::milliseconds max_wait);

    // --- health ------------------------------------------------------------------------------

    // Checks that the archive can be reached now (PostgreSQL: reconnects when the connection
    // was lost and the reconnect pacing allows, then a round trip; SQLite: nothing to reach).
    // The receiver's /healthz reflects it while no batch is being written.
    virtual Result<void> ping() { return {}; }
};

// Opens the archive `where` names with the backend it names: a `postgres://` or
// `postgresql://` URI is PostgreSQL (postgres/store.hpp; a URI carrying a password is refused
// with exit 2, never repeated), anything else is the
// path of an SQLite file. For SQLite: sets WAL mode and the busy timeout, checks the
// application id and migrates the schema to k_schema_version. Fails with exit 4 (environment)
// when the file is missing (read_write/read_only), unreadable, read-only while writing is
// asked, not a SQLite database (corrupt), another application's database, or from a newer
// hookctl; the message names the archive and what to do.
Result<std::unique_ptr<Store>> open(const std::string& where, const OpenOptions& options = {});

// True when `where` names an archive on a database server (a `postgres://` or `postgresql://`
// URI) rather than a file: callers skip what only applies to files (paths made absolute,
// files removed after a failed import).
bool is_server_uri(std::string_view where);

// Fails (exit 2) when `where` is a server URI that carries a password (see archive::open); the
// message repeats neither. Callers that name the archive before opening it check it first.
Result<void> check_location(std::string_view where);

// Sets the status of every one of `event_ids` to `status` with `reason` as last_error, in one
// transaction, or of none: when some ids are not in the archive, fails (exit 2) naming them and
// nothing is marked (`events mark`).
Result<void> mark_all(Store& store, std::span<const std::string> event_ids, EventStatus status,
                      std::string_view reason);

} // namespace hookctl::archive
