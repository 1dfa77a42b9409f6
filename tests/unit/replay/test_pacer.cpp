#include <doctest/doctest.h>

#include <hookctl/replay/pacer.hpp>

using namespace hookctl;
using namespace std::chrono_literals;
using Clock = replay::Pacer::Clock;

TEST_CASE("replay::Pacer sends on a fixed schedule: n at start + n / rate") {
    auto t0 = Clock::now();
    replay::Pacer pacer(util::Rate{100.0}, 1, t0);
    CHECK(pacer.interval() == 10ms);
    CHECK(pacer.try_take(t0) == t0);
    CHECK_FALSE(pacer.try_take(t0 + 5ms).has_value());
    CHECK(pacer.next_due() == t0 + 10ms);
    // Taking a little late does not shift the schedule (no drift); the slot says how late.
    CHECK(pacer.try_take(t0 + 10ms + 300us) == t0 + 10ms);
    CHECK(pacer.next_due() == t0 + 20ms);
    int sent = 2;
    for (auto t = t0 + 20ms; t < t0 + 1s; t += 1ms) {
        sent += pacer.try_take(t) ? 1 : 0;
    }
    CHECK(sent == 100);
}

TEST_CASE("replay::Pacer catches up by at most the burst after a stall") {
    auto t0 = Clock::now();
    replay::Pacer pacer(util::Rate{1000.0}, 5, t0);
    REQUIRE(pacer.try_take(t0));
    // A 100 ms stall misses 100 slots; only 5 go out back to back.
    auto late = t0 + 100ms;
    int burst = 0;
    while (pacer.try_take(late)) {
        ++burst;
    }
    CHECK(burst == 5);
    CHECK(pacer.next_due() == late + 1ms);
}

TEST_CASE("replay::Pacer pause: nothing before the end, and no burst afterwards") {
    auto t0 = Clock::now();
    replay::Pacer pacer(util::Rate{1000.0}, 50, t0);
    REQUIRE(pacer.try_take(t0));
    pacer.pause_until(t0 + 1s);
    CHECK_FALSE(pacer.try_take(t0 + 999ms).has_value());
    int at_end = 0;
    while (pacer.try_take(t0 + 1s)) {
        ++at_end;
    }
    CHECK(at_end == 1);
}

TEST_CASE("replay::Pacer with rate max never waits") {
    replay::Pacer pacer(util::Rate{}, 1, Clock::now());
    CHECK_FALSE(pacer.next_due().has_value());
    for (int i = 0; i < 1000; ++i) {
        auto now = Clock::now();
        REQUIRE(pacer.try_take(now) == now);
    }
}
