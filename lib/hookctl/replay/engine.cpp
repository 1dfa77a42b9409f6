#include <algorithm>

#include <hookctl/http/retry.hpp>
#include <hookctl/replay/engine.hpp>

namespace hookctl::replay {
namespace {

using std::chrono::milliseconds;

int effective_burst(const EngineOptions& o) {
    if (o.burst > 0) {
        return o.burst;
    }
    if (o.rate.unlimited()) {
        return 1;
    }
    return std::max(1, static_cast<int>(*o.rate.per_second / 50.0));
}

std::uint64_t seed_of(const EngineOptions& o) {
    return o.seed != 0 ? o.seed : std::random_device{}();
}

} // namespace

// An event on its way: waiting, in flight, waiting to be retried, or held.
struct Engine::Pending {
    ReplayEvent event;
    int attempts_here = 0; // attempts made by this invocation
    Time first_attempt{};
    std::optional<Time> slot; // the pacer's slot of the attempt in flight
    std::string reason;       // held: the reason of its last attempt
};

Engine::Engine(EngineOptions options, Sender& sender, const util::Clock& clock, Journal& journal,
               Observer observer)
    : m_options(std::move(options))
    , m_sender(sender)
    , m_clock(clock)
    , m_journal(journal)
    , m_observer(std::move(observer))
    , m_pacer(m_options.rate, effective_burst(m_options), clock.steady())
    , m_breaker(m_options.breaker,
                m_options.crew ? m_options.crew_pending : m_options.earlier.pending())
    , m_rng(seed_of(m_options)) {
    m_lookahead = static_cast<std::size_t>(std::max(16, m_options.concurrency * 4));
    if (m_options.ordered) {
        m_lookahead = std::max<std::size_t>(m_lookahead, 1024);
    }
    m_progress.run_id = m_options.run_id;
    m_progress.selected = m_options.earlier.total;
    m_progress.run_delivered = m_options.earlier.delivered;
    m_progress.run_dead = m_options.earlier.dead;
    m_progress.pending = m_options.earlier.pending();
    m_progress.to_send = m_progress.pending;
    // A pause an earlier invocation was waiting out still holds.
    const auto paused_ms = m_options.earlier.paused_until_ms - clock.unix_ms();
    if (paused_ms > 0) {
        m_pause_until = clock.steady() + milliseconds(paused_ms);
        m_pacer.pause_until(m_pause_until);
    }
}

Engine::~Engine() {
    for (Pending* p : m_flying) { // only when the transport failed with requests in flight
        delete p;
    }
}

archive::RunProgress Engine::ledger() const {
    archive::RunProgress p;
    p.total = m_options.earlier.total;
    p.delivered = m_options.earlier.delivered + m_progress.delivered;
    p.dead = m_options.earlier.dead + m_progress.dead;
    p.done = p.delivered + p.dead;
    auto now = m_clock.steady();
    if (m_pause_until > now) {
        p.paused_until_ms =
            m_clock.unix_ms() + std::chrono::ceil<milliseconds>(m_pause_until - now).count();
    }
    return p;
}

bool Engine::halted() const {
    return (m_stop != nullptr && m_stop->load() != 0) || m_breaker.tripped() ||
           m_fatal.has_value() || m_crew_halt.has_value();
}

void Engine::fatal(Error error) {
    if (!m_fatal) {
        m_fatal = std::move(error);
    }
}

void Engine::log(LogRecord record) {
    if (m_observer.log) {
        m_observer.log(record);
    }
}

Result<void> Engine::run(Feed& feed, const std::atomic<int>& stop) {
    m_stop = &stop;
    m_started = m_clock.steady();
    m_journal.update_run(ledger(), archive::RunState::running);
    while (true) {
        absorb_committed();
        if (m_options.crew && !m_crew_halt) {
            if ((m_crew_halt = m_options.crew->halted())) {
                log(LogRecord::note("run " + m_options.run_id + " stopped by another worker: " +
                                        *m_crew_halt + "; finishing the requests in flight",
                                    true));
            }
        }
        if (auto failed = m_journal.error()) {
            fatal(Error{ExitCode::environment, "cannot record the run: " + failed->message});
        }
        if (!halted()) {
            refill(feed);
        }
        // The schedule starts once the read-ahead holds a first batch (or the whole feed):
        // started at once, the first sends would leave late, one by one, as the feed reads.
        if (!m_schedule_started &&
            (m_ready.size() >= std::min<std::size_t>(m_lookahead, 256) || feed.done())) {
            start_schedule();
        }
        if (feed.done()) {
            if (auto failed = feed.error()) {
                fatal(*failed);
            }
        }
        const auto held = static_cast<std::int64_t>(m_held.size());
        if (halted()) {
            if (m_in_flight == 0) {
                break;
            }
        } else if (feed.done() && m_outstanding == held) {
            if (held == 0) {
                break; // every event the feed yielded is settled
            }
            // Only held verdicts are left: the breaker judges them (trips, or lets them stand).
            m_breaker.judge_end(held);
            release_held();
            continue;
        } else if (m_in_flight == 0 && m_ready.empty() && m_due.empty() && m_retries.empty() &&
                   m_outstanding != held) {
            fatal(
                Error{ExitCode::environment, "internal error: the replay lost track of " +
                                                 std::to_string(m_outstanding - held) +
                                                 " events (please report it); they stay pending"});
            continue;
        }
        auto stepped = step();
        if (!stepped) {
            fatal(stepped.error());
            break; // the transport failed: nothing in flight can finish
        }
    }

    m_progress.missing = feed.missing();
    auto state = archive::RunState::completed;
    if (m_fatal) {
        m_end = RunEnd::failed;
        m_end_reason = m_fatal->message;
        state = archive::RunState::failed;
    } else if (ledger().pending() == 0) {
        // Every selected event is settled: nothing is left to resume, whatever stopped it.
        m_end = RunEnd::completed;
    } else if (m_breaker.tripped()) {
        m_end = RunEnd::tripped;
        m_end_reason = m_breaker.reason();
        state = archive::RunState::aborted;
    } else if (m_crew_halt) {
        m_end = RunEnd::tripped;
        m_end_reason = *m_crew_halt;
        state = archive::RunState::aborted;
    } else if (m_stop->load() != 0) {
        m_end = RunEnd::interrupted;
        m_end_reason = "interrupted";
        state = archive::RunState::paused;
    } else if (ledger().pending() > 0) {
        // Never report a run complete while its ledger has events pending.
        m_end = RunEnd::failed;
        m_end_reason =
            m_progress.missing > 0
                ? std::to_string(m_progress.missing) +
                      " selected events are no longer in the source (deleted since the run "
                      "selected them); they stay pending"
                : std::to_string(ledger().pending()) + " selected events are still pending";
        state = archive::RunState::failed;
    }
    if (m_end != RunEnd::completed) {
        log(LogRecord::note("run " + m_options.run_id + " " +
                                std::string(archive::to_string(state)) + ": " + m_end_reason,
                            true));
    }
    m_state = state;
    m_journal.update_run(ledger(), state);
    auto closed = m_journal.close();
    absorb_committed();
    update_progress(true);
    if (!closed) {
        fatal(Error{ExitCode::environment, "cannot record the run: " + closed.error().message});
        m_end = RunEnd::failed;
        m_state = archive::RunState::failed;
        m_end_reason = m_fatal->message;
    }
    if (m_fatal) {
        return std::unexpected(*m_fatal);
    }
    return {};
}

void Engine::admit(ReplayEvent&& event) {
    if (m_options.crew) {
        m_options.earlier.total += 1; // a shared run's worker keeps the ledger of its claims
    }
    auto p = std::make_unique<Pending>();
    p->event = std::move(event);
    m_outstanding += 1;
    m_ready.push_back(std::move(p));
}

void Engine::refill(Feed& feed) {
    // Once sending, with events in hand the engine never waits for the feed's lock: the
    // reader may have lost its CPU holding it, and a paced send would wait with it. Before
    // the schedule starts it takes all that is queued.
    while (m_ready.size() < m_lookahead) {
        auto event = feed.try_pop(m_schedule_started && !m_ready.empty());
        if (!event) {
            break;
        }
        admit(std::move(*event));
    }
}

void Engine::start_schedule() {
    if (!m_schedule_started) {
        m_schedule_started = true;
        m_pacer.pause_until(m_clock.steady());
    }
}

bool Engine::has_candidate() const {
    if (!m_due.empty()) {
        return true;
    }
    if (!m_options.ordered) {
        return !m_ready.empty();
    }
    return std::any_of(m_ready.begin(), m_ready.end(),
                       [&](const auto& p) { return !m_busy_orgs.contains(p->event.org_id); });
}

// The next event to start: a due retry first, then the oldest waiting event (ordered: the
// oldest whose org has nothing in flight or waiting for a retry).
Engine::PendingPtr Engine::pick() {
    if (!m_due.empty()) {
        auto p = std::move(m_due.front());
        m_due.pop_front();
        return p;
    }
    for (auto it = m_ready.begin(); it != m_ready.end(); ++it) {
        if (m_options.ordered && m_busy_orgs.contains((*it)->event.org_id)) {
            continue;
        }
        auto p = std::move(*it);
        m_ready.erase(it);
        return p;
    }
    return nullptr;
}

Result<void> Engine::step() {
    auto now = m_clock.steady();
    while (!m_retries.empty() && m_retries.begin()->first <= now) {
        auto node = m_retries.extract(m_retries.begin());
        m_due.push_back(std::move(node.mapped()));
    }
    const auto concurrency = static_cast<std::size_t>(m_options.concurrency);
    bool pacer_blocked = false;
    // An event counts against the concurrency until its settling is committed: after a crash,
    // at most `concurrency` settled events are sent again.
    while (m_schedule_started && !halted() &&
           static_cast<std::size_t>(m_in_flight) + m_unrecorded < concurrency &&
           now >= m_pause_until && has_candidate()) {
        auto slot = m_options.crew ? m_options.crew->try_take(now) : m_pacer.try_take(now);
        if (!slot) {
            pacer_blocked = true;
            break;
        }
        auto p = pick();
        if (!p) {
            break;
        }
        start(std::move(p), m_options.rate.unlimited() ? std::nullopt : slot);
    }
    // Sleep until something can happen: a completion, the next pacer slot, a retry due, the
    // end of a pause, or the next progress tick.
    auto wake = now + milliseconds(100);
    if (pacer_blocked) {
        if (auto due = m_options.crew ? m_options.crew->next_due() : m_pacer.next_due()) {
            wake = std::min(wake, *due);
        }
    }
    if (!m_retries.empty()) {
        wake = std::min(wake, m_retries.begin()->first);
    }
    if (m_pause_until > now) {
        wake = std::min(wake, m_pause_until);
    }
    auto polled = m_sender.poll_until(wake);
    if (!polled) {
        return polled;
    }
    update_progress(false);
    return {};
}

void Engine::start(PendingPtr p, std::optional<Time> slot) {
    auto now = m_clock.steady();
    p->slot = slot;
    if (p->attempts_here == 0) {
        p->first_attempt = now;
        p->event.trace_id = http::trace_id_or_new(p->event.trace_id); // one trace per event
    }
    p->attempts_here += 1;
    if (m_options.ordered) {
        m_busy_orgs.insert(p->event.org_id);
    }
    util::HeaderList extra;
    extra.add("traceparent", http::make_traceparent(p->event.trace_id));
    extra.add("X-Hookctl-Replay-Run", m_options.run_id);
    const std::int64_t handed_ms = m_clock.unix_ms();
    auto request = http::signed_request(m_options.endpoint, p->event.event_id, p->event.body, extra,
                                        handed_ms / 1000);
    if (!request) {
        // The keys cannot sign this scheme: nothing will be sent; the event stays pending.
        fatal(request.error());
        m_ready.push_front(std::move(p));
        return;
    }
    m_in_flight += 1;
    Pending* raw = p.release();
    m_flying.insert(raw);
    m_sender.start(std::move(*request), [this, raw, handed_ms, now](http::Response&& r) {
        m_in_flight -= 1;
        m_flying.erase(raw);
        complete(PendingPtr(raw), std::move(r), handed_ms, now);
    });
}

std::string Engine::excerpt(const http::Response& response) const {
    if (response.status == 0) {
        return response.transport_error;
    }
    std::string text = response.body.substr(0, archive::k_detail_limit);
    for (char& c : text) {
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
            c = ' '; // one line in logs and listings
        }
    }
    for (const auto& secret : m_options.redact) {
        if (secret.size() < 4) {
            continue;
        }
        for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
            text.replace(at, secret.size(), "[redacted]");
        }
    }
    return text;
}

