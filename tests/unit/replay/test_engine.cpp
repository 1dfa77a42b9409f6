#include <doctest/doctest.h>

#include "fake_world.hpp"

using namespace hookctl;
using namespace hookctl::testing;

namespace {

// One replay invocation on fake time.
struct Scenario {
    int events = 20;
    int orgs = 1;
    int concurrency = 4;
    std::optional<double> rate; // events per second; none: max
    bool ordered = false;
    http::RetryPolicy retry;
    Faults faults;
    replay::BreakerOptions breaker;
    double commit_chance = 0.7;
};

Scenario random_scenario(std::mt19937_64& rng) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    auto chance = [&](double hi) { return std::uniform_real_distribution<double>(0, hi)(rng); };
    Scenario s;
    s.events = pick(1, 40);
    s.orgs = pick(1, 4);
    s.concurrency = pick(1, 8);
    if (pick(0, 2) > 0) {
        s.rate = static_cast<double>(pick(5, 500));
    }
    s.retry.retries = pick(0, 6);
    s.retry.backoff_base = std::chrono::milliseconds(pick(1, 200));
    s.retry.backoff_max = s.retry.backoff_base * pick(1, 8);
    if (pick(0, 4) == 0) {
        s.retry.max_elapsed = std::chrono::milliseconds(pick(100, 3000));
    }
    s.faults.fail_503 = chance(0.5);
    s.faults.throttle_429 = chance(0.3);
    s.faults.retry_after_s = pick(1, 2);
    s.faults.drop = chance(0.1);
    s.faults.timeout = chance(0.05);
    s.faults.refuse = chance(0.02);
    s.faults.dead_422 = chance(0.1);
    s.commit_chance = 0.2 + chance(0.8);
    if (pick(0, 5) == 0) {
        s.breaker.max_failures = pick(1, 5);
    }
    return s;
}

std::vector<replay::ReplayEvent> make_events(const Scenario& s) {
    std::vector<replay::ReplayEvent> out;
    for (int i = 1; i <= s.events; ++i) {
        out.push_back(make_event(i, "org_" + std::to_string(i % s.orgs)));
    }
    return out;
}

replay::EngineOptions engine_options(const Scenario& s, std::uint64_t seed,
                                     const archive::RunProgress& earlier) {
    replay::EngineOptions o;
    o.run_id = "run_test";
    o.target_label = "http://127.0.0.1:9/hooks";
    o.endpoint = test_endpoint();
    o.retry = s.retry;
    o.rate = s.rate ? util::Rate{*s.rate} : util::Rate{};
    o.concurrency = s.concurrency;
    o.ordered = s.ordered;
    o.set_event_status = true;
    o.breaker = s.breaker;
    o.seed = seed;
    o.earlier = earlier;
    return o;
}

// The world of one run across its invocations: the target and the journal persist.
struct World {
    util::ManualClock clock;
    Scenario scenario;
    FakeTarget target;
    MemoryJournal journal;
    std::vector<replay::ReplayEvent> events;

    World(Scenario s, std::uint64_t seed)
        : scenario(std::move(s))
        , target(clock, scenario.faults, seed, scenario.concurrency, scenario.ordered)
        , journal(seed + 1, scenario.commit_chance)
        , events(make_events(scenario)) {
        for (const auto& e : events) {
            journal.select(e.item);
        }
    }

    // The run's ledger as the journal committed it.
    archive::RunProgress ledger() const {
        archive::RunProgress p;
        p.total = static_cast<std::int64_t>(journal.items().size());
        p.delivered = journal.count(archive::ItemState::delivered);
        p.dead = journal.count(archive::ItemState::dead);
        p.done = p.delivered + p.dead;
        if (journal.run_progress()) {
            p.paused_until_ms = journal.run_progress()->paused_until_ms;
        }
        return p;
    }

    // What a resume reads: the pending items, with the attempts made on each.
    std::vector<replay::ReplayEvent> pending() const {
        std::vector<replay::ReplayEvent> out;
        for (const auto& e : events) {
            if (journal.items().at(e.item) == archive::ItemState::pending) {
                auto copy = e;
                auto it = journal.item_attempts().find(e.item);
                copy.attempts_before = it == journal.item_attempts().end() ? 0 : it->second;
                out.push_back(std::move(copy));
            }
        }
        return out;
    }

