// replay::Engine as one worker of a run shared by several (replay --join): its slots, pauses and
// stops come from a Crew. A fake crew on fake time stands in for SharedRun (shared.cpp), whose
// PostgreSQL side tests/cli/test_replay_workers.py drives for real.
#include <doctest/doctest.h>

#include "fake_world.hpp"

using namespace hookctl;
using namespace hookctl::testing;

namespace {

// The run's schedule has a slot every `interval` from `start`; this worker holds every
// `workers`-th of them (the others go to other workers). A slot missed by more than 10 ms is
// dropped; a pause skips the slots before its end; after `halt_after` slots taken, another
// worker's breaker has stopped the run.
class FakeCrew final : public replay::Crew {
public:
    FakeCrew(const util::ManualClock& clock, std::chrono::nanoseconds interval, int share,
             int workers)
        : m_clock(clock)
        , m_interval(interval)
        , m_share(share)
        , m_workers(workers)
        , m_start(clock.steady()) {}

    std::optional<Time> next_due() override { return slot(m_next); }
    std::optional<Time> try_take(Time now) override {
        while (slot(m_next) + std::chrono::milliseconds(10) < now) {
            ++m_next; // missed
            ++m_dropped;
        }
        auto due = slot(m_next);
        if (due > now) {
            return std::nullopt;
        }
        ++m_next;
        m_taken.push_back(due);
        return due;
    }
    void pause(std::chrono::milliseconds pause) override {
        m_pauses.push_back(pause);
        const auto until = m_clock.steady() + pause;
        while (slot(m_next) < until) {
            ++m_next;
        }
    }
    std::optional<std::string> halted() override {
        if (m_halt_after && static_cast<std::int64_t>(m_taken.size()) >= *m_halt_after) {
            return std::string("worker b's circuit breaker tripped: 10 attempts in a row failed");
        }
        return std::nullopt;
    }

    void halt_after(std::int64_t n) { m_halt_after = n; }
    const std::vector<Time>& taken() const { return m_taken; }
    const std::vector<std::chrono::milliseconds>& pauses() const { return m_pauses; }
    // Whether `t` is a slot of this worker's share.
    bool mine(Time t) const {
        auto k = (t - m_start) / m_interval;
        return m_start + k * m_interval == t && k % m_workers == m_share;
    }

private:
    Time slot(std::int64_t n) const { return m_start + (n * m_workers + m_share) * m_interval; }

    const util::ManualClock& m_clock;
    std::chrono::nanoseconds m_interval;
    std::int64_t m_share;
    std::int64_t m_workers;
    Time m_start;
    std::int64_t m_next = 0;
    std::int64_t m_dropped = 0;
    std::optional<std::int64_t> m_halt_after;
    std::vector<Time> m_taken;
    std::vector<std::chrono::milliseconds> m_pauses;
};

// A sender that notes when each request left.
struct Recording final : replay::Sender {
    replay::Sender& inner;
    util::ManualClock& clock;
    std::vector<Time> starts;
    Recording(replay::Sender& i, util::ManualClock& c)
        : inner(i)
        , clock(c) {}
    void start(http::Request r, Completion d) override {
        starts.push_back(clock.steady());
        inner.start(std::move(r), std::move(d));
    }
    Result<void> poll_until(Time t) override { return inner.poll_until(t); }
    std::size_t in_flight() const override { return inner.in_flight(); }
    void wakeup() override { inner.wakeup(); }
};

struct Worker {
    util::ManualClock clock;
    FakeTarget target;
    MemoryJournal journal;
    FakeCrew crew;
    Recording sender;
    std::vector<replay::ReplayEvent> events;

    Worker(std::uint64_t seed, int events_count, Faults faults, int concurrency, double rate,
           int share, int workers)
        : target(clock, std::move(faults), seed, concurrency, false)
        , journal(seed + 1, 0.7)
        , crew(clock, std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / rate)), share,
               workers)
        , sender(target, clock) {
        for (int i = 1; i <= events_count; ++i) {
            events.push_back(make_event(i, "org_" + std::to_string(i % 3)));
            journal.select(i);
        }
    }

    replay::Engine engine(std::uint64_t seed, int concurrency, double rate,
                          replay::BreakerOptions breaker = {}) {
        replay::EngineOptions o;
        o.run_id = "run_shared";
        o.target_label = "http://127.0.0.1:9/hooks";
        o.endpoint = test_endpoint();
        o.retry.retries = 3;
        o.retry.backoff_base = std::chrono::milliseconds(20);
        o.retry.backoff_max = std::chrono::milliseconds(200);
        o.rate = util::Rate{rate}; // the run's total: the crew's slots decide
        o.concurrency = concurrency;
        o.set_event_status = true;
        o.breaker = breaker;
        o.seed = seed;
        o.crew = &crew;
        o.crew_pending = static_cast<std::int64_t>(events.size()) * 3; // the whole run's
        return replay::Engine(std::move(o), sender, clock, journal);
    }
};

} // namespace

