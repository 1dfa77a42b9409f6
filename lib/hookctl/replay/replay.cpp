#include <algorithm>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <unordered_set>

#include <hookctl/archive/archive.hpp>
#include <hookctl/http/client.hpp>
#include <hookctl/http/deliver.hpp>
#include <hookctl/replay/latency.hpp>
#include <hookctl/replay/pacer.hpp>
#include <hookctl/replay/recorder.hpp>
#include <hookctl/replay/replay.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/sched.hpp>

namespace hookctl::replay {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// An event on its way: waiting, in flight, or waiting to be retried.
struct Pending {
    ReplayEvent event;
    int attempts_before = 0; // attempts of this run made by an earlier invocation
    int attempts_here = 0;   // attempts made now
    Clock::time_point first_attempt{};
    std::optional<Clock::time_point> slot; // the pacer's slot of the attempt in flight
};

struct RetryEntry {
    Clock::time_point due;
    std::unique_ptr<Pending> pending;
};

class Engine {
public:
    Engine(const ReplayOptions& options, const ReplayObserver& observer,
           const std::atomic<int>& stop, http::Client& client, archive::Archive& records,
           Recorder& recorder, std::string run_id)
        : m_options(options)
        , m_observer(observer)
        , m_stop(stop)
        , m_client(client)
        , m_records(records)
        , m_recorder(recorder)
        , m_run_id(std::move(run_id))
        , m_pacer(options.rate, effective_burst(options), Clock::now())
        , m_rng(std::random_device{}())
        , m_started(Clock::now()) {
        m_progress.run_id = m_run_id;
        m_lookahead = static_cast<std::size_t>(std::max(16, options.concurrency * 4));
        if (options.source.ordered) {
            m_lookahead = std::max<std::size_t>(m_lookahead, 1024);
        }
    }

    ReplayProgress& progress() { return m_progress; }

    // Sends what the source yields until it is read out or the run halts; drain() then waits
    // for what is still queued or in flight.
    Result<void> pump(Prefetch& source) {
        while (!halted()) {
            // Once sending, with events in hand the sender never waits for the reader's lock:
            // the reader may have lost its CPU holding it, and a paced send would wait with it.
            // Before the schedule starts it takes all that is queued: the reader wakes it only
            // when it finds the queue empty, so events left there would not wake it again.
            while (m_ready.size() < m_lookahead) {
                auto event = source.try_pop(m_schedule_started && !m_ready.empty());
                if (!event) {
                    break;
                }
                auto admitted = admit(std::move(*event));
                if (!admitted) {
                    return admitted;
                }
            }
            // The schedule starts once the read-ahead holds a first batch (or the whole
            // source): started at once, the first sends would leave late, one by one, as
            // the reader reads its first pages.
            if (!m_schedule_started &&
                (m_ready.size() >= std::min<std::size_t>(m_lookahead, 256) || source.done())) {
                start_schedule();
            }
            if (m_ready.empty() && source.done()) {
                if (auto failed = source.error()) {
                    return std::unexpected(*failed);
                }
                break;
            }
            auto stepped = step();
            if (!stepped) {
                return stepped;
            }
        }
        return {};
    }

    // How many events the source may read ahead of the sender.
    std::size_t lookahead() const { return m_lookahead; }

    // Delivers what is queued; on a halt, waits for the requests in flight only.
    Result<void> drain() {
        start_schedule(); // the source is read out
        while (true) {
            bool idle = m_client.in_flight() == 0;
            if (halted() ? idle : (idle && m_ready.empty() && m_retries.empty())) {
                break;
            }
            auto stepped = step();
            if (!stepped) {
                return std::unexpected(stepped.error());
            }
        }
        auto closed = close_recorder();
        if (!closed) {
            return closed;
        }
        update_progress(true);
        return {};
    }

    // Writes every attempt still queued and stops the recorder; the run row is written by the
    // caller from then on. Also called when the run fails, so what was sent stays recorded.
    Result<void> close_recorder() {
        if (m_recorder_closed) {
            return {};
        }
        m_recorder_closed = true;
        auto closed = m_recorder.close();
        absorb_committed();
        if (!closed) {
            return std::unexpected(record_failure(closed.error()));
        }
        return {};
    }

    // The run's error when the recorder could not write (exit 4).
    Error record_failure(const Error& cause) const {
        return Error{ExitCode::environment,
                     "cannot record attempts in " + m_records.path() + ": " + cause.message};
    }

