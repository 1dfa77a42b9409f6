#include <doctest/doctest.h>

#include <hookctl/sig/verify.hpp>
#include <hookctl/trigger/deliver.hpp>

using namespace hookctl;

namespace {

http::Endpoint endpoint() {
    http::Endpoint e;
    e.url = "http://127.0.0.1:9/hooks";
    keys::Key key;
    key.kind = keys::KeyKind::hmac;
    key.bytes = keys::SecretBytes(std::string("receiver-secret"));
    e.keys.push_back(std::move(key));
    return e;
}

trigger::Delivery delivery(std::string_view name, const util::Clock& clock) {
    trigger::Options o;
    o.now_ms = clock.unix_ms();
    o.nonce = "t";
    auto scenario = trigger::find_scenario(name);
    REQUIRE(scenario.has_value());
    auto built = trigger::build(**scenario, o);
    REQUIRE(built.has_value());
    return built->front();
}

sig::Verdict check(const http::Request& request, const http::Endpoint& e, std::int64_t now) {
    util::MemorySource body(request.body);
    auto v = sig::verify({sig::Scheme::mailparse, std::chrono::seconds(300), now}, request.headers,
                         e.keys, body);
    REQUIRE(v.has_value());
    return *v;
}

} // namespace

TEST_CASE("trigger::request_for signs as send does, stale and wrong-secret as documented") {
    util::ManualClock clock(1'764'160'000'000);
    auto e = endpoint();
    std::int64_t now = clock.unix_ms() / 1000;

    auto plain = delivery("message", clock);
    auto request = trigger::request_for(e, plain, clock);
    REQUIRE(request.has_value());
    CHECK(request->body == plain.body);
    CHECK(request->headers.find("Idempotency-Key") == plain.event_id);
    CHECK(request->headers.find("traceparent").has_value());
    CHECK(request->headers.find("X-Signature-Timestamp") == std::to_string(now));
    CHECK(check(*request, e, now).ok());

    auto stale = trigger::request_for(e, delivery("stale-timestamp", clock), clock);
    REQUIRE(stale.has_value());
    CHECK(stale->headers.find("X-Signature-Timestamp") == std::to_string(now - 600));
    CHECK(check(*stale, e, now).outcome == sig::Outcome::stale_timestamp);

    auto forged = trigger::request_for(e, delivery("wrong-secret", clock), clock);
    REQUIRE(forged.has_value());
    CHECK(check(*forged, e, now).outcome == sig::Outcome::no_match);
}