void Engine::complete(PendingPtr p, http::Response&& response, std::int64_t handed_ms,
                      Time handed) {
    auto now = m_clock.steady();
    // How late the request left its slot: when the transport began sending it (after signing,
    // and after connecting when no kept-alive connection was free), not when it was built.
    auto sent_at = response.sent_at;
    if (p->slot) {
        m_lag.add(std::chrono::duration_cast<std::chrono::microseconds>(sent_at - *p->slot));
    }
    auto decision = http::classify(response, m_clock.wall());
    const bool delivered = decision.verdict == http::Verdict::delivered;
    const int number = p->event.attempts_before + p->attempts_here;
    m_progress.sent += 1;
    if (number > 1) {
        m_progress.retried += 1;
    }
    // The target's part: from the request leaving to the end of the answer, so an attempt's
    // at_ms + latency_ms is when its answer came (the lag counts the rest).
    auto answered =
        std::chrono::duration_cast<std::chrono::microseconds>(response.done_at - sent_at);
    if (response.status != 0) {
        m_latency.add(answered);
        m_any_response = true;
    }
    archive::Attempt attempt;
    attempt.run_id = m_options.run_id;
    attempt.event_id = p->event.event_id;
    attempt.target = m_options.target_label;
    attempt.attempt = number;
    attempt.at_ms = handed_ms + std::chrono::duration_cast<milliseconds>(sent_at - handed).count();
    attempt.http_status = static_cast<int>(response.status);
    attempt.latency_ms = static_cast<double>(answered.count()) / 1000.0;
    attempt.reason = decision.reason;
    attempt.item = p->event.item;
    if (!delivered) {
        attempt.detail = excerpt(response);
    }

    m_breaker.record_attempt(delivered, decision.reason,
                             decision.verdict == http::Verdict::permanent, now);
    release_held(); // a streak that broke lets the verdicts it held stand

    if (delivered) {
        attempt.outcome = archive::AttemptOutcome::delivered;
        attempt.item_state = archive::ItemState::delivered;
        if (m_options.set_event_status) {
            attempt.new_status = archive::EventStatus::delivered;
        }
        m_journal.add(std::move(attempt));
        settle(*p, archive::ItemState::delivered, {});
    } else {
        m_progress.failed_attempts += 1;
        if (!m_any_response && m_progress.sent >= 3 &&
            (decision.reason == "connect_error" || decision.reason == "resolve_error")) {
            fatal(Error{ExitCode::environment,
                        "target " + m_options.target_label +
                            " is unreachable: " + response.transport_error +
                            " (nothing was delivered; check the URL and that it is up)"});
        }
        if (response.status == 429 && decision.retry_after) {
            // The whole run waits, whatever becomes of this event: the target asked every
            // client to slow down.
            auto until = now + *decision.retry_after;
            if (until > m_pause_until) {
                m_pause_until = until;
                m_pacer.pause_until(until);
                if (m_options.crew) {
                    m_options.crew->pause(*decision.retry_after); // every worker waits
                }
                m_journal.update_run(ledger(), archive::RunState::running); // for a resume
            }
            m_pauses += 1;
            if (now - m_last_pause_log > std::chrono::seconds(10)) {
                m_last_pause_log = now;
                log(LogRecord::note("429 from target: pausing the run for " +
                                    std::to_string(decision.retry_after->count()) +
                                    " ms (Retry-After; " + std::to_string(m_pauses) +
                                    " pauses so far)")
                        .about(p->event.event_id, number, 429, decision.reason));
            }
        }
        auto elapsed = std::chrono::duration_cast<milliseconds>(now - p->first_attempt);
        auto delay =
            http::next_delay(m_options.retry, decision, p->attempts_here - 1, elapsed, m_rng);
        if (delay) {
            attempt.outcome = archive::AttemptOutcome::retry;
            auto due = now + *delay;
            if (m_options.log_retries) {
                log(LogRecord::note("event " + p->event.event_id + " attempt " +
                                    std::to_string(number) + " failed: " + decision.reason +
                                    ", retrying in " + std::to_string(delay->count()) + " ms")
                        .about(p->event.event_id, number, attempt.http_status, decision.reason,
                               attempt.detail));
            }
            m_journal.add(std::move(attempt));
            m_retries.emplace(due, std::move(p)); // its org stays busy (ordered)
            return;
        }
        if (m_breaker.hold(decision.reason)) {
            // Possibly systemic: the attempt is recorded, the event keeps its status and stays
            // pending until the breaker judges the streak.
            attempt.outcome = archive::AttemptOutcome::failed;
            log(LogRecord::note("event " + p->event.event_id + " failed: " + decision.reason +
                                    " (held: the same answer as the attempts before it; not "
                                    "dead-lettered unless the target delivers others)",
                                true)
                    .about(p->event.event_id, number, attempt.http_status, decision.reason,
                           attempt.detail));
            m_journal.add(std::move(attempt));
            free_org(*p);
            p->reason = decision.reason;
            m_held.push_back(std::move(p));
            m_progress.held = static_cast<std::int64_t>(m_held.size());
        } else {
            attempt.outcome = archive::AttemptOutcome::dead;
            attempt.item_state = archive::ItemState::dead;
            if (m_options.set_event_status) {
                attempt.new_status = archive::EventStatus::dead;
            }
            log(LogRecord::note("event " + p->event.event_id + " dead: " + decision.reason +
                                    (attempt.detail.empty() ? "" : " (" + attempt.detail + ")"),
                                true)
                    .about(p->event.event_id, number, attempt.http_status, decision.reason,
                           attempt.detail));
            m_journal.add(std::move(attempt));
            settle(*p, archive::ItemState::dead, decision.reason);
        }
    }
    if (m_breaker.tripped() && !m_trip_logged) {
        m_trip_logged = true;
        log(LogRecord::note("circuit breaker tripped: " + m_breaker.reason() +
                                "; finishing the requests in flight",
                            true));
    }
}

