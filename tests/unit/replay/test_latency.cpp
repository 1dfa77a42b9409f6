#include <random>

#include <doctest/doctest.h>

#include <hookctl/replay/latency.hpp>

using namespace hookctl;
using std::chrono::microseconds;

TEST_CASE("replay::LatencyHistogram percentiles within 1% in constant memory") {
    replay::LatencyHistogram h;
    CHECK(h.quantile_ms(0.5) == 0);
    // 1..10000 µs uniformly: p50 ~ 5 ms, p99 ~ 9.9 ms.
    for (int us = 1; us <= 10000; ++us) {
        h.add(microseconds(us));
    }
    CHECK(h.count() == 10000);
    CHECK(h.quantile_ms(0.50) == doctest::Approx(5.0).epsilon(0.01));
    CHECK(h.quantile_ms(0.95) == doctest::Approx(9.5).epsilon(0.01));
    CHECK(h.quantile_ms(0.99) == doctest::Approx(9.9).epsilon(0.01));
    CHECK(h.max_ms() == doctest::Approx(10.0));
    CHECK(h.quantile_ms(1.0) <= h.max_ms());
    static_assert(sizeof(replay::LatencyHistogram) < 32 * 1024);
}
