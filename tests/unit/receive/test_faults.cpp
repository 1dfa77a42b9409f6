#include <doctest/doctest.h>

#include <hookctl/receive/faults.hpp>

using namespace hookctl::receive;

TEST_CASE("receive::FaultPlan fires each fault at its rate, reproducibly for a seed") {
    FaultOptions o;
    o.fail_rate = 0.2;
    o.seed = 42;
    FaultPlan plan(o);
    FaultPlan again(o);
    int fails = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        auto d = plan.decide(static_cast<std::uint64_t>(i), "evt");
        CHECK(d.kind == again.decide(static_cast<std::uint64_t>(i), "evt").kind);
        fails += d.kind == FaultDecision::Kind::fail ? 1 : 0;
    }
    // 20000 draws at p=0.2: sd ~57; 5 sd bounds.
    CHECK(fails > 4000 - 290);
    CHECK(fails < 4000 + 290);
}

TEST_CASE("receive::FaultPlan --drop-rate wins over --fail-rate; rate 0 never fires") {
    FaultOptions o;
    o.drop_rate = 1;
    o.fail_rate = 1;
    FaultPlan plan(o);
    CHECK(plan.decide(0, "a").kind == FaultDecision::Kind::drop);
    FaultPlan none(FaultOptions{});
    for (std::uint64_t i = 0; i < 1000; ++i) {
        CHECK(none.decide(i, "a").kind == FaultDecision::Kind::none);
    }
}

TEST_CASE("receive::FaultPlan --fail-first fails the first N requests of each event id") {
    FaultOptions o;
    o.fail_first = 2;
    FaultPlan plan(o);
    CHECK(plan.decide(0, "a").kind == FaultDecision::Kind::fail_first);
    CHECK(plan.decide(1, "b").kind == FaultDecision::Kind::fail_first);
    CHECK(plan.decide(2, "a").kind == FaultDecision::Kind::fail_first);
    CHECK(plan.decide(3, "a").kind == FaultDecision::Kind::none);
    CHECK(plan.decide(4, "b").kind == FaultDecision::Kind::fail_first);
    CHECK(plan.decide(5, "b").kind == FaultDecision::Kind::none);
}

TEST_CASE("receive::FaultPlan latency stays within MIN-MAX") {
    FaultOptions o;
    o.latency_min = std::chrono::milliseconds(10);
    o.latency_max = std::chrono::milliseconds(20);
    FaultPlan plan(o);
    bool saw_min = false;
    bool saw_max = false;
    for (std::uint64_t i = 0; i < 2000; ++i) {
        auto d = plan.decide(i, "x");
        CHECK(d.latency.count() >= 10);
        CHECK(d.latency.count() <= 20);
        saw_min = saw_min || d.latency.count() == 10;
        saw_max = saw_max || d.latency.count() == 20;
    }
    CHECK(saw_min);
    CHECK(saw_max);
}

TEST_CASE("receive::parse_probability and parse_latency accept the documented forms") {
    CHECK(*parse_probability("0.25", "--fail-rate") == doctest::Approx(0.25));
    CHECK(*parse_probability("5%", "--fail-rate") == doctest::Approx(0.05));
    CHECK_FALSE(parse_probability("1.5", "--fail-rate").has_value());
    CHECK_FALSE(parse_probability("-0.1", "--fail-rate").has_value());
    CHECK_FALSE(parse_probability("abc", "--fail-rate").has_value());
    auto fixed = parse_latency("200ms");
    REQUIRE(fixed.has_value());
    CHECK(fixed->first.count() == 200);
    CHECK(fixed->second.count() == 200);
    auto range = parse_latency("50ms-2s");
    REQUIRE(range.has_value());
    CHECK(range->first.count() == 50);
    CHECK(range->second.count() == 2000);
    CHECK_FALSE(parse_latency("2s-1s").has_value());
    CHECK_FALSE(parse_latency("soon").has_value());
}
