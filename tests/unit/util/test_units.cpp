#include <doctest/doctest.h>

#include <hookctl/util/units.hpp>

using namespace hookctl;
using namespace std::chrono_literals;

TEST_CASE("util::parse_duration accepts bare seconds and units") {
    CHECK(util::parse_duration("300").value() == 300s);
    CHECK(util::parse_duration("300s").value() == 300s);
    CHECK(util::parse_duration("5m").value() == 5min);
    CHECK(util::parse_duration("24h").value() == 24h);
    CHECK(util::parse_duration("250ms").value() == 250ms);
    CHECK(util::parse_duration("1.5s").value() == 1500ms);
    CHECK(util::parse_duration("7d").value() == 168h);
}

TEST_CASE("util::parse_duration rejects garbage with the input quoted") {
    for (const char* bad : {"", "5x", "-5s", "m", "5 m", "1e3", "nan"}) {
        auto r = util::parse_duration(bad);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ExitCode::usage);
        CHECK(r.error().message.find(std::string("'") + bad + "'") != std::string::npos);
    }
}

TEST_CASE("util::parse_rate reads per second, minute, hour and max") {
    CHECK(*util::parse_rate("50/s").value().per_second == doctest::Approx(50));
    CHECK(*util::parse_rate("300/m").value().per_second == doctest::Approx(5));
    CHECK(*util::parse_rate("36/h").value().per_second == doctest::Approx(0.01));
    CHECK(*util::parse_rate("20").value().per_second == doctest::Approx(20));
    CHECK(util::parse_rate("max").value().unlimited());
    for (const char* bad : {"0/s", "-1/s", "50/d", "fast", "/s", ""}) {
        CHECK_FALSE(util::parse_rate(bad).has_value());
    }
}

TEST_CASE("util::parse_size reads binary and decimal units") {
    CHECK(util::parse_size("1024").value() == 1024);
    CHECK(util::parse_size("512KiB").value() == 512 * 1024);
    CHECK(util::parse_size("25MiB").value() == 25ull * 1024 * 1024);
    CHECK(util::parse_size("1GiB").value() == 1024ull * 1024 * 1024);
    CHECK(util::parse_size("10MB").value() == 10'000'000);
    CHECK_FALSE(util::parse_size("25mb").has_value());
    CHECK_FALSE(util::parse_size("lots").has_value());
    CHECK_FALSE(util::parse_size("99999999999GiB").has_value());
}

TEST_CASE("util::parse_unix_seconds rejects non-numeric and overflowing input") {
    CHECK(util::parse_unix_seconds("1614265330").value() == 1614265330);
    CHECK(util::parse_unix_seconds("-5").value() == -5);
    CHECK_FALSE(util::parse_unix_seconds("").has_value());
    CHECK_FALSE(util::parse_unix_seconds("12a").has_value());
    CHECK_FALSE(util::parse_unix_seconds("+5").has_value());
    auto overflow = util::parse_unix_seconds("99999999999999999999");
    REQUIRE_FALSE(overflow.has_value());
    CHECK(overflow.error().message.find("out of range") != std::string::npos);
}

TEST_CASE("util::format_duration writes what people write") {
    CHECK(util::format_duration(300s) == "5m");
    CHECK(util::format_duration(5400s) == "1h30m");
    CHECK(util::format_duration(250ms) == "250ms");
    CHECK(util::format_duration(0s) == "0s");
}
