#include <doctest/doctest.h>

#include <hookctl/http/retry.hpp>

using namespace hookctl;
using namespace std::chrono_literals;
using http::Verdict;

namespace {

http::Response response(long status, std::string retry_after = {}) {
    http::Response r;
    r.status = status;
    if (!retry_after.empty()) {
        r.headers.add("Retry-After", retry_after);
    }
    return r;
}

// Thu, 26 Nov 2026 18:00:00 GMT
const auto k_now = std::chrono::system_clock::from_time_t(1795716000);

} // namespace

TEST_CASE("http::classify: 2xx delivered, 408/429/5xx retried, other 4xx permanent") {
    CHECK(http::classify(response(200), k_now).verdict == Verdict::delivered);
    CHECK(http::classify(response(204), k_now).verdict == Verdict::delivered);
    for (long status : {408L, 429L, 500L, 502L, 503L, 504L}) {
        CAPTURE(status);
        auto d = http::classify(response(status), k_now);
        CHECK(d.verdict == Verdict::retry);
        CHECK(d.reason == "http_" + std::to_string(status));
    }
    for (long status : {400L, 401L, 403L, 404L, 409L, 410L, 422L}) {
        CAPTURE(status);
        CHECK(http::classify(response(status), k_now).verdict == Verdict::permanent);
    }
    CHECK(http::classify(response(301), k_now).verdict == Verdict::permanent);
}

TEST_CASE("http::classify: transport errors are retried with a reason code") {
    http::Response r;
    r.status = 0;
    r.curl_code = 7; // CURLE_COULDNT_CONNECT
    auto d = http::classify(r, k_now);
    CHECK(d.verdict == Verdict::retry);
    CHECK(d.reason == "connect_error");
    r.curl_code = 28;
    r.timed_out = true;
    CHECK(http::classify(r, k_now).reason == "timeout");
    r.timed_out = false;
    r.curl_code = 52; // CURLE_GOT_NOTHING: a dropped connection
    CHECK(http::classify(r, k_now).reason == "empty_reply");
}

TEST_CASE("http::classify reads Retry-After on 429 and 503 only") {
    CHECK(http::classify(response(429, "7"), k_now).retry_after == 7000ms);
    CHECK(http::classify(response(503, "1"), k_now).retry_after == 1000ms);
    CHECK_FALSE(http::classify(response(500, "7"), k_now).retry_after.has_value());
    CHECK_FALSE(http::classify(response(429), k_now).retry_after.has_value());
}

TEST_CASE("http::parse_retry_after: seconds, HTTP-dates, past dates and garbage") {
    CHECK(http::parse_retry_after("0", k_now) == 0ms);
    CHECK(http::parse_retry_after(" 120 ", k_now) == 120'000ms);
    CHECK(http::parse_retry_after("Thu, 26 Nov 2026 18:00:30 GMT", k_now) == 30'000ms);
    // The obsolete RFC 850 and asctime forms are HTTP-dates too.
    CHECK(http::parse_retry_after("Thursday, 26-Nov-26 18:01:00 GMT", k_now) == 60'000ms);
    CHECK(http::parse_retry_after("Thu Nov 26 18:00:05 2026", k_now) == 5'000ms);
    CHECK(http::parse_retry_after("Thu, 26 Nov 2026 17:00:00 GMT", k_now) == 0ms);
    CHECK_FALSE(http::parse_retry_after("", k_now).has_value());
    CHECK_FALSE(http::parse_retry_after("-5", k_now).has_value());
    CHECK_FALSE(http::parse_retry_after("soon", k_now).has_value());
    CHECK_FALSE(http::parse_retry_after("1.5", k_now).has_value());
}

TEST_CASE("http::backoff_delay is full jitter under an exponential, capped ceiling") {
    http::RetryPolicy policy;
    policy.backoff_base = 100ms;
    policy.backoff_max = 1000ms;
    std::mt19937_64 rng(42);
    for (int retry = 1; retry <= 8; ++retry) {
        auto ceiling = std::min<std::int64_t>(100LL << (retry - 1), 1000);
        std::int64_t lo = ceiling, hi = 0;
        for (int i = 0; i < 2000; ++i) {
            auto d = http::backoff_delay(policy, retry, rng).count();
            REQUIRE(d >= 0);
            REQUIRE(d <= ceiling);
            lo = std::min(lo, d);
            hi = std::max(hi, d);
        }
        CAPTURE(retry);
        // Full jitter: the whole range is used, not just the top of it.
        CHECK(lo < ceiling / 10 + 1);
        CHECK(hi > ceiling * 9 / 10);
    }
}

TEST_CASE("http::next_delay: retries run out, permanent stops, Retry-After is exact") {
    http::RetryPolicy policy;
    policy.retries = 2;
    policy.backoff_base = 10ms;
    policy.backoff_max = 10ms;
    std::mt19937_64 rng(1);
    http::Decision retry{Verdict::retry, "http_500", std::nullopt};
    CHECK(http::next_delay(policy, retry, 0, 0ms, rng).has_value());
    CHECK(http::next_delay(policy, retry, 1, 0ms, rng).has_value());
    CHECK_FALSE(http::next_delay(policy, retry, 2, 0ms, rng).has_value());
    http::Decision permanent{Verdict::permanent, "http_404", std::nullopt};
    CHECK_FALSE(http::next_delay(policy, permanent, 0, 0ms, rng).has_value());
    http::Decision throttled{Verdict::retry, "http_429", 2500ms};
    CHECK(http::next_delay(policy, throttled, 0, 0ms, rng) == 2500ms);
    policy.max_elapsed = 2000ms;
    CHECK_FALSE(http::next_delay(policy, throttled, 0, 0ms, rng).has_value());
    CHECK(http::next_delay(policy, retry, 0, 1000ms, rng).has_value());
    CHECK_FALSE(http::next_delay(policy, retry, 0, 2001ms, rng).has_value());
}
