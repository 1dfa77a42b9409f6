#include <doctest/doctest.h>

#include <hookctl/replay/plan.hpp>

using namespace hookctl;
using namespace std::chrono_literals;

namespace {

replay::Plan sample_plan() {
    replay::Plan plan;
    plan.source.kind = replay::SourceKind::archive;
    plan.source.path = "/srv/hooks/archive.db";
    plan.source.filter.statuses = {archive::EventStatus::dead};
    plan.source.filter.since_ms = 1'764'000'000'000;
    plan.source.filter.org_ids = {"org_a", "org_b"};
    plan.source.filter.limit = 40;
    plan.source.ordered = true;
    plan.delivery.to = "https://staging.example.com/hooks";
    plan.delivery.scheme = "standard";
    plan.delivery.secrets = {{keys::SecretSource::Kind::env, "HOOK_SECRET"},
                             {keys::SecretSource::Kind::keyring, "/etc/hookctl/ring.json"}};
    plan.delivery.retries = 3;
    plan.delivery.timeout = std::chrono::milliseconds(2500);
    plan.rate = util::Rate{20.0};
    plan.concurrency = 4;
    plan.breaker.max_failures = 5;
    plan.breaker.systemic_failures = 7;
    return plan;
}

} // namespace

TEST_CASE("replay::Plan survives its stored form whole") {
    auto plan = sample_plan();
    auto back = replay::plan_from_json(nlohmann::json::parse(to_json(plan).dump()));
    REQUIRE(back);
    CHECK(to_json(*back) == to_json(plan));
    CHECK(back->source.filter.limit == 40u);
    CHECK(back->source.filter.since_ms == 1'764'000'000'000);
    CHECK_FALSE(back->source.filter.until_ms.has_value());
    CHECK(back->delivery.secrets.size() == 2);
    CHECK(back->delivery.secrets[1].kind == keys::SecretSource::Kind::keyring);
    CHECK(*back->rate->per_second == 20.0);
    CHECK(back->breaker.systemic_failures == 7);
}

TEST_CASE("replay::plan_from_json refuses what an older hookctl stored, saying what to do") {
    // Version 3 stored the flags as given, without a version.
    auto old = nlohmann::json{{"from", "a.db"}, {"rate", "50/s"}};
    auto plan = replay::plan_from_json(old);
    REQUIRE_FALSE(plan);
    CHECK(plan.error().code == ExitCode::usage);
    CHECK(plan.error().message.find("start a new replay") != std::string::npos);
    auto broken = to_json(sample_plan());
    broken["source"].erase("path");
    CHECK_FALSE(replay::plan_from_json(broken));
}

TEST_CASE("replay::apply_changes changes pacing and retries and records each change") {
    auto plan = sample_plan();
    replay::PlanChanges changes;
    changes.rate = util::Rate{5.0};
    changes.concurrency = 4; // the same: not a change
    changes.retries = 8;
    changes.systemic_failures = 0;
    int n = replay::apply_changes(plan, changes, "oncall@host", 1234);
    CHECK(n == 3);
    CHECK(*plan.rate->per_second == 5.0);
    CHECK(plan.delivery.retries == 8);
    CHECK(plan.breaker.systemic_failures == 0);
    REQUIRE(plan.changes.size() == 3);
    CHECK(plan.changes[0] == nlohmann::json{{"at_ms", 1234},
                                            {"by", "oncall@host"},
                                            {"field", "rate"},
                                            {"from", "20/s"},
                                            {"to", "5/s"}});
    // The selection is not something a change can touch.
    CHECK(plan.source.filter.limit == 40u);
    auto back = replay::plan_from_json(to_json(plan));
    REQUIRE(back);
    CHECK(back->changes.size() == 3);
}

