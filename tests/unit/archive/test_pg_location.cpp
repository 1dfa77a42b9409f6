#include <doctest/doctest.h>

#include <hookctl/archive/postgres/location.hpp>

using namespace hookctl;
using namespace hookctl::archive::postgres;
using namespace std::chrono_literals;

TEST_CASE("archive::postgres::check_uri refuses a password in the userinfo or the query") {
    CHECK(check_uri("postgres://alice@db.example:5432/hooks"));
    CHECK(check_uri("postgresql:///hooks?host=/run/postgresql&sslmode=require"));
    CHECK(check_uri("postgres://db1:5432,db2:5433/hooks")); // several hosts, no userinfo
    for (const char* uri :
         {"postgres://alice:s3cret@db.example/hooks", "postgresql://alice:@db/hooks",
          "postgres://db/hooks?password=s3cret", "postgres://db/hooks?user=a&PassWord=s3cret",
          "postgres://db/hooks?%70assword=s3cret", "postgres://db/hooks?sslpassword=s3cret"}) {
        auto checked = check_uri(uri);
        REQUIRE_FALSE(checked);
        CHECK(checked.error().code == ExitCode::usage);
        const auto& message = checked.error().message;
        CHECK(message.find("s3cret") == std::string::npos);
        CHECK(message.find("db") == std::string::npos);
        CHECK(message.find("PGPASSWORD") != std::string::npos);
        CHECK(message.find(".pgpass") != std::string::npos);
    }
}

TEST_CASE("archive::postgres::display_uri drops passwords and hides unknown parameter values") {
    CHECK(display_uri("postgres://alice@db:5432/hooks") == "postgres://alice@db:5432/hooks");
    CHECK(display_uri("postgres://alice:pw@db/hooks") == "postgres://alice@db/hooks");
    CHECK(display_uri("postgres://db/hooks?sslmode=require&password=pw&x_token=abc") ==
          "postgres://db/hooks?sslmode=require&x_token=...");
    CHECK(display_uri("postgresql:///hooks?host=/tmp") == "postgresql:///hooks?host=/tmp");
}

TEST_CASE("archive::postgres::ReconnectPacer spaces failed attempts, doubling up to the cap") {
    ReconnectPacer pacer(250ms, 1000ms);
    ReconnectPacer::Clock::time_point t0{std::chrono::seconds(100)};
    CHECK(pacer.may_try(t0)); // the first loss is tried at once
    pacer.failed(t0);
    CHECK_FALSE(pacer.may_try(t0 + 249ms));
    CHECK(pacer.may_try(t0 + 250ms));
    pacer.failed(t0 + 250ms);
    CHECK_FALSE(pacer.may_try(t0 + 749ms));
    CHECK(pacer.may_try(t0 + 750ms));
    pacer.failed(t0 + 750ms);  // 1000 ms
    pacer.failed(t0 + 1750ms); // capped at 1000 ms
    CHECK_FALSE(pacer.may_try(t0 + 2749ms));
    CHECK(pacer.may_try(t0 + 2750ms));
    pacer.succeeded();
    CHECK(pacer.may_try(t0 + 2750ms));
    CHECK(pacer.next_delay() == 250ms);
}
