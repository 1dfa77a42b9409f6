#include <thread>

#include <doctest/doctest.h>

#include <hookctl/http/client.hpp>

using namespace hookctl;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST_CASE("http::Client::poll_until keeps its deadline below libcurl's millisecond") {
    auto client = http::Client::create({});
    REQUIRE(client);
    // Nothing in flight: each poll sleeps to its deadline, never returns before it (a pacer
    // would send early) and does not overshoot by a whole second (it would hang a run).
    for (auto wait : {300us, 1500us, 5000us}) {
        CAPTURE(wait.count());
        auto start = Clock::now();
        REQUIRE(client->poll_until(start + wait));
        auto took = Clock::now() - start;
        CHECK(took >= wait);
        CHECK(took < wait + 1s);
    }
    // A deadline already past returns at once.
    auto start = Clock::now();
    REQUIRE(client->poll_until(start - 1ms));
    CHECK(Clock::now() - start < 1s);
}

TEST_CASE("http::Client::wakeup ends a poll_until long before its deadline") {
    auto client = http::Client::create({});
    REQUIRE(client);
    auto start = Clock::now();
    std::thread waker([&] {
        std::this_thread::sleep_for(20ms);
        client->wakeup();
    });
    REQUIRE(client->poll_until(start + 30s));
    auto took = Clock::now() - start;
    waker.join();
    CHECK(took >= 20ms);
    CHECK(took < 10s);
}
