#include <vector>

#include <doctest/doctest.h>

#include <hookctl/receive/accept_backoff.hpp>

using namespace hookctl::receive;
using namespace std::chrono_literals;

TEST_CASE("receive::AcceptBackoff doubles its wait up to the cap and resets after an accept") {
    AcceptBackoff backoff;
    AcceptBackoff::Clock::time_point t{};
    std::vector<long> waits;
    for (int i = 0; i < 8; ++i) {
        auto d = backoff.failed(t);
        waits.push_back(static_cast<long>(d.wait.count()));
        t += d.wait;
    }
    CHECK(waits == std::vector<long>{50, 100, 200, 400, 800, 1000, 1000, 1000});
    backoff.succeeded();
    CHECK(backoff.failed(t).wait == 50ms);
    CHECK(backoff.total_failures() == 9);
}

TEST_CASE("receive::AcceptBackoff logs the first failure, then one line per interval with the "
          "count") {
    AcceptBackoff backoff;
    AcceptBackoff::Clock::time_point t{};
    auto first = backoff.failed(t);
    REQUIRE(first.report.has_value());
    CHECK(*first.report == 1);
    // Failing every 100 ms (what the old loop logged each time) for just under 10 s: silent.
    int lines = 0;
    for (int i = 1; i < 100; ++i) {
        t += 100ms;
        lines += backoff.failed(t).report ? 1 : 0;
    }
    CHECK(lines == 0);
    // At 10 s one line says how many failed since the first.
    t += 100ms;
    auto second = backoff.failed(t);
    REQUIRE(second.report.has_value());
    CHECK(*second.report == 100);
    // Accepts in between do not bring the line back early (a limit hit again and again).
    backoff.succeeded();
    t += 1s;
    CHECK_FALSE(backoff.failed(t).report.has_value());
    backoff.succeeded();
    t += 9s;
    auto third = backoff.failed(t);
    REQUIRE(third.report.has_value());
    CHECK(*third.report == 2);
}