TEST_CASE("replay::Plan stores the retry count and durations as text, as older plans did") {
    auto plan = sample_plan();
    plan.delivery.max_elapsed = 90s;
    auto stored = to_json(plan);
    const auto& d = stored["delivery"];
    CHECK(d["retries"] == "3");
    CHECK(d["backoff_base"] == "500ms");
    CHECK(d["backoff_max"] == "30s");
    CHECK(d["max_elapsed"] == "90s"); // not 1m30s: util::parse_duration reads it back
    CHECK(d["timeout"] == "2500ms");
    CHECK(d["connect_timeout"] == "10s");
    plan.delivery.max_elapsed.reset();
    CHECK(to_json(plan)["delivery"]["max_elapsed"] == "");
}

TEST_CASE("replay::plan_from_json reads the text a plan stored as given on the command line") {
    auto stored = to_json(sample_plan());
    auto& d = stored["delivery"];
    d["retries"] = "3";
    d["backoff_base"] = "0.25s";
    d["backoff_max"] = "2m";
    d["max_elapsed"] = "";
    d["timeout"] = "2"; // bare seconds
    d["connect_timeout"] = "1500ms";
    auto plan = replay::plan_from_json(stored);
    REQUIRE(plan);
    CHECK(plan->delivery.retries == 3);
    CHECK(plan->delivery.backoff_base == 250ms);
    CHECK(plan->delivery.backoff_max == 120s);
    CHECK_FALSE(plan->delivery.max_elapsed);
    CHECK(plan->delivery.timeout == 2s);
    CHECK(plan->delivery.connect_timeout == 1500ms);
    d["max_elapsed"] = "1h";
    d["retries"] = 7; // a number is read too
    plan = replay::plan_from_json(stored);
    REQUIRE(plan);
    CHECK(plan->delivery.max_elapsed == 1h);
    CHECK(plan->delivery.retries == 7);

    for (const char* key : {"timeout", "backoff_base", "max_elapsed"}) {
        CAPTURE(key);
        auto bad = stored;
        bad["delivery"][key] = "soon";
        auto refused = replay::plan_from_json(bad);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == ExitCode::usage);
        CHECK(refused.error().message.find(std::string("delivery.") + key) != std::string::npos);
    }
    auto bad = stored;
    bad["delivery"]["retries"] = "five";
    CHECK_FALSE(replay::plan_from_json(bad));
}

TEST_CASE("replay::apply_changes compares durations by value and records them as stored") {
    auto plan = sample_plan();
    replay::PlanChanges same;
    same.timeout = 2500ms;
    same.connect_timeout = 10s;
    same.max_elapsed = std::optional<std::chrono::milliseconds>(); // no limit, as stored
    CHECK(replay::apply_changes(plan, same, "oncall@host", 1) == 0);
    CHECK(plan.changes.empty());

    replay::PlanChanges changes;
    changes.timeout = 5s;
    changes.backoff_base = 100ms;
    changes.max_elapsed = std::optional<std::chrono::milliseconds>(10min);
    CHECK(replay::apply_changes(plan, changes, "oncall@host", 2) == 3);
    CHECK(plan.delivery.timeout == 5s);
    CHECK(plan.delivery.backoff_base == 100ms);
    CHECK(plan.delivery.max_elapsed == 10min);
    REQUIRE(plan.changes.size() == 3);
    CHECK(plan.changes[0]["field"] == "backoff_base");
    CHECK(plan.changes[0]["from"] == "500ms");
    CHECK(plan.changes[0]["to"] == "100ms");
    CHECK(plan.changes[1]["field"] == "max_elapsed");
    CHECK(plan.changes[1]["from"] == "");
    CHECK(plan.changes[1]["to"] == "600s");
    CHECK(plan.changes[2]["field"] == "timeout");
    CHECK(plan.changes[2]["from"] == "2500ms");
    CHECK(plan.changes[2]["to"] == "5s");

    replay::PlanChanges unlimited;
    unlimited.max_elapsed = std::optional<std::chrono::milliseconds>();
    CHECK(replay::apply_changes(plan, unlimited, "oncall@host", 3) == 1);
    CHECK_FALSE(plan.delivery.max_elapsed);
}
