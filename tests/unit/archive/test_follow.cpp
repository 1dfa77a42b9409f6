#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/archive/follow.hpp>

#include "../temp_dir.hpp"

// Designated initializers that leave fields at their defaults are the point here; GCC 12
// warns about them under -Wextra.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace hookctl;
using namespace hookctl::archive;
using namespace std::chrono_literals;

namespace {

using testing::TempDir;

NewEvent make_event(std::string id, std::int64_t at_ms, std::string org = "org_1",
                    std::string body = R"({"subject":"hello"})") {
    NewEvent e;
    e.event_id = std::move(id);
    e.received_at_ms = at_ms;
    e.org_id = std::move(org);
    e.scheme = "mailparse";
    e.body = std::move(body);
    e.source = "listen";
    e.verified_by = "1a2b3c4d";
    return e;
}

Attempt make_attempt(std::string event_id, std::int64_t at_ms, std::string outcome, int status) {
    Attempt a;
    a.run_id = "run_0123456789abcdef";
    a.event_id = std::move(event_id);
    a.target = "https://staging.example/hooks";
    a.attempt = 1;
    a.at_ms = at_ms;
    a.http_status = status;
    a.latency_ms = 12.5;
    a.outcome = parse_attempt_outcome(outcome).value();
    a.reason = status >= 300 ? "http_" + std::to_string(status) : "";
    return a;
}

struct World {
    TempDir dir;
    std::string path = dir.file("tail.db");
    std::unique_ptr<Store> writer = [&] {
        auto a = archive::open(path);
        REQUIRE(a.has_value());
        return std::move(*a);
    }();

    void store(NewEvent e) {
        std::vector<NewEvent> one;
        one.push_back(std::move(e));
        REQUIRE(writer->insert_events(one).has_value());
    }
    Follower follower(TailFilter filter = {}) {
        auto f = Follower::open(path, std::move(filter));
        REQUIRE(f.has_value());
        return std::move(*f);
    }
};

std::vector<std::string> ids(const std::vector<TailRecord>& records) {
    std::vector<std::string> out;
    for (const auto& r : records) {
        out.push_back((r.kind == TailRecord::Kind::event ? "e:" : "a:") + r.event_id);
    }
    return out;
}

// Waits on a ManualClock: runs the writes scheduled up to each deadline at their own time, then
// moves the clock to the deadline; asks to stop once `stop_at` is reached.
class FakeWaiter final : public util::Waiter {
public:
    FakeWaiter(util::ManualClock& clock, SteadyTime stop_at)
        : m_clock(clock)
        , m_stop_at(stop_at) {}

    void at(SteadyTime when, std::function<void()> write) { m_writes.emplace(when, write); }

    bool wait_until(SteadyTime deadline) override {
        ++looks;
        while (!m_writes.empty() && m_writes.begin()->first <= deadline) {
            m_clock.advance_to(m_writes.begin()->first);
            m_writes.begin()->second();
            m_writes.erase(m_writes.begin());
        }
        m_clock.advance_to(deadline);
        return deadline < m_stop_at;
    }

    int looks = 0;

private:
    util::ManualClock& m_clock;
    SteadyTime m_stop_at;
    std::multimap<SteadyTime, std::function<void()>> m_writes;
};

} // namespace

TEST_CASE("archive::PollSchedule looks soon after a change and backs off to its maximum") {
    PollSchedule schedule({10ms, 100ms});
    PollSchedule::SteadyTime t{};
    CHECK(schedule.after_look(t, true) - t == 10ms);
    std::vector<std::chrono::milliseconds> waits;
    for (int i = 0; i < 8; ++i) {
        auto next = schedule.after_look(t, false);
        waits.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(next - t));
        t = next;
    }
    CHECK(waits == std::vector<std::chrono::milliseconds>{20ms, 40ms, 80ms, 100ms, 100ms, 100ms,
                                                          100ms, 100ms});
    CHECK(schedule.after_look(t, true) - t == 10ms); // news: look again soon
}