    bool tripped() const { return !m_trip_reason.empty(); }
    const std::string& trip_reason() const { return m_trip_reason; }
    bool interrupted() const { return m_stop.load() != 0; }
    std::optional<Error> fatal() const { return m_fatal; }

    // The resume cursor: every event with seq <= cursor is finished.
    std::int64_t cursor() const {
        if (m_options.source.ordered && m_options.source.kind == SourceKind::archive) {
            return 0; // visited out of seq order: resume checks each event instead
        }
        return m_outstanding.empty() ? m_max_seq : *m_outstanding.begin() - 1;
    }

    Result<void> save_run(archive::RunState state, std::string_view last_error = {}) {
        auto p = run_progress();
        if (!m_recorder_closed) {
            m_recorder.update_run(m_run_id, p, state); // after the attempts queued so far
            return {};
        }
        return m_records.update_run(m_run_id, p, state, last_error);
    }

    archive::RunProgress run_progress() const {
        archive::RunProgress p;
        p.total = m_earlier ? m_earlier->total : m_progress.total;
        p.done = (m_earlier ? m_earlier->done : 0) + m_progress.done;
        p.delivered = m_progress.earlier_delivered + m_progress.delivered;
        p.failed = m_progress.earlier_dead + m_progress.dead;
        p.cursor = std::max(cursor(), m_resume_cursor);
        return p;
    }

    void set_earlier(const archive::RunProgress& earlier) {
        m_earlier = earlier;
        m_resume_cursor = earlier.cursor;
        m_progress.earlier_delivered = earlier.delivered;
        m_progress.earlier_dead = earlier.failed;
    }

private:
    static int effective_burst(const ReplayOptions& o) {
        if (o.burst > 0) {
            return o.burst;
        }
        if (o.rate.unlimited()) {
            return 1;
        }
        return std::max(1, static_cast<int>(*o.rate.per_second / 50.0));
    }

    bool halted() const { return m_stop.load() != 0 || tripped() || m_fatal.has_value(); }

    // Queues an event from the source, unless a resumed run already finished it.
    Result<void> admit(ReplayEvent&& event) {
        auto skip = check_resumed(event);
        if (!skip) {
            return std::unexpected(skip.error());
        }
        if (*skip < 0) {
            return {};
        }
        auto p = std::make_unique<Pending>();
        p->attempts_before = *skip;
        m_outstanding.insert(event.seq);
        m_max_seq = std::max(m_max_seq, event.seq);
        p->event = std::move(event);
        m_ready.push_back(std::move(p));
        return {};
    }

    // On a resume: -1 when this run already finished the event, else the attempts it made.
    Result<int> check_resumed(const ReplayEvent& event) {
        if (m_options.resume_run_id.empty()) {
            return 0;
        }
        auto attempts = m_records.attempts_for(event.event_id, m_run_id);
        if (!attempts) {
            return std::unexpected(attempts.error());
        }
        for (const auto& a : *attempts) {
            if (a.outcome == "delivered" || a.outcome == "dead") {
                m_progress.skipped += 1;
                return -1;
            }
        }
        return static_cast<int>(attempts->size());
    }

    std::string org_key(const Pending& p) const { return p.event.org_id; }

    // The next event to start: a due retry first, then the oldest waiting event (with
    // --ordered, the oldest whose org has nothing in flight or waiting for a retry).
    std::unique_ptr<Pending> pick() {
        if (!m_due.empty()) {
            auto p = std::move(m_due.front());
            m_due.pop_front();
            return p;
        }
        for (auto it = m_ready.begin(); it != m_ready.end(); ++it) {
            if (m_options.source.ordered && m_busy_orgs.contains(org_key(**it))) {
                continue;
            }
            auto p = std::move(*it);
            m_ready.erase(it);
            return p;
        }
        return nullptr;
    }

    bool has_candidate() const {
        if (!m_due.empty()) {
            return true;
        }
        if (!m_options.source.ordered) {
            return !m_ready.empty();
        }
        return std::any_of(m_ready.begin(), m_ready.end(),
                           [&](const auto& p) { return !m_busy_orgs.contains(org_key(*p)); });
    }

    // Events whose finishing attempt is committed leave the set the resume cursor waits on.
    void absorb_committed() {
        auto committed = m_recorder.take_committed();
        for (auto seq : committed.finished_seqs) {
            m_outstanding.erase(seq);
        }
        m_unrecorded -= std::min(m_unrecorded, committed.finished_seqs.size());
    }