    // One invocation over the pending items.
    replay::RunEnd run(std::uint64_t seed, std::atomic<int>& stop,
                       std::optional<replay::ReplayProgress>* progress = nullptr) {
        target.new_invocation();
        ListFeed feed(pending());
        replay::Engine engine(engine_options(scenario, seed, ledger()), target, clock, journal);
        (void)engine.run(feed, stop);
        if (progress != nullptr) {
            *progress = engine.progress();
        }
        return engine.end();
    }
};

// The properties every invocation holds, whatever the faults.
void check_invariants(const World& w, replay::RunEnd end, const std::string& label) {
    INFO(label);
    for (const auto& v : w.target.violations()) {
        FAIL_CHECK(v);
    }
    auto l = w.ledger();
    CHECK(l.delivered + l.dead + l.pending() == static_cast<std::int64_t>(w.events.size()));
    CHECK(w.journal.double_settled() == 0);
    if (end == replay::RunEnd::completed) {
        CHECK(l.pending() == 0);
    }
    if (l.pending() > 0) {
        CHECK(end != replay::RunEnd::completed);
    }
    // A delivered item was received by the target; an event's status follows its item.
    for (const auto& e : w.events) {
        auto state = w.journal.items().at(e.item);
        if (state == archive::ItemState::delivered) {
            CHECK(w.target.received().contains(e.event_id));
        }
        auto status = w.journal.statuses().find(e.event_id);
        if (state == archive::ItemState::pending) {
            CHECK(status == w.journal.statuses().end());
        } else {
            REQUIRE(status != w.journal.statuses().end());
            CHECK(status->second == (state == archive::ItemState::delivered
                                         ? archive::EventStatus::delivered
                                         : archive::EventStatus::dead));
        }
    }
    // The run row agrees with the items.
    REQUIRE(w.journal.run_progress().has_value());
    CHECK(w.journal.run_progress()->delivered == l.delivered);
    CHECK(w.journal.run_progress()->dead == l.dead);
}

} // namespace

TEST_CASE("replay::Engine holds the ledger under thousands of seeded fault schedules") {
    int completed = 0, with_dead = 0, tripped = 0;
    for (std::uint64_t seed = 1; seed <= 2000; ++seed) {
        std::mt19937_64 rng(seed);
        World w(random_scenario(rng), seed);
        std::atomic<int> stop{0};
        auto end = w.run(seed, stop);
        check_invariants(w, end, "seed " + std::to_string(seed));
        // Without a crash no event reaches the target twice.
        for (const auto& [id, n] : w.target.received()) {
            CHECK_MESSAGE(n == 1, "seed " << seed << ": " << id << " received " << n << " times");
        }
        completed += end == replay::RunEnd::completed ? 1 : 0;
        with_dead += w.ledger().dead > 0 ? 1 : 0;
        tripped += end == replay::RunEnd::tripped ? 1 : 0;
    }
    // The schedules exercised every ending.
    CHECK(completed > 1000);
    CHECK(with_dead > 100);
    CHECK(tripped > 10);
}

TEST_CASE("replay::Engine --ordered: one event per org in flight, each org's in feed order") {
    for (std::uint64_t seed = 1; seed <= 1000; ++seed) {
        std::mt19937_64 rng(seed * 7919);
        auto s = random_scenario(rng);
        s.ordered = true;
        s.orgs = std::max(2, s.orgs);
        World w(s, seed);
        std::atomic<int> stop{0};
        auto end = w.run(seed, stop);
        check_invariants(w, end, "ordered seed " + std::to_string(seed));
        for (const auto& [org, ids] : w.target.order()) {
            CHECK_MESSAGE(std::is_sorted(ids.begin(), ids.end()),
                          "seed " << seed << " org " << org);
        }
    }
}