void Engine::settle(Pending& p, archive::ItemState state, const std::string& reason) {
    m_outstanding -= 1;
    m_unrecorded += 1;
    if (state == archive::ItemState::delivered) {
        m_progress.delivered += 1;
    } else {
        m_progress.dead += 1;
        m_dead_reasons[reason] += 1;
        m_breaker.record_dead();
    }
    free_org(p);
}

void Engine::release_held() {
    if (!m_breaker.release_held()) {
        return;
    }
    for (auto& p : m_held) {
        archive::ItemVerdict verdict;
        verdict.run_id = m_options.run_id;
        verdict.item = p->event.item;
        verdict.event_id = p->event.event_id;
        verdict.state = archive::ItemState::dead;
        if (m_options.set_event_status) {
            verdict.event_status = archive::EventStatus::dead;
        }
        verdict.reason = p->reason;
        log(LogRecord::note("event " + p->event.event_id + " dead: " + p->reason +
                                " (the target delivers other events)",
                            true)
                .about(p->event.event_id, 0, 0, p->reason));
        m_journal.settle(std::move(verdict));
        settle(*p, archive::ItemState::dead, p->reason);
    }
    m_held.clear();
    m_progress.held = 0;
}

void Engine::free_org(const Pending& p) {
    if (m_options.ordered) {
        m_busy_orgs.erase(p.event.org_id);
    }
}

void Engine::absorb_committed() {
    auto committed = m_journal.take_committed();
    m_unrecorded -= std::min(m_unrecorded, committed.size());
}

void Engine::update_progress(bool force) {
    auto now = m_clock.steady();
    if (!force && now - m_last_tick < milliseconds(200)) {
        return;
    }
    m_last_tick = now;
    auto& p = m_progress;
    auto l = ledger();
    p.run_delivered = l.delivered;
    p.run_dead = l.dead;
    p.pending = l.pending();
    p.in_flight = m_in_flight;
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
    if (!force && now - m_last_save > std::chrono::seconds(1)) {
        m_last_save = now;
        m_journal.update_run(l, archive::RunState::running);
    }
}

} // namespace hookctl::replay