    void start_schedule() {
        if (!m_schedule_started) {
            m_schedule_started = true;
            m_pacer.pause_until(Clock::now());
        }
    }

    Result<void> step() {
        absorb_committed();
        if (auto failed = m_recorder.error(); failed && !m_fatal) {
            m_fatal = record_failure(*failed);
            return std::unexpected(*m_fatal);
        }
        auto now = Clock::now();
        while (!m_retries.empty() && m_retries.begin()->first <= now) {
            auto node = m_retries.extract(m_retries.begin());
            m_due.push_back(std::move(node.mapped()));
        }
        const auto concurrency = static_cast<std::size_t>(m_options.concurrency);
        bool pacer_blocked = false;
        // An event counts against the concurrency until its outcome is committed: after a
        // crash, at most `concurrency` events are re-sent.
        while (m_schedule_started && !halted() &&
               m_client.in_flight() + m_unrecorded < concurrency && now >= m_pause_until &&
               has_candidate()) {
            auto slot = m_pacer.try_take(now);
            if (!slot) {
                pacer_blocked = true;
                break;
            }
            auto p = pick();
            if (!p) {
                break;
            }
            auto started = start(std::move(p), m_options.rate.unlimited() ? std::nullopt : slot);
            if (!started) {
                return started;
            }
        }
        // Sleep until something can happen: a completion, the next pacer slot, a retry due,
        // the end of a pause, or the next progress tick.
        auto wake = now + milliseconds(100);
        if (pacer_blocked) {
            if (auto due = m_pacer.next_due()) {
                wake = std::min(wake, *due);
            }
        }
        if (!m_retries.empty()) {
            wake = std::min(wake, m_retries.begin()->first);
        }
        if (m_pause_until > now) {
            wake = std::max(std::min(wake, m_pause_until), now);
        }
        // To the microsecond: a pacer slot at 5,000/s is 200 us away.
        auto polled = m_client.poll_until(wake);
        if (!polled) {
            return polled;
        }
        if (m_fatal) {
            return std::unexpected(*m_fatal);
        }
        update_progress(false);
        return {};
    }

    // `slot`: when the pacer had this send due, to measure how late it leaves.
    Result<void> start(std::unique_ptr<Pending> p, std::optional<Clock::time_point> slot) {
        auto now = Clock::now();
        p->slot = slot;
        if (p->attempts_here == 0) {
            p->first_attempt = now;
            p->event.trace_id = http::trace_id_or_new(p->event.trace_id); // one trace per event
        }
        p->attempts_here += 1;
        if (m_options.source.ordered) {
            m_busy_orgs.insert(org_key(*p));
        }
        util::HeaderList extra;
        extra.add("traceparent", http::make_traceparent(p->event.trace_id));
        extra.add("X-Hookctl-Replay-Run", m_run_id);
        auto request = http::signed_request(m_options.delivery.endpoint, p->event.event_id,
                                            p->event.body, extra, unix_ms_now() / 1000);
        if (!request) {
            return std::unexpected(request.error());
        }
        // The wall clock beside the steady one, to date the attempt when it really left.
        std::int64_t handed_ms = unix_ms_now();
        auto handed = Clock::now();
        Pending* raw = p.release();
        m_client.start(std::move(*request), [this, raw, handed_ms, handed](http::Response&& r) {
            complete(std::unique_ptr<Pending>(raw), std::move(r), handed_ms, handed);
        });
        return {};
    }

