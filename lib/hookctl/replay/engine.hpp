#pragma once

// hookctl::replay::Engine: the decisions of a replay run (DESIGN.md §7), with its clock, its
// transport, its source and its records taken from outside (ARCHITECTURE.md, "The replay run").
// What to send next, when to retry, when to pause for a Retry-After, when the breaker stops
// the run and whether the run is complete are decided here and nowhere else, so unit tests run
// thousands of seeded fault schedules on fake time (tests/unit/replay/test_engine.cpp).
//
// The ledger: every event the feed yields is a pending item of the run until an attempt
// settles it (delivered or dead). selected = delivered + dead + pending holds at every exit;
// the run ends `completed` only when pending = 0.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include <hookctl/archive/archive.hpp>
#include <hookctl/http/deliver.hpp>
#include <hookctl/replay/breaker.hpp>
#include <hookctl/replay/crew.hpp>
#include <hookctl/replay/journal.hpp>
#include <hookctl/replay/latency.hpp>
#include <hookctl/replay/pacer.hpp>
#include <hookctl/replay/sender.hpp>
#include <hookctl/replay/source.hpp>
#include <hookctl/util/clock.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::replay {

struct EngineOptions {
    std::string run_id;
    std::string target_label; // the target's name, or its URL
    http::Endpoint endpoint;  // URL, scheme and signing keys
    http::RetryPolicy retry;
    util::Rate rate;               // unlimited: as fast as `concurrency` allows
    int burst = 0;                 // 0: rate / 50 (20 ms of catch-up), at least 1
    int concurrency = 8;           // requests in flight (and settled, not yet recorded) at most
    bool ordered = false;          // per org_id one event at a time, in the feed's order
    bool set_event_status = false; // the source is the run's archive: statuses follow the run
    BreakerOptions breaker;
    std::uint64_t seed = 0;          // jitter of the backoff; 0: a random seed
    archive::RunProgress earlier;    // the run's ledger before this invocation (total: selected)
    std::vector<std::string> redact; // texts never kept in an attempt's detail (the secrets)
    bool log_retries = false;        // log every failed attempt, not only verdicts (-v)
    // A run shared with other workers: slots, pauses and stops come from the crew (it must
    // outlive the engine), and the feed claims items as it goes, so the ledger this engine
    // keeps is of the items it claimed (`earlier` grows with each one admitted). Null: the
    // engine paces alone (`rate`, `burst`).
    Crew* crew = nullptr;
    std::int64_t crew_pending = 0; // shared: the run's pending items when this worker began
};

// What the run looks like now (progress bar) and at the end (summary).
struct ReplayProgress {
    std::string run_id;
    // The run's ledger (every invocation): selected = delivered + dead + pending.
    std::int64_t selected = 0;
    std::int64_t run_delivered = 0;
    std::int64_t run_dead = 0;
    std::int64_t pending = 0;
    // This invocation.
    std::int64_t to_send = 0; // pending when it began
    std::int64_t delivered = 0;
    std::int64_t dead = 0;
    std::int64_t held = 0;    // failed for a systemic reason, verdict held back (still pending)
    std::int64_t missing = 0; // pending items whose events the source no longer has
    std::int64_t sent = 0;    // requests sent (attempts)
    std::int64_t retried = 0; // attempts that were retries
    std::int64_t failed_attempts = 0;
    std::int64_t in_flight = 0;
    double elapsed_s = 0;
    double achieved_rate = 0; // requests per second
    double p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
    // Paced runs: how long after its slot on the schedule each send left (0 with --rate max).
    double lag_p50_ms = 0, lag_p99_ms = 0, lag_max_ms = 0;
    bool paused = false;                                            // waiting out a 429 Retry-After
    std::vector<std::pair<std::string, std::int64_t>> dead_reasons; // reason -> events
};

// A notable moment of a run, for the log (text or JSON lines, replay(1)).
struct LogRecord {
    bool warning = false;
    std::string message; // one line for a person
    std::string event_id;
    int attempt = 0;
    int status = 0; // HTTP status, 0 when none
    std::string reason;
    std::string detail; // the response excerpt or transport error

    static LogRecord note(std::string message, bool warning = false) {
        LogRecord r;
        r.warning = warning;
        r.message = std::move(message);
        return r;
    }
    // The event and attempt the record is about.
    LogRecord& about(std::string id, int attempt_number, int http_status, std::string why,
                     std::string what = {}) {
        event_id = std::move(id);
        attempt = attempt_number;
        status = http_status;
        reason = std::move(why);
        detail = std::move(what);
        return *this;
    }
};