TEST_CASE("replay::Engine with a crew sends only on its slots of the run's schedule") {
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        std::mt19937_64 rng(seed);
        auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
        Faults faults;
        faults.fail_503 = pick(0, 30) / 100.0;
        faults.drop = pick(0, 5) / 100.0;
        faults.dead_422 = pick(0, 10) / 100.0;
        const int workers = pick(1, 4), share = pick(0, workers - 1);
        const int concurrency = pick(1, 8);
        const double rate = pick(20, 2000);
        Worker w(seed, pick(1, 60), faults, concurrency, rate, share, workers);
        auto engine = w.engine(seed, concurrency, rate);
        ListFeed feed(w.events);
        std::atomic<int> stop{0};
        INFO("seed " << seed);
        REQUIRE(engine.run(feed, stop));
        for (const auto& v : w.target.violations()) {
            FAIL_CHECK(v);
        }
        CHECK(engine.end() == replay::RunEnd::completed);
        // Every request took one slot of this worker's share and left at or after it, never
        // more than the slot's tolerance late (a missed slot is dropped, not sent late).
        REQUIRE(w.sender.starts.size() == w.crew.taken().size());
        for (std::size_t i = 0; i < w.sender.starts.size(); ++i) {
            CHECK(w.crew.mine(w.crew.taken()[i]));
            CHECK(w.sender.starts[i] >= w.crew.taken()[i]);
            CHECK(w.sender.starts[i] - w.crew.taken()[i] <= std::chrono::milliseconds(10));
        }
        // The ledger this worker keeps is of the items it was fed (its claims), and agrees with
        // what it committed.
        const auto ledger = engine.ledger();
        CHECK(ledger.total == static_cast<std::int64_t>(w.events.size()));
        CHECK(ledger.pending() == 0);
        CHECK(w.journal.run_progress()->total == ledger.total);
        CHECK(w.journal.count(archive::ItemState::delivered) +
                  w.journal.count(archive::ItemState::dead) ==
              static_cast<std::int64_t>(w.events.size()));
    }
}

TEST_CASE("replay::Engine with a crew passes a 429's Retry-After to every worker") {
    int paused_runs = 0;
    for (std::uint64_t seed = 1; seed <= 50; ++seed) {
        Faults faults;
        faults.throttle_429 = 0.1;
        faults.retry_after_s = 2;
        Worker w(seed, 40, faults, 4, 200, 1, 3);
        auto engine = w.engine(seed, 4, 200);
        ListFeed feed(w.events);
        std::atomic<int> stop{0};
        INFO("seed " << seed);
        REQUIRE(engine.run(feed, stop));
        for (const auto& v : w.target.violations()) {
            FAIL_CHECK(v); // includes any send during a pause
        }
        int throttled = 0;
        for (const auto& a : w.journal.attempts()) {
            throttled += a.http_status == 429 ? 1 : 0;
        }
        // Each 429 that lengthened the pause went to the crew, with the Retry-After asked.
        CHECK(w.crew.pauses().size() <= static_cast<std::size_t>(throttled));
        if (throttled > 0) {
            CHECK(!w.crew.pauses().empty());
            ++paused_runs;
        }
        for (auto p : w.crew.pauses()) {
            CHECK(p == std::chrono::seconds(2));
        }
    }
    CHECK(paused_runs > 25);
}

TEST_CASE("replay::Engine with a crew stops when another worker's breaker stopped the run") {
    for (std::uint64_t seed = 1; seed <= 50; ++seed) {
        Faults faults;
        faults.fail_503 = 0.2;
        Worker w(seed, 200, faults, 6, 500, 0, 2);
        const std::int64_t halt_after = 5 + static_cast<std::int64_t>(seed % 40);
        w.crew.halt_after(halt_after);
        auto engine = w.engine(seed, 6, 500);
        ListFeed feed(w.events);
        std::atomic<int> stop{0};
        INFO("seed " << seed);
        REQUIRE(engine.run(feed, stop));
        CHECK(engine.end() == replay::RunEnd::tripped);
        CHECK(engine.end_reason().find("circuit breaker") != std::string::npos);
        CHECK(w.journal.run_state() == archive::RunState::aborted);
        // No new request after the stop was seen (the ones in flight finished), and the events
        // not settled stay pending: nothing is dead-lettered for the stop.
        CHECK(static_cast<std::int64_t>(w.sender.starts.size()) <= halt_after);
        const auto ledger = engine.ledger();
        CHECK(ledger.pending() > 0);
        CHECK(w.journal.count(archive::ItemState::pending) ==
              static_cast<std::int64_t>(w.events.size()) - ledger.delivered - ledger.dead);
        CHECK(w.journal.count(archive::ItemState::dead) == 0);
    }
}