    void complete(std::unique_ptr<Pending> p, http::Response&& response, std::int64_t handed_ms,
                  Clock::time_point handed) {
        auto now = Clock::now();
        // How late the request left its slot: when libcurl began sending it (after signing,
        // and after connecting when no kept-alive connection was free), not when it was built.
        auto sent_at = response.sent_at;
        if (p->slot) {
            m_lag.add(std::chrono::duration_cast<std::chrono::microseconds>(sent_at - *p->slot));
        }
        std::int64_t sent_at_ms =
            handed_ms + std::chrono::duration_cast<milliseconds>(sent_at - handed).count();
        auto decision = http::classify(response, std::chrono::system_clock::now());
        int number = p->attempts_before + p->attempts_here;
        m_progress.sent += 1;
        if (number > 1) {
            m_progress.retried += 1;
        }
        // The target's part: from the request leaving to the end of the answer, so an
        // attempt's at_ms + latency_ms is when its answer came (the lag counts the rest).
        auto answered =
            std::chrono::duration_cast<std::chrono::microseconds>(response.done_at - sent_at);
        if (response.status != 0) {
            m_latency.add(answered);
            m_any_response = true;
        }
        archive::Attempt attempt;
        attempt.run_id = m_run_id;
        attempt.event_id = p->event.event_id;
        attempt.target = m_options.delivery.target_label;
        attempt.attempt = number;
        attempt.at_ms = sent_at_ms;
        attempt.http_status = static_cast<int>(response.status);
        attempt.latency_ms = static_cast<double>(answered.count()) / 1000.0;
        attempt.reason = decision.reason;
        bool from_archive = m_options.source.kind == SourceKind::archive;
        bool failed = decision.verdict != http::Verdict::delivered;
        m_window.emplace_back(now, failed);
        while (!m_window.empty() && m_window.front().first < now - std::chrono::seconds(10)) {
            m_window.pop_front();
        }

        if (!failed) {
            attempt.outcome = "delivered";
            if (from_archive) {
                attempt.new_status = archive::EventStatus::delivered;
            }
            m_progress.delivered += 1;
            finish(*p);
        } else {
            m_progress.failed_attempts += 1;
            if (!m_any_response && m_progress.sent >= 3 &&
                (decision.reason == "connect_error" || decision.reason == "resolve_error")) {
                m_fatal = Error{ExitCode::environment,
                                "target " + m_options.delivery.target_label +
                                    " is unreachable: " + response.transport_error +
                                    " (nothing was delivered; check the URL and that it is up)"};
            }
            auto elapsed = std::chrono::duration_cast<milliseconds>(now - p->first_attempt);
            auto delay = http::next_delay(m_options.delivery.policy, decision, p->attempts_here - 1,
                                          elapsed, m_rng);
            if (delay && !m_fatal) {
                attempt.outcome = "retry";
                auto due = now + *delay;
                if (response.status == 429 && decision.retry_after) {
                    // The whole run waits: the target asked every client to slow down.
                    if (due > m_pause_until) {
                        m_pause_until = due;
                        m_pacer.pause_until(due);
                    }
                    m_pauses += 1;
                    if (now - m_last_pause_log > std::chrono::seconds(10)) {
                        m_last_pause_log = now;
                        log("429 from target: pausing the run for " +
                            std::to_string(delay->count()) + " ms (Retry-After; " +
                            std::to_string(m_pauses) + " pauses so far)");
                    }
                }
                m_retries.emplace(due, std::move(p));
            } else {
                attempt.outcome = "dead";
                if (from_archive) {
                    attempt.new_status = archive::EventStatus::dead;
                }
                m_progress.dead += 1;
                m_dead_reasons[decision.reason] += 1;
                if (m_progress.dead <= 10) {
                    log("event " + p->event.event_id + " dead: " + decision.reason);
                }
                finish(*p);
                if (m_options.max_failures && m_progress.dead >= *m_options.max_failures &&
                    !tripped()) {
                    m_trip_reason = std::to_string(m_progress.dead) +
                                    " events dead-lettered (--max-failures " +
                                    std::to_string(*m_options.max_failures) + ")";
                }
            }
        }
        if (m_options.max_error_rate && !tripped() && m_window.size() >= 20) {
            auto bad = std::count_if(m_window.begin(), m_window.end(),
                                     [](const auto& w) { return w.second; });
            double share = static_cast<double>(bad) / static_cast<double>(m_window.size());
            if (share > *m_options.max_error_rate) {
                m_trip_reason = std::to_string(static_cast<int>(share * 100)) +
                                "% of the attempts of the last 10 s failed (--max-error-rate " +
                                std::to_string(static_cast<int>(*m_options.max_error_rate * 100)) +
                                "%)";
            }
        }
        if (tripped() && !m_trip_logged) {
            m_trip_logged = true;
            log("circuit breaker tripped: " + m_trip_reason + "; finishing requests in flight");
        }
        std::int64_t finished_seq = attempt.outcome == "retry" ? 0 : p->event.seq;
        if (finished_seq > 0) {
            m_unrecorded += 1;
        }
        m_recorder.add(std::move(attempt), finished_seq);
    }

