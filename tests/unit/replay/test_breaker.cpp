#include <doctest/doctest.h>

#include <hookctl/replay/breaker.hpp>

using namespace hookctl;
using namespace std::chrono_literals;
using replay::Breaker;

namespace {
const Breaker::Time t0{};
}

TEST_CASE("replay::is_systemic_reason: auth, URL, TLS and DNS failures, not 5xx or 422") {
    for (const char* r : {"http_401", "http_403", "http_404", "http_405", "http_410", "tls_error",
                          "resolve_error"}) {
        CHECK(replay::is_systemic_reason(r));
    }
    for (const char* r : {"http_400", "http_422", "http_503", "http_429", "timeout",
                          "connect_error", "connection_reset", ""}) {
        CHECK_FALSE(replay::is_systemic_reason(r));
    }
}

TEST_CASE("replay::Breaker trips on the first three attempts failing alike, holding verdicts") {
    Breaker b({}, 200);
    b.record_attempt(false, "http_401", true, t0);
    CHECK(b.hold("http_401"));
    CHECK_FALSE(b.hold("http_422"));
    b.record_attempt(false, "http_401", true, t0);
    CHECK_FALSE(b.tripped());
    b.record_attempt(false, "http_401", true, t0);
    CHECK(b.tripped());
    CHECK(b.systemic());
    CHECK(b.reason().find("http_401 to 3 attempts in a row") != std::string::npos);
    CHECK(b.reason().find("check the secret") != std::string::npos);
    // Answers still in flight change nothing: the held events stay pending.
    b.record_attempt(true, "", false, t0);
    CHECK_FALSE(b.release_held());
    CHECK(b.hold("http_401"));
}

TEST_CASE("replay::Breaker after a delivery needs N in a row; a delivery or another permanent "
          "failure breaks the streak and releases what it held") {
    replay::BreakerOptions options;
    options.systemic_failures = 5;
    Breaker b(options, 100);
    b.record_attempt(true, "", false, t0);
    for (int i = 0; i < 4; ++i) {
        b.record_attempt(false, "http_404", true, t0);
    }
    CHECK_FALSE(b.tripped());
    CHECK(b.streak_length() == 4);
    // Retryable failures neither extend nor break it.
    b.record_attempt(false, "http_503", false, t0);
    b.record_attempt(false, "timeout", false, t0);
    CHECK(b.streak_length() == 4);
    CHECK_FALSE(b.release_held());
    // A 422 is per event: the 404s were per event too.
    b.record_attempt(false, "http_422", true, t0);
    CHECK(b.streak_length() == 0);
    CHECK(b.release_held());
    CHECK_FALSE(b.release_held()); // once
    // Another systemic reason starts a new streak and releases the old one's.
    b.record_attempt(false, "http_401", true, t0);
    b.record_attempt(false, "http_403", true, t0);
    CHECK(b.release_held());
    CHECK(b.streak_reason() == "http_403");
    for (int i = 0; i < 4; ++i) {
        b.record_attempt(false, "http_403", true, t0);
    }
    CHECK(b.tripped());
}

TEST_CASE("replay::Breaker with fewer events than the threshold trips on all of them") {
    Breaker b({}, 2);
    b.record_attempt(false, "tls_error", true, t0);
    CHECK_FALSE(b.tripped());
    b.record_attempt(false, "tls_error", true, t0);
    CHECK(b.tripped());
}

TEST_CASE("replay::Breaker judges held verdicts at the end by whether anything was delivered") {
    replay::BreakerOptions options;
    options.systemic_failures = 10;
    Breaker delivered(options, 50);
    delivered.record_attempt(true, "", false, t0);
    delivered.record_attempt(false, "http_404", true, t0);
    delivered.judge_end(1);
    CHECK_FALSE(delivered.tripped());
    CHECK(delivered.release_held());

    Breaker nothing(options, 50);
    nothing.record_attempt(false, "http_404", true, t0);
    nothing.record_attempt(false, "http_503", false, t0);
    nothing.judge_end(1);
    CHECK(nothing.tripped());
    CHECK(nothing.systemic());
    CHECK_FALSE(nothing.release_held());
}

TEST_CASE("replay::Breaker off (--systemic-failures 0) holds nothing and never trips on a streak") {
    replay::BreakerOptions options;
    options.systemic_failures = 0;
    Breaker b(options, 10);
    for (int i = 0; i < 20; ++i) {
        b.record_attempt(false, "http_401", true, t0);
    }
    CHECK_FALSE(b.tripped());
    CHECK_FALSE(b.hold("http_401"));
}

TEST_CASE("replay::Breaker --max-failures counts dead events, --max-error-rate the last 10 s") {
    replay::BreakerOptions options;
    options.max_failures = 2;
    Breaker dead(options, 10);
    dead.record_dead();
    CHECK_FALSE(dead.tripped());
    dead.record_dead();
    CHECK(dead.tripped());
    CHECK_FALSE(dead.systemic());
    CHECK(dead.reason() == "2 events dead-lettered (--max-failures 2)");

    replay::BreakerOptions rate;
    rate.max_error_rate = 0.5;
    Breaker errors(rate, 100);
    // 19 attempts are too few to judge; old attempts leave the window.
    for (int i = 0; i < 19; ++i) {
        errors.record_attempt(false, "http_503", false, t0);
    }
    CHECK_FALSE(errors.tripped());
    for (int i = 0; i < 30; ++i) {
        errors.record_attempt(true, "", false, t0 + 11s);
    }
    errors.record_attempt(false, "http_503", false, t0 + 11s);
    CHECK_FALSE(errors.tripped()); // 1 of 31 in the window
    for (int i = 0; i < 40; ++i) {
        errors.record_attempt(false, "http_503", false, t0 + 12s);
    }
    CHECK(errors.tripped());
    CHECK(errors.reason().find("--max-error-rate 50%") != std::string::npos);
}
