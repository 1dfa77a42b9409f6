#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/http/deliver.hpp>

#include "../loopback_server.hpp"
#include "../sig/sig_test_support.hpp"

using namespace hookctl;
using namespace std::chrono_literals;
using testing::RecordingServer;

namespace {

bool lower_hex(std::string_view s) {
    return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

http::Endpoint endpoint_for(const std::string& url, sig::Scheme scheme = sig::Scheme::mailparse) {
    http::Endpoint endpoint;
    endpoint.url = url;
    endpoint.scheme = scheme;
    endpoint.keys = test::keys_for(scheme, {scheme == sig::Scheme::standard
                                                ? "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                                                : "0123456789abcdef0123456789abcdef"});
    return endpoint;
}

// Quick retries: the backoff is at most a millisecond, so a test of retries takes no time.
http::RetryPolicy quick(int retries) {
    http::RetryPolicy policy;
    policy.retries = retries;
    policy.backoff_base = 1ms;
    policy.backoff_max = 1ms;
    return policy;
}

// The headers a request carried, as a verifier reads them.
util::HeaderList headers_of(const RecordingServer::Seen& seen) {
    auto headers = util::parse_header_block(seen.head, "request");
    REQUIRE(headers);
    return *headers;
}

} // namespace

TEST_CASE("http::trace_id_or_new keeps a valid W3C trace id and replaces anything else") {
    const std::string valid = "4bf92f3577b34da6a3ce929d0e0e4736";
    CHECK(http::trace_id_or_new(valid) == valid);
    for (std::string bad :
         {std::string(), std::string(32, '0'), std::string("4BF92F3577B34DA6A3CE929D0E0E4736"),
          valid + "0", valid.substr(1), std::string("4bf92f3577b34da6a3ce929d0e0e473g")}) {
        CAPTURE(bad);
        auto made = http::trace_id_or_new(bad);
        CHECK(made.size() == 32);
        CHECK(lower_hex(made));
        CHECK(made != bad);
        CHECK(made != std::string(32, '0'));
    }
    CHECK(http::trace_id_or_new("") != http::trace_id_or_new("")); // fresh each time
}

TEST_CASE("http::make_traceparent carries the trace id and a fresh span id") {
    const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    auto first = http::make_traceparent(trace);
    auto second = http::make_traceparent(trace);
    REQUIRE(first.size() == 55);
    CHECK(first.starts_with("00-" + trace + "-"));
    CHECK(first.ends_with("-01"));
    CHECK(lower_hex(first.substr(36, 16)));
    CHECK(first != second); // the span id
    CHECK(http::make_traceparent("not a trace").substr(3, 32) != "not a trace");
}

TEST_CASE("http::signed_request signs the body and adds the event id and the extra headers") {
    auto endpoint = endpoint_for("http://127.0.0.1:9/hook", sig::Scheme::standard);
    endpoint.content_type = "application/cloudevents+json";
    util::HeaderList extra;
    extra.add("X-Tenant", "acme");
    auto request = http::signed_request(endpoint, "evt_1", R"({"a":1})", extra, 1'764'000'000);
    REQUIRE(request);
    CHECK(request->url == endpoint.url);
    CHECK(request->body == R"({"a":1})");
    CHECK(request->headers.find("Content-Type") == "application/cloudevents+json");
    CHECK(request->headers.find("Idempotency-Key") == "evt_1");
    CHECK(request->headers.find("X-Tenant") == "acme");
    CHECK(request->headers.find("webhook-id") == "evt_1"); // standard signs the event id
    auto verdict = test::verify_ok(sig::Scheme::standard, request->headers, endpoint.keys,
                                   request->body, 1'764'000'000);
    CHECK(verdict.ok());

    // No event id: no Idempotency-Key, and a scheme that signs an id gets a fresh one.
    auto anonymous = http::signed_request(endpoint, "", "{}", {}, 1'764'000'000);
    REQUIRE(anonymous);
    CHECK_FALSE(anonymous->headers.find("Idempotency-Key"));
    CHECK_FALSE(anonymous->headers.find("webhook-id").value_or("").empty());

    // Keys that cannot sign: the signer's error, exit 2.
    endpoint.keys.clear();
    auto unsigned_ = http::signed_request(endpoint, "evt_1", "{}", {}, 1'764'000'000);
    REQUIRE_FALSE(unsigned_);
    CHECK(unsigned_.error().code == ExitCode::usage);
}

TEST_CASE("http::deliver retries a 503, re-signing each attempt, and stops at the 200") {
    RecordingServer server;
    server.answer(503, "busy");
    auto client = http::Client::create({});
    REQUIRE(client);
    auto endpoint = endpoint_for(server.url());
    std::vector<http::Attempt> seen_attempts;
    auto result = http::deliver(*client, endpoint, "evt_7", R"({"n":7})", {}, quick(3),
                                [&](const http::Attempt& a) { seen_attempts.push_back(a); });
    REQUIRE(result);
    CHECK(result->delivered);
    REQUIRE(result->attempts.size() == 2);
    REQUIRE(seen_attempts.size() == 2);
    CHECK(seen_attempts[0].number == 1);
    CHECK(seen_attempts[0].response.status == 503);
    CHECK(seen_attempts[0].response.body == "busy");
    CHECK(seen_attempts[0].decision.verdict == http::Verdict::retry);
    CHECK(seen_attempts[0].wait_before_next <= 1ms);
    CHECK(seen_attempts[1].number == 2);
    CHECK(seen_attempts[1].response.status == 200);
    CHECK(seen_attempts[1].wait_before_next == 0ms);

    auto requests = server.seen();
    REQUIRE(requests.size() == 2);
    for (const auto& r : requests) {
        CHECK(r.body == R"({"n":7})");
        CHECK(r.header("Idempotency-Key") == "evt_7");
        auto headers = headers_of(r);
        auto timestamp = std::stoll(std::string(headers.find("X-Signature-Timestamp").value()));
        auto verdict =
            test::verify_ok(sig::Scheme::mailparse, headers, endpoint.keys, r.body, timestamp);
        CHECK(verdict.ok());
    }
}

TEST_CASE("http::deliver gives up at once on a permanent status, and after the retries") {
    auto client = http::Client::create({});
    REQUIRE(client);
    {
        RecordingServer server;
        server.answer(400, "bad field");
        auto result =
            http::deliver(*client, endpoint_for(server.url()), "evt_1", "{}", {}, quick(5));
        REQUIRE(result);
        CHECK_FALSE(result->delivered);
        CHECK(result->reason == "http_400");
        REQUIRE(result->attempts.size() == 1);
        CHECK(result->attempts[0].decision.verdict == http::Verdict::permanent);
        CHECK(server.seen().size() == 1);
    }
    {
        RecordingServer server;
        for (int i = 0; i < 3; ++i) {
            server.answer(503);
        }
        server.answer(200); // never reached: two retries are three attempts
        auto result =
            http::deliver(*client, endpoint_for(server.url()), "evt_2", "{}", {}, quick(2));
        REQUIRE(result);
        CHECK_FALSE(result->delivered);
        CHECK(result->reason == "http_503");
        REQUIRE(result->attempts.size() == 3);
        CHECK(result->attempts.back().wait_before_next == 0ms);
        CHECK(server.seen().size() == 3);
    }
}

TEST_CASE("http::deliver reports a refused connection per attempt, and a signing error before "
          "sending anything") {
    auto client = http::Client::create({});
    REQUIRE(client);
    testing::LoopbackPort closed(false);
    auto result = http::deliver(*client, endpoint_for(closed.url()), "evt_1", "{}", {}, quick(1));
    REQUIRE(result);
    CHECK_FALSE(result->delivered);
    REQUIRE(result->attempts.size() == 2);
    CHECK(result->attempts[0].response.status == 0);
    CHECK(result->reason == "connect_error");

    RecordingServer server;
    auto keyless = endpoint_for(server.url());
    keyless.keys.clear();
    auto refused = http::deliver(*client, keyless, "evt_1", "{}", {}, quick(3));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ExitCode::usage);
    CHECK(server.seen().empty());
}