    // The event is delivered or dead; it leaves m_outstanding once that is committed.
    void finish(const Pending& p) {
        m_progress.done += 1;
        if (m_options.source.ordered) {
            m_busy_orgs.erase(org_key(p));
        }
    }

    void update_progress(bool force) {
        auto now = Clock::now();
        if (!force && now - m_last_tick < milliseconds(200)) {
            return;
        }
        m_last_tick = now;
        auto& p = m_progress;
        p.in_flight = static_cast<std::int64_t>(m_client.in_flight());
        p.elapsed_s = std::chrono::duration<double>(now - m_started).count();
        p.achieved_rate = p.elapsed_s > 0 ? static_cast<double>(p.sent) / p.elapsed_s : 0;
        p.p50_ms = m_latency.quantile_ms(0.50);
        p.p95_ms = m_latency.quantile_ms(0.95);
        p.p99_ms = m_latency.quantile_ms(0.99);
        p.max_ms = m_latency.max_ms();
        if (m_lag.count() > 0) {
            p.lag_p50_ms = m_lag.quantile_ms(0.50);
            p.lag_p99_ms = m_lag.quantile_ms(0.99);
            p.lag_max_ms = m_lag.max_ms();
        }
        p.paused = m_pause_until > now;
        p.dead_reasons.assign(m_dead_reasons.begin(), m_dead_reasons.end());
        if (m_observer.progress) {
            m_observer.progress(p);
        }
        if (force || now - m_last_save > std::chrono::seconds(1)) {
            m_last_save = now;
            (void)save_run(archive::RunState::running);
        }
    }

    void log(const std::string& line) {
        if (m_observer.log) {
            m_observer.log(line);
        }
    }

    const ReplayOptions& m_options;
    const ReplayObserver& m_observer;
    const std::atomic<int>& m_stop;
    http::Client& m_client;
    archive::Archive& m_records;
    Recorder& m_recorder;
    bool m_recorder_closed = false;
    std::size_t m_unrecorded = 0; // finished events whose outcome is not committed yet
    std::string m_run_id;
    Pacer m_pacer;
    bool m_schedule_started = false; // the pacer's schedule runs from the first batch read
    std::mt19937_64 m_rng;
    Clock::time_point m_started;
    Clock::time_point m_last_tick{};
    Clock::time_point m_last_save{};
    Clock::time_point m_pause_until{};
    Clock::time_point m_last_pause_log{};
    std::int64_t m_pauses = 0;
    std::size_t m_lookahead = 16;
    std::deque<std::unique_ptr<Pending>> m_ready;
    std::deque<std::unique_ptr<Pending>> m_due;
    std::multimap<Clock::time_point, std::unique_ptr<Pending>> m_retries;
    std::unordered_set<std::string> m_busy_orgs;
    std::set<std::int64_t> m_outstanding;
    std::int64_t m_max_seq = 0;
    std::int64_t m_resume_cursor = 0;
    std::optional<archive::RunProgress> m_earlier;
    std::deque<std::pair<Clock::time_point, bool>> m_window;
    std::map<std::string, std::int64_t> m_dead_reasons;
    LatencyHistogram m_latency;
    LatencyHistogram m_lag; // paced sends: how long after their slot they left
    ReplayProgress m_progress;
    std::string m_trip_reason;
    bool m_trip_logged = false;
    bool m_any_response = false;
    std::optional<Error> m_fatal;
};

} // namespace

std::string run_index_path(const std::string& run_id) {
    fs::path base;
    if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && state[0] != '\0') {
        base = state;
    } else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
        base = fs::path(home) / ".local" / "state";
    } else {
        base = fs::temp_directory_path();
    }
    return (base / "hookctl" / "runs" / run_id).string();
}

Result<DryRun> dry_run(const ReplayOptions& options, std::size_t show) {
    DryRun out;
    auto count = count_events(options.source);
    if (!count) {
        return std::unexpected(count.error());
    }
    out.count = *count;
    auto walked = for_each_event(options.source, 0, [&](ReplayEvent&& e) -> Result<bool> {
        if (out.first.size() >= show) {
            return false;
        }
        if (e.body.size() > 200) {
            e.body = e.body.substr(0, 200) + "...";
        }
        out.first.push_back(std::move(e));
        return true;
    });
    if (!walked) {
        return std::unexpected(walked.error());
    }
    if (!options.rate.unlimited()) {
        out.estimated_seconds = static_cast<double>(out.count) / *options.rate.per_second;
    }
    return out;
}