// Observes a run from the engine's thread: progress() about every 200 ms, log() for notable
// things (a pause, a dead or held event, the breaker).
struct Observer {
    std::function<void(const ReplayProgress&)> progress;
    std::function<void(const LogRecord&)> log;
};

enum class RunEnd {
    completed,   // every selected event delivered or dead (pending = 0)
    interrupted, // stop was set: no new sends, in-flight ones finished; resumable
    tripped,     // the circuit breaker stopped the run; resumable
    failed,      // the run could not go on (records, source, target unreachable); resumable
};

class Engine {
public:
    // `sender`, `clock` and `journal` must outlive the engine.
    Engine(EngineOptions options, Sender& sender, const util::Clock& clock, Journal& journal,
           Observer observer = {});
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Sends what `feed` yields until every event is settled, `stop` is set (to non-zero, e.g.
    // by a SIGINT handler: no new sends, in-flight requests finish), the breaker trips, or a
    // fatal error; then writes the run row (its state follows end()) and closes the journal.
    // Returns the fatal error, if any (end() is then `failed`).
    Result<void> run(Feed& feed, const std::atomic<int>& stop);

    RunEnd end() const { return m_end; }
    // The run's state as end() says it: what the run row was written with, or `failed` when
    // writing it failed.
    archive::RunState state() const { return m_state; }
    // Why the run ended other than completed, for a person.
    const std::string& end_reason() const { return m_end_reason; }
    const ReplayProgress& progress() const { return m_progress; }
    // The run's ledger as the engine counts it (written to the run row).
    archive::RunProgress ledger() const;

private:
    struct Pending;
    using PendingPtr = std::unique_ptr<Pending>;
    using Time = util::Clock::SteadyTime;

    bool halted() const;
    void admit(ReplayEvent&& event);
    void refill(Feed& feed);
    void start_schedule();
    Result<void> step();
    bool has_candidate() const;
    PendingPtr pick();
    void start(PendingPtr p, std::optional<Time> slot);
    void complete(PendingPtr p, http::Response&& response, std::int64_t handed_ms, Time handed);
    void settle(Pending& p, archive::ItemState state, const std::string& reason);
    void release_held();
    void absorb_committed();
    void free_org(const Pending& p);
    void update_progress(bool force);
    void log(LogRecord record);
    void fatal(Error error);
    std::string excerpt(const http::Response& response) const;

    EngineOptions m_options;
    Sender& m_sender;
    const util::Clock& m_clock;
    Journal& m_journal;
    Observer m_observer;
    const std::atomic<int>* m_stop = nullptr;

    Pacer m_pacer;
    Breaker m_breaker;
    std::mt19937_64 m_rng;
    bool m_schedule_started = false;
    Time m_started{};
    Time m_last_tick{};
    Time m_last_save{};
    Time m_pause_until{};
    Time m_last_pause_log{};
    std::int64_t m_pauses = 0;
    std::size_t m_lookahead = 16;

    // Every admitted, unsettled event is in exactly one of: m_ready, m_due, m_retries, in
    // flight (owned by the sender's completion) or m_held. m_outstanding counts them all, so
    // the run cannot end while any queue holds an event.
    std::deque<PendingPtr> m_ready;
    std::deque<PendingPtr> m_due;
    std::multimap<Time, PendingPtr> m_retries;
    std::vector<PendingPtr> m_held;
    std::int64_t m_outstanding = 0;
    std::int64_t m_in_flight = 0;
    std::unordered_set<Pending*> m_flying; // owned by the sender's completions until they run
    std::size_t m_unrecorded = 0;          // settled items whose settling is not committed yet
    std::unordered_set<std::string> m_busy_orgs;
    bool m_any_response = false;

    LatencyHistogram m_latency;
    LatencyHistogram m_lag; // paced sends: how long after their slot they left
    std::map<std::string, std::int64_t> m_dead_reasons;
    ReplayProgress m_progress;
    bool m_trip_logged = false;
    std::optional<std::string> m_crew_halt; // why the crew stopped the run
    std::optional<Error> m_fatal;
    RunEnd m_end = RunEnd::completed;
    archive::RunState m_state = archive::RunState::running;
    std::string m_end_reason;
};

} // namespace hookctl::replay
