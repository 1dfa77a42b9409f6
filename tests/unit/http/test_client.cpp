#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/http/client.hpp>

#include "../loopback_server.hpp"

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

namespace {

using testing::LoopbackPort;
using testing::RecordingServer;

// Starts `n` requests to `url` and polls until all completed or `limit` passed.
std::vector<http::Response> run_all(http::Client& client, const std::string& url, int n,
                                    std::chrono::seconds limit) {
    std::vector<http::Response> done;
    for (int i = 0; i < n; ++i) {
        http::Request request;
        request.url = url;
        request.body = R"({"n":)" + std::to_string(i) + "}";
        client.start(std::move(request), [&](http::Response&& r) { done.push_back(std::move(r)); });
    }
    auto end = Clock::now() + limit;
    while (done.size() < static_cast<std::size_t>(n) && Clock::now() < end) {
        REQUIRE(client.poll_until(std::min(end, Clock::now() + 100ms)));
    }
    return done;
}

} // namespace

TEST_CASE("http::Client reports refused connections as transport errors, each one") {
    LoopbackPort closed(false);
    auto client = http::Client::create({});
    REQUIRE(client);
    auto done = run_all(*client, closed.url(), 8, 10s);
    REQUIRE(done.size() == 8);
    for (const auto& r : done) {
        CHECK(r.status == 0);
        CHECK(!r.timed_out);
        CHECK(r.transport_error.starts_with("connection failed"));
    }
    CHECK(client->in_flight() == 0);
}

TEST_CASE("http::Client times out a request the server never answers") {
    // The kernel accepts the connections; nothing reads or answers them. Only libcurl's own
    // timeout can end these requests, so this fails (or hangs to the limit) if its timers are
    // not run.
    LoopbackPort silent(true);
    http::ClientOptions options;
    options.total_timeout = 300ms;
    auto client = http::Client::create(options);
    REQUIRE(client);
    auto start = Clock::now();
    auto done = run_all(*client, silent.url(), 4, 10s);
    auto took = Clock::now() - start;
    REQUIRE(done.size() == 4);
    for (const auto& r : done) {
        CHECK(r.status == 0);
        CHECK(r.timed_out);
        CHECK(r.transport_error == "timed out");
        // The requests went out (the kernel completed the connections) once libcurl ran them,
        // well before they timed out.
        CHECK(r.sent_at >= start);
        CHECK(r.sent_at < start + 250ms);
        CHECK(r.done_at >= start + 300ms); // the timeout ended it, after it had gone out
        CHECK(r.done_at > r.sent_at);
        CHECK(r.done_at <= Clock::now());
    }
    CHECK(took >= 300ms);
    CHECK(took < 5s);
}

TEST_CASE("http::Client sends each method as asked on a reused handle and connection") {
    // One request at a time, so each one takes the easy handle the last one gave back (with
    // its options) and the kept-alive connection: a GET after a POST must not carry the POST's
    // body, a PUT after a HEAD must carry its own, and so on.
    RecordingServer server;
    auto client = http::Client::create({});
    REQUIRE(client);
    struct Ask {
        std::string method;
        std::string body;
    };
    std::vector<Ask> asks = {
        {"POST", R"({"a":1})"}, {"GET", ""},    {"HEAD", ""}, {"PUT", R"({"b":22})"},
        {"PATCH", "patched"},   {"DELETE", ""}, {"GET", ""},  {"POST", R"({"c":3})"}};
    for (const auto& ask : asks) {
        CAPTURE(ask.method);
        http::Request request;
        request.method = ask.method;
        request.url = server.url();
        request.body = ask.body;
        std::optional<http::Response> got;
        client->start(std::move(request), [&](http::Response&& r) { got = std::move(r); });
        auto end = Clock::now() + 10s;
        while (!got && Clock::now() < end) {
            REQUIRE(client->poll_until(std::min(end, Clock::now() + 100ms)));
        }
        REQUIRE(got);
        CHECK(got->status == 200);
        CHECK(got->body == (ask.method == "HEAD" ? "" : "ok"));
    }
    auto seen = server.seen();
    REQUIRE(seen.size() == asks.size());
    for (std::size_t i = 0; i < asks.size(); ++i) {
        CAPTURE(i);
        CHECK(seen[i].method == asks[i].method);
        CHECK(seen[i].body == asks[i].body);
        bool sends_body =
            asks[i].method == "POST" || asks[i].method == "PUT" || asks[i].method == "PATCH";
        CHECK(seen[i].has_length == sends_body);
    }
    CHECK(server.connections() == 1);
}