Result<ReplayResult> run_replay(const ReplayOptions& options, const ReplayObserver& observer,
                                const std::atomic<int>& stop) {
    // The source is checked first: a bad source fails before the run exists.
    auto total = count_events(options.source);
    if (!total) {
        return std::unexpected(total.error());
    }
    archive::OpenOptions open_options;
    open_options.mode = archive::Mode::create;
    open_options.synchronous_full = false; // survives a crash (kill -9), fast enough per batch
    auto records = archive::Archive::open(options.archive_path, open_options);
    if (!records) {
        return std::unexpected(records.error());
    }
    std::string run_id;
    std::int64_t after_seq = 0;
    std::optional<archive::RunProgress> earlier;
    if (options.resume_run_id.empty()) {
        archive::NewRun run;
        run.kind = "replay";
        run.source = options.source.describe();
        run.target = options.delivery.target_label;
        run.options_json = options.options_json.dump();
        auto created = records->create_run(run);
        if (!created) {
            return std::unexpected(created.error());
        }
        run_id = created->run_id;
    } else {
        auto run = records->get_run(options.resume_run_id);
        if (!run) {
            return std::unexpected(run.error());
        }
        if (!*run) {
            return fail(ExitCode::usage,
                        "no run " + options.resume_run_id + " in " + options.archive_path);
        }
        if ((*run)->state == archive::RunState::completed) {
            return fail(ExitCode::usage,
                        "run " + options.resume_run_id + " already completed: nothing to resume");
        }
        run_id = (*run)->run_id;
        after_seq = (*run)->progress.cursor;
        earlier = (*run)->progress;
    }
    // Remember where the run lives, so `--resume RUN_ID` alone finds it (best effort).
    {
        std::error_code ec;
        fs::path index = run_index_path(run_id);
        fs::create_directories(index.parent_path(), ec);
        if (!ec) {
            (void)util::write_file_atomic(index.string(),
                                          fs::absolute(options.archive_path).string() + "\n", 0600);
        }
    }

    auto client = http::Client::create([&] {
        auto c = options.delivery.client;
        c.max_connections = static_cast<std::size_t>(std::max(1, options.concurrency));
        return c;
    }());
    if (!client) {
        return std::unexpected(client.error());
    }
    // A quarter of the concurrency per commit, or 5 ms: the events waiting for their commit
    // count against the concurrency, so waiting for more would hold up sends.
    auto recorder = Recorder::open(
        options.archive_path, [&client] { client->wakeup(); },
        static_cast<std::size_t>(std::max(1, options.concurrency / 4)), milliseconds(5));
    if (!recorder) {
        return std::unexpected(recorder.error());
    }
    Engine engine(options, observer, stop, *client, *records, **recorder, run_id);
    if (earlier) {
        engine.set_earlier(*earlier);
    }
    engine.progress().total = static_cast<std::int64_t>(*total);
    (void)engine.save_run(archive::RunState::running);

    Result<void> walked;
    {
        Prefetch source(options.source, after_seq, std::max<std::size_t>(1024, engine.lookahead()),
                        std::size_t{64} << 20, [&client] { client->wakeup(); });
        if (!options.rate.unlimited()) {
            // The sending thread sleeps to each slot and works briefly: short slices let it
            // run soon after it wakes (Linux 6.12+; a hint, ignored elsewhere).
            (void)util::request_short_slice(std::chrono::microseconds(100));
        }
        walked = engine.pump(source);
    }
    Result<void> drained = walked ? engine.drain() : Result<void>{};
    if (!walked || !drained) {
        Error error = !walked ? walked.error() : drained.error();
        (void)engine.close_recorder();
        (void)engine.save_run(archive::RunState::failed, error.message);
        return std::unexpected(error);
    }
    ReplayResult result;
    result.progress = engine.progress();
    // On a resume the total counts only what this invocation selected after the cursor.
    if (engine.tripped()) {
        result.end = RunEnd::tripped;
        result.reason = engine.trip_reason();
        (void)engine.save_run(archive::RunState::aborted, "circuit breaker: " + result.reason);
    } else if (engine.interrupted()) {
        result.end = RunEnd::interrupted;
        (void)engine.save_run(archive::RunState::paused, "interrupted");
    } else {
        result.end = RunEnd::completed;
        (void)engine.save_run(archive::RunState::completed);
    }
    return result;
}

} // namespace hookctl::replay
