#include <doctest/doctest.h>

#include <hookctl/replay/plan.hpp>

using namespace hookctl;

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
    plan.delivery.retries = "3";
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
    changes.retries = "8";
    changes.systemic_failures = 0;
    int n = replay::apply_changes(plan, changes, "oncall@host", 1234);
    CHECK(n == 3);
    CHECK(*plan.rate->per_second == 5.0);
    CHECK(plan.delivery.retries == "8");
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