TEST_CASE("archive::follow prints every commit within the schedule's maximum, on fake time") {
    World w;
    w.store(make_event("evt_old", 1'000));
    auto follower = w.follower();
    REQUIRE(follower.backlog(10).has_value());
    util::ManualClock clock;
    PollSchedule schedule({10ms, 100ms});
    auto start = clock.steady();
    FakeWaiter waiter(clock, start + 10s);
    // Commits at irregular times, some in a burst, over ten seconds.
    std::vector<std::chrono::milliseconds> when = {37ms, 38ms, 1234ms, 1250ms, 4999ms, 9876ms};
    std::map<std::string, PollSchedule::SteadyTime> committed;
    for (std::size_t i = 0; i < when.size(); ++i) {
        std::string id = "evt_" + std::to_string(i);
        waiter.at(start + when[i], [&, id] {
            w.store(make_event(id, 2'000 + static_cast<std::int64_t>(id.size())));
            committed[id] = clock.steady();
        });
    }
    waiter.at(start + 5500ms, [&] {
        REQUIRE(w.writer->record_attempt(make_attempt("evt_0", 3'000, "failed", 503)).has_value());
        committed["attempt"] = clock.steady();
    });
    std::map<std::string, PollSchedule::SteadyTime> printed;
    auto end = follow(follower, schedule, clock, waiter, [&](const auto& records) {
        for (const auto& r : records) {
            printed[r.kind == TailRecord::Kind::event ? r.event_id : "attempt"] = clock.steady();
        }
        return true;
    });
    REQUIRE(end.has_value());
    CHECK(*end == FollowEnd::stopped);
    REQUIRE(printed.size() == committed.size());
    for (const auto& [id, at] : committed) {
        CAPTURE(id);
        REQUIRE(printed.count(id) == 1);
        CHECK(printed[id] - at <= 100ms); // the bound: ≤ max after its commit (≤ 250 ms asked)
    }
    CHECK(printed.count("evt_old") == 0); // the backlog is not printed again
    // Idle most of the ten seconds: about ten looks a second, not a busy loop.
    CHECK(waiter.looks <= 10 * 10 + 40);
}

TEST_CASE("archive::follow stops when the archive is removed") {
    World w;
    auto follower = w.follower();
    REQUIRE(follower.backlog(0).has_value());
    util::ManualClock clock;
    PollSchedule schedule;
    FakeWaiter waiter(clock, clock.steady() + 60s);
    waiter.at(clock.steady() + 300ms, [&] { std::filesystem::remove(w.path); });
    auto end = follow(follower, schedule, clock, waiter, [](const auto&) { return true; });
    REQUIRE(end.has_value());
    CHECK(*end == FollowEnd::archive_gone);
    CHECK(clock.steady() - PollSchedule::SteadyTime{} <= 400ms);
}

TEST_CASE("archive::Follower backlog shows the last N lines, events and attempts by time") {
    World w;
    for (int i = 1; i <= 30; ++i) {
        w.store(make_event("evt_" + std::to_string(i), i * 1000, i % 2 ? "odd" : "even"));
    }
    REQUIRE(w.writer->record_attempt(make_attempt("evt_3", 29'500, "failed", 503)).has_value());
    auto f = w.follower();
    auto last = f.backlog(3);
    REQUIRE(last.has_value());
    CHECK(ids(*last) == std::vector<std::string>{"e:evt_29", "a:evt_3", "e:evt_30"});
    CHECK((*last)[1].org_id == "odd"); // the attempt's event's org
    bool changed = true;
    auto none = f.poll(changed);
    REQUIRE(none.has_value());
    CHECK_FALSE(changed);
    CHECK(none->empty());
    // New rows after the backlog come from poll, once.
    w.store(make_event("evt_31", 31'000));
    auto news = f.poll(changed);
    REQUIRE(news.has_value());
    CHECK(changed);
    CHECK(ids(*news) == std::vector<std::string>{"e:evt_31"});
    CHECK(f.poll(changed)->empty());
}

TEST_CASE("archive::Follower filters by status, org, time and payload text") {
    World w;
    w.store(make_event("evt_a", 1'000, "acme", R"({"subject":"invoice 42"})"));
    w.store(make_event("evt_b", 2'000, "globex", R"({"subject":"invoice 43"})"));
    w.store(make_event("evt_c", 3'000, "acme", R"({"subject":"hello"})"));
    REQUIRE(w.writer->record_attempt(make_attempt("evt_a", 4'000, "failed", 500)).has_value());
    REQUIRE(w.writer->record_attempt(make_attempt("evt_c", 5'000, "delivered", 200)).has_value());

    auto org = w.follower({.org_ids = {"acme"}});
    CHECK(ids(*org.backlog(10)) ==
          std::vector<std::string>{"e:evt_a", "e:evt_c", "a:evt_a", "a:evt_c"});
    auto failed = w.follower({.statuses = {"failed"}});
    CHECK(ids(*failed.backlog(10)) == std::vector<std::string>{"a:evt_a"});
    auto grep = w.follower({.grep = "invoice"});
    CHECK(ids(*grep.backlog(10)) == std::vector<std::string>{"e:evt_a", "e:evt_b", "a:evt_a"});
    auto since = w.follower({.since_ms = 2'500});
    CHECK(ids(*since.backlog(1)) == std::vector<std::string>{"e:evt_c", "a:evt_a", "a:evt_c"});

    // Following honours the same filters.
    bool changed = false;
    w.store(make_event("evt_d", 6'000, "globex", R"({"subject":"invoice 44"})"));
    w.store(make_event("evt_e", 7'000, "acme", R"({"subject":"invoice 45"})"));
    CHECK(ids(*org.poll(changed)) == std::vector<std::string>{"e:evt_e"});
    CHECK(ids(*grep.poll(changed)) == std::vector<std::string>{"e:evt_d", "e:evt_e"});
    CHECK(failed.poll(changed)->empty());
}

TEST_CASE("archive::format_line and to_json say time, id, org, status, reason, latency, key") {
    Event e;
    e.seq = 7;
    e.event_id = "evt_1";
    e.received_at_ms = 1'764'160'000'123;
    e.org_id = "acme";
    e.source = "listen";
    e.verified_by = "1a2b3c4d";
    CHECK(format_line(record_of(e)) ==
          "2025-11-26T12:26:40.123Z  evt_1  acme  received  accepted  -  key 1a2b3c4d");
    auto doc = to_json(record_of(e));
    CHECK(doc["type"] == "event");
    CHECK(doc["seq"] == 7);
    CHECK(doc["verified_by"] == "1a2b3c4d");
    CHECK(doc["latency_ms"].is_null());

    auto a = make_attempt("evt_1", 1'764'160'001'000, "failed", 503);
    a.id = 9;
    CHECK(format_line(record_of(a, "acme")) ==
          "2025-11-26T12:26:41.000Z  evt_1  acme  failed  http_503  12.5ms  -  attempt 1 to "
          "https://staging.example/hooks (run run_0123456789abcdef)");
    auto attempt = to_json(record_of(a, "acme"));
    CHECK(attempt["type"] == "attempt");
    CHECK(attempt["attempt_id"] == 9);
    CHECK(attempt["http_status"] == 503);
    CHECK(attempt["latency_ms"] == 12.5);
}
