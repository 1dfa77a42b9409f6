#include <string>

#include <doctest/doctest.h>

#include <hookctl/util/clock.hpp>
#include <hookctl/util/time.hpp>

using namespace hookctl;

TEST_CASE("util::format_time_ms and parse_time_ms round-trip RFC 3339") {
    CHECK(util::format_time_ms(0) == "1970-01-01T00:00:00.000Z");
    CHECK(util::format_time_ms(1764180000123) == "2025-11-26T18:00:00.123Z");
    CHECK(util::format_time_ms(-1) == "1969-12-31T23:59:59.999Z");
    CHECK(*util::parse_time_ms("2025-11-26T18:00:00.123Z") == 1764180000123);
    CHECK(*util::parse_time_ms("2025-11-26T18:00:00Z") == 1764180000000);
    CHECK(*util::parse_time_ms("2025-11-26T19:30:00+01:30") == 1764180000000);
    CHECK(*util::parse_time_ms("2025-11-26 18:00:00") == 1764180000000);
    CHECK(*util::parse_time_ms("2025-11-26") == 1764115200000);
    CHECK(*util::parse_time_ms("@1764180000") == 1764180000000);
    CHECK(*util::parse_time_ms("1764180000") == 1764180000000);
    for (auto bad : {"", "yesterday", "2025-13-01", "2025-02-30", "2025-11-26T25:00:00Z",
                     "2025-11-26T18:00:00Q", "2025-11-26T18:00:00."}) {
        auto r = util::parse_time_ms(bad);
        CHECK_FALSE(r);
        if (!r) {
            CHECK(r.error().code == ExitCode::usage);
        }
    }
}

TEST_CASE("util::parse_when_ms reads relative times against the given now") {
    // A fixed now: 2025-11-26T18:00:00.123Z.
    const std::int64_t now = 1764180000123;
    CHECK(*util::parse_when_ms("now", now) == now);
    CHECK(*util::parse_when_ms("today", now) == 1764115200000);
    CHECK(*util::parse_when_ms("yesterday", now) == 1764115200000 - 86400000);
    CHECK(*util::parse_when_ms("24h", now) == now - 86400000);
    CHECK(*util::parse_when_ms("30m", now) == now - 1800000);
    CHECK(*util::parse_when_ms("2025-11-26", now) == 1764115200000);
    CHECK(*util::parse_when_ms("  now  ", now) == now);
    for (auto bad : {"", "tomorrow", "-5m", "2025-13-01"}) {
        auto r = util::parse_when_ms(bad, now);
        CHECK_FALSE(r);
        if (!r) {
            CHECK(r.error().code == ExitCode::usage);
            CHECK(r.error().message.find("yesterday") != std::string::npos);
            CHECK(r.error().message.find("'" + std::string(bad) + "'") != std::string::npos);
        }
    }
}

TEST_CASE("util::format_time_ms round-trips through parse_time_ms to the millisecond") {
    for (std::int64_t ms : {std::int64_t{0}, std::int64_t{1}, std::int64_t{999},
                            std::int64_t{951782400000} /* 2000-02-29 */,
                            std::int64_t{1764180000123}, std::int64_t{4102444799999}}) {
        CAPTURE(ms);
        auto text = util::format_time_ms(ms);
        auto back = util::parse_time_ms(text);
        REQUIRE(back);
        CHECK(*back == ms);
    }
}

TEST_CASE("util::parse_time_ms accepts offsets either side of UTC, with or without a colon") {
    const std::int64_t utc = 1764180000000; // 2025-11-26T18:00:00Z
    CHECK(*util::parse_time_ms("2025-11-26T18:00:00+00:00") == utc);
    CHECK(*util::parse_time_ms("2025-11-26T18:00:00-00:00") == utc);
    CHECK(*util::parse_time_ms("2025-11-26T13:00:00-05:00") == utc);
    CHECK(*util::parse_time_ms("2025-11-26T13:00:00-0500") == utc);
    CHECK(*util::parse_time_ms("2025-11-27T03:00:00+09:00") == utc); // the next day in Tokyo
    CHECK(*util::parse_time_ms("2025-11-26T18:00:00z") == utc);
    CHECK(*util::parse_time_ms("2025-11-26t18:00:00Z") == utc);
    CHECK(*util::parse_time_ms("2025-11-26T18:00Z") == utc);                 // no seconds
    CHECK(*util::parse_time_ms("2025-11-26T18:00:00,5Z") == utc + 500);      // comma fraction
    CHECK(*util::parse_time_ms("2025-11-26T18:00:00.123456Z") == utc + 123); // truncated to ms
    CHECK(*util::parse_time_ms("  2025-11-26T18:00:00Z ") == utc);
}

TEST_CASE("util::parse_time_ms rejects malformed text and names it in the message") {
    for (auto bad : {"2025-11-26T18:00:00+24:00", "2025-11-26T18:00:00+05:60",
                     "2025-11-26T18:00:00+5", "2025-11-26T18", "2025-11-26X18:00:00Z", "2025/11/26",
                     "26-11-2025", "2025-11-26T18:00:00Z junk", "@", "@-5", "99999999999999999999",
                     "2025-00-10", "2025-11-00"}) {
        CAPTURE(bad);
        auto r = util::parse_time_ms(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ExitCode::usage);
        CHECK(r.error().message ==
              "cannot read time '" + std::string(bad) +
                  "': use RFC 3339 (2026-11-26T18:00:00Z), a date (2026-11-26) or Unix seconds "
                  "(@1764180000)");
    }
}

TEST_CASE("util::format_time_s and parse_time_s_strict agree on the keyring's form") {
    constexpr std::int64_t t0 = 1'800'000'000;
    CHECK(util::format_time_s(0) == "1970-01-01T00:00:00Z");
    CHECK(util::format_time_s(t0) == "2027-01-15T08:00:00Z");
    CHECK(util::parse_time_s_strict(util::format_time_s(t0)) == t0);
    CHECK(util::parse_time_s_strict("1970-01-01T00:00:00Z") == 0);
    // Strict: only the exact form it writes.
    for (auto bad : {"2026-13-01T00:00:00Z", "2026-01-01 00:00:00", "2026-01-01T00:00:00",
                     "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00+00:00", "2026-01-01",
                     "2026-01-01T24:00:00Z", ""}) {
        CAPTURE(bad);
        CHECK_FALSE(util::parse_time_s_strict(bad).has_value());
    }
}

TEST_CASE("util::format_rfc5322_ms writes an English Date header whatever the locale") {
    CHECK(util::format_rfc5322_ms(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
    CHECK(util::format_rfc5322_ms(1764180000999) == "Wed, 26 Nov 2025 18:00:00 +0000");
}

TEST_CASE("util::SystemClock reads the same wall clock as util::unix_now_ms") {
    util::SystemClock clock;
    auto before = util::unix_now_ms();
    auto reading = clock.unix_ms();
    auto after = util::unix_now_ms();
    CHECK(before <= reading);
    CHECK(reading <= after);
    CHECK(util::unix_now_s() >= before / 1000);
}