TEST_CASE("replay::Engine interrupted at a random step, then resumed: the selection and no more") {
    for (std::uint64_t seed = 1; seed <= 1000; ++seed) {
        std::mt19937_64 rng(seed * 104729);
        auto s = random_scenario(rng);
        s.breaker = {}; // the resume must be able to finish
        s.breaker.systemic_failures = 10;
        World w(s, seed);
        const bool crash = seed % 2 == 0; // kill -9, else SIGINT
        std::atomic<int> stop{0};
        auto at = std::uniform_int_distribution<std::int64_t>(1, 60)(rng);
        {
            w.target.new_invocation();
            if (crash) {
                // The process dies at poll `at`: what the journal had not committed is lost.
                w.target.fail_from_poll(at, [&] { w.journal.crash(); });
            } else {
                w.target.stop_at_poll(at, stop);
            }
            ListFeed feed(w.pending());
            replay::Engine engine(engine_options(s, seed, w.ledger()), w.target, w.clock,
                                  w.journal);
            (void)engine.run(feed, stop);
        }
        w.journal.revive();
        if (crash) {
            // A pause that began just before the crash may not have been committed: the
            // operator's resume comes later than that (a pause recorded is honoured).
            w.clock.advance(std::chrono::seconds(s.faults.retry_after_s));
        }
        if (!crash && w.target.sent_at_stop()) {
            // SIGINT: nothing new starts once the stop is set.
            CHECK_MESSAGE(w.target.sent() == *w.target.sent_at_stop(),
                          "seed " << seed << ": sent after the interruption");
        }
        // Resume until the run ends (a run may need more than one resume).
        replay::RunEnd end = replay::RunEnd::interrupted;
        for (int i = 0; i < 5 && w.ledger().pending() > 0; ++i) {
            std::atomic<int> no_stop{0};
            end = w.run(seed + 1000 + static_cast<std::uint64_t>(i), no_stop);
            check_invariants(w, end, "resume of seed " + std::to_string(seed));
        }
        // Never more than the selection, and at most the requests that were in flight (or
        // settled but not committed) at the crash were sent twice.
        std::int64_t duplicates = 0;
        for (const auto& [id, n] : w.target.received()) {
            duplicates += n - 1;
        }
        CHECK(static_cast<std::int64_t>(w.target.received().size()) <=
              static_cast<std::int64_t>(w.events.size()));
        if (crash) {
            CHECK_MESSAGE(duplicates <= s.concurrency, "seed " << seed << ": " << duplicates
                                                               << " duplicates, concurrency "
                                                               << s.concurrency);
        } else {
            CHECK_MESSAGE(duplicates == 0, "seed " << seed << ": " << duplicates << " duplicates");
        }
    }
}

TEST_CASE("replay::Engine: an all-401 target stops the run early and dead-letters nothing") {
    Scenario s;
    s.events = 200;
    s.concurrency = 8;
    s.faults.always_status = 401;
    World w(s, 42);
    std::atomic<int> stop{0};
    std::optional<replay::ReplayProgress> progress;
    auto end = w.run(42, stop, &progress);
    CHECK(end == replay::RunEnd::tripped);
    check_invariants(w, end, "all 401");
    CHECK(w.ledger().dead == 0);
    CHECK(w.ledger().pending() == 200);
    // Stopped after the first attempts: three, plus what was in flight.
    CHECK(w.target.sent() <= 3 + s.concurrency);
    for (const auto& a : w.journal.attempts()) {
        CHECK(a.outcome == archive::AttemptOutcome::failed);
        CHECK_FALSE(a.new_status.has_value()); // status and last_error left as they were
        CHECK(a.reason == "http_401");
        CHECK(a.detail == "{\"error\":\"signature mismatch\"}");
    }
    CHECK(w.journal.statuses().empty());
    CHECK(w.journal.run_state() == archive::RunState::aborted);
}

TEST_CASE("replay::Engine: a 401 for some events while others deliver dead-letters those") {
    Scenario s;
    s.events = 60;
    s.concurrency = 1;
    s.faults.reject_401 = {"evt_000005", "evt_000006", "evt_000030"};
    World w(s, 7);
    std::atomic<int> stop{0};
    auto end = w.run(7, stop);
    CHECK(end == replay::RunEnd::completed);
    check_invariants(w, end, "some 401");
    CHECK(w.ledger().dead == 3);
    CHECK(w.ledger().delivered == 57);
}

TEST_CASE("replay::Engine: a secret changed mid-run trips after N 401s in a row") {
    Scenario s;
    s.events = 100;
    s.concurrency = 1;
    for (int i = 41; i <= 100; ++i) {
        s.faults.reject_401.insert(make_event(i, "").event_id);
    }
    s.breaker.systemic_failures = 10;
    World w(s, 9);
    std::atomic<int> stop{0};
    auto end = w.run(9, stop);
    CHECK(end == replay::RunEnd::tripped);
    check_invariants(w, end, "mid-run 401");
    CHECK(w.ledger().delivered == 40);
    CHECK(w.ledger().dead == 0);
    CHECK(w.target.sent() == 50);
    // --systemic-failures 0 turns it off: the same target dead-letters them.
    Scenario off = s;
    off.breaker.systemic_failures = 0;
    World w2(off, 9);
    CHECK(w2.run(9, stop) == replay::RunEnd::completed);
    CHECK(w2.ledger().dead == 60);
}

