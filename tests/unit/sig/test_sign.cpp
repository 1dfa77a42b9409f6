#include <doctest/doctest.h>

#include <hookctl/sig/sign.hpp>

using namespace hookctl;

TEST_CASE("sig::parse_timestamp takes Unix seconds and refuses milliseconds and negatives") {
    CHECK(sig::parse_timestamp("0").value() == 0);
    CHECK(sig::parse_timestamp("1614265330").value() == 1614265330);
    CHECK(sig::parse_timestamp("999999999999").value() == 999999999999); // 12 digits: seconds

    auto ms = sig::parse_timestamp("1614265330123");
    REQUIRE_FALSE(ms.has_value());
    CHECK(ms.error().code == ExitCode::usage);
    CHECK(ms.error().message.find("looks like milliseconds") != std::string::npos);
    CHECK(ms.error().message.find("1614265330 (drop the last three digits)") != std::string::npos);

    auto negative = sig::parse_timestamp("-5");
    REQUIRE_FALSE(negative.has_value());
    CHECK(negative.error().message.find("is negative") != std::string::npos);

    for (const char* bad : {"", "soon", "1.5", "99999999999999999999999"}) {
        CAPTURE(bad);
        auto r = sig::parse_timestamp(bad);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ExitCode::usage);
    }
}