TEST_CASE("replay::Engine: a single event answered 401 is not dead-lettered on its own") {
    Scenario s;
    s.events = 1;
    s.faults.always_status = 401;
    World w(s, 3);
    std::atomic<int> stop{0};
    CHECK(w.run(3, stop) == replay::RunEnd::tripped);
    CHECK(w.ledger().pending() == 1);
}

TEST_CASE("replay::Engine: the issue's silent non-delivery scenario always settles or resumes") {
    // listen --fail-rate 0.5 --throttle-rate 0.3 --retry-after, 12 events, --rate 50/s,
    // --backoff-base 100ms --backoff-max 400ms: a run never ends `completed` with events
    // pending (the events due during a Retry-After pause were once forgotten).
    for (std::uint64_t seed = 1; seed <= 500; ++seed) {
        Scenario s;
        s.events = 12;
        s.concurrency = 8;
        s.rate = 50;
        s.retry.backoff_base = std::chrono::milliseconds(100);
        s.retry.backoff_max = std::chrono::milliseconds(400);
        s.faults.fail_503 = 0.5;
        s.faults.throttle_429 = 0.3;
        World w(s, seed);
        std::atomic<int> stop{0};
        auto end = w.run(seed, stop);
        check_invariants(w, end, "defect 1, seed " + std::to_string(seed));
        CHECK(end == replay::RunEnd::completed);
        CHECK(w.ledger().pending() == 0);
    }
}

TEST_CASE("replay::Engine paces sends on the schedule: exactly the rate in every second") {
    Scenario s;
    s.events = 3000;
    s.concurrency = 16;
    s.rate = 1000;
    s.faults.latency_min = 100us;
    s.faults.latency_max = 2ms;
    World w(s, 5);
    std::vector<Time> starts;
    struct Recording : replay::Sender {
        replay::Sender& inner;
        util::ManualClock& clock;
        std::vector<Time>& starts;
        Recording(replay::Sender& i, util::ManualClock& c, std::vector<Time>& s)
            : inner(i)
            , clock(c)
            , starts(s) {}
        void start(http::Request r, Completion d) override {
            starts.push_back(clock.steady());
            inner.start(std::move(r), std::move(d));
        }
        Result<void> poll_until(Time t) override { return inner.poll_until(t); }
        std::size_t in_flight() const override { return inner.in_flight(); }
        void wakeup() override { inner.wakeup(); }
    } recording(w.target, w.clock, starts);
    ListFeed feed(w.pending());
    std::atomic<int> stop{0};
    replay::Engine engine(engine_options(s, 5, w.ledger()), recording, w.clock, w.journal);
    REQUIRE(engine.run(feed, stop));
    REQUIRE(starts.size() == 3000);
    // The n-th send leaves at start + n / rate, to the microsecond on fake time.
    for (std::size_t i = 0; i < starts.size(); ++i) {
        auto expected = starts[0] + std::chrono::microseconds(1000 * static_cast<long>(i));
        CHECK(std::chrono::abs(starts[i] - expected) < 1us);
    }
    CHECK(engine.progress().lag_max_ms <= 0.001); // the histogram's resolution: 1 us
}

TEST_CASE("replay::Engine: after a 429 with Retry-After nothing is sent until it passed") {
    Scenario s;
    s.events = 30;
    s.concurrency = 4;
    s.faults.throttle_429 = 0.2;
    s.faults.retry_after_s = 1;
    World w(s, 11);
    std::atomic<int> stop{0};
    auto end = w.run(11, stop);
    check_invariants(w, end, "retry-after"); // the fake target flags any send in a pause
    // Each throttled event's next attempt left at least 1000 ms after the 429 arrived.
    std::map<std::string, std::vector<const archive::Attempt*>> by_event;
    for (const auto& a : w.journal.attempts()) {
        by_event[a.event_id].push_back(&a);
    }
    int throttled = 0;
    for (const auto& [id, attempts] : by_event) {
        for (std::size_t i = 0; i + 1 < attempts.size(); ++i) {
            if (attempts[i]->http_status == 429) {
                ++throttled;
                double answered = static_cast<double>(attempts[i]->at_ms) + attempts[i]->latency_ms;
                CHECK(static_cast<double>(attempts[i + 1]->at_ms) - answered >= 1000.0 - 1.0);
            }
        }
    }
    CHECK(throttled > 0);
}
