#include <doctest/doctest.h>

#include <hookctl/receive/handler.hpp>
#include <hookctl/sig/sign.hpp>

using namespace hookctl;
using namespace hookctl::receive;

namespace {

KeySet keyset(std::optional<sig::Scheme> scheme) {
    std::vector<keys::SecretText> texts;
    texts.push_back({keys::SecretBytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "test"});
    auto set = make_key_set(texts, scheme);
    REQUIRE(set.has_value());
    return std::move(*set);
}

util::HeaderList signed_headers(sig::Scheme scheme, const KeySet& keys, std::string_view body,
                                std::int64_t ts, std::string id = "msg_1") {
    util::MemorySource source(body);
    auto s = sig::sign({scheme, ts, std::move(id)}, keys.for_scheme(scheme), source);
    REQUIRE(s.has_value());
    return s->headers;
}

const std::int64_t k_now = 1'764'180'000;

} // namespace

TEST_CASE("receive::check_request accepts a valid request and takes event_id from the JSON") {
    auto keys = keyset(sig::Scheme::mailparse);
    std::string body = R"({"event_id":"evt_1","org_id":"org_9","subject":"hi"})";
    auto headers = signed_headers(sig::Scheme::mailparse, keys, body, k_now);
    headers.add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    auto c = check_request({}, keys, headers, body, k_now * 1000);
    CHECK(c.status == 0);
    CHECK(c.event.event_id == "evt_1");
    CHECK(c.event.org_id == "org_9");
    CHECK(c.event.scheme == "mailparse");
    CHECK(c.event.body == body);
    CHECK(c.event.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_CASE("receive::check_request rejects before parsing: 401 for every failed verification") {
    auto keys = keyset(sig::Scheme::mailparse);
    std::string body = R"({"event_id":"evt_1"})";
    auto headers = signed_headers(sig::Scheme::mailparse, keys, body, k_now);
    auto tampered = check_request({}, keys, headers, body + " ", k_now * 1000);
    CHECK(tampered.status == 401);
    CHECK(tampered.reason_code == "no_match");
    CHECK(tampered.event.event_id.empty());
    auto stale = check_request({}, keys, headers, body, (k_now + 301) * 1000);
    CHECK(stale.status == 401);
    CHECK(stale.reason_code == "stale_timestamp");
    auto missing = check_request({}, keys, util::HeaderList{}, body, k_now * 1000);
    CHECK(missing.status == 401);
    CHECK(missing.reason_code == "missing_header");
    util::HeaderList garbled;
    garbled.add("X-Signature", "not hex");
    garbled.add("X-Signature-Timestamp", std::to_string(k_now));
    auto malformed = check_request({}, keys, garbled, body, k_now * 1000);
    CHECK(malformed.status == 401);
    CHECK(malformed.reason_code == "malformed_header");
    CheckOptions automatic;
    automatic.scheme.reset();
    auto unknown = check_request(automatic, keys, util::HeaderList{}, body, k_now * 1000);
    CHECK(unknown.status == 401);
    CHECK(unknown.reason_code == "missing_header");
}

TEST_CASE("receive::check_request_headers refuses from the headers alone what check_request "
          "would") {
    auto keys = keyset(sig::Scheme::mailparse);
    std::string body = R"({"event_id":"evt_1"})";
    auto headers = signed_headers(sig::Scheme::mailparse, keys, body, k_now);
    CHECK_FALSE(check_request_headers({}, headers, k_now * 1000).has_value());
    // A wrong signature passes this stage: only the body can tell.
    auto other = keyset(sig::Scheme::mailparse);
    auto wrong = signed_headers(sig::Scheme::mailparse, other, "something else", k_now);
    CHECK_FALSE(check_request_headers({}, wrong, k_now * 1000).has_value());
    for (auto [h, now, code] : {std::tuple{headers, k_now + 301, "stale_timestamp"},
                                std::tuple{headers, k_now - 301, "stale_timestamp"},
                                std::tuple{util::HeaderList{}, k_now, "missing_header"}}) {
        auto early = check_request_headers({}, h, now * 1000);
        REQUIRE(early.has_value());
        auto late = check_request({}, keys, h, body, now * 1000);
        CHECK(early->status == 401);
        CHECK(early->reason_code == code);
        CHECK(early->status == late.status);
        CHECK(early->reason_code == late.reason_code);
        CHECK(early->reason == late.reason);
    }
}

TEST_CASE("receive::check_request names the key that verified the event, never the secret") {
    std::vector<keys::SecretText> texts;
    texts.push_back({keys::SecretBytes("old-secret-0123456789"), "old"});
    texts.push_back({keys::SecretBytes("new-secret-0123456789"), "new"});
    auto both = make_key_set(texts, sig::Scheme::mailparse);
    REQUIRE(both.has_value());
    std::vector<keys::SecretText> only_new{{keys::SecretBytes("new-secret-0123456789"), "new"}};
    auto signer = make_key_set(only_new, sig::Scheme::mailparse);
    REQUIRE(signer.has_value());
    std::string body = R"({"event_id":"evt_key"})";
    auto headers = signed_headers(sig::Scheme::mailparse, *signer, body, k_now);
    auto c = check_request({}, *both, headers, body, k_now * 1000);
    REQUIRE(c.status == 0);
    CHECK(c.event.verified_by == both->raw[1].fingerprint);
    CHECK(c.event.verified_by != both->raw[0].fingerprint);
    CHECK(c.event.verified_by.size() == 8);
    CHECK(c.event.verified_by.find("secret") == std::string::npos);
}

TEST_CASE("receive::check_request prefers the scheme's id header, then message_id, then a hash") {
    auto keys = keyset(std::nullopt);
    std::string body = R"({"event_id":"evt_body"})";
    auto headers = signed_headers(sig::Scheme::standard, keys, body, k_now, "msg_header");
    CheckOptions automatic;
    automatic.scheme.reset();
    auto c = check_request(automatic, keys, headers, body, k_now * 1000);
    REQUIRE(c.status == 0);
    CHECK(c.event.event_id == "msg_header");
    CHECK(c.event.scheme == "standard");

    std::string mid = R"({"message_id":"<a@b>"})";
    auto h2 = signed_headers(sig::Scheme::mailparse, keys, mid, k_now);
    CHECK(check_request({}, keys, h2, mid, k_now * 1000).event.event_id == "<a@b>");

    // Only top-level fields count; a non-string id is no id; integers are taken as text.
    std::string nested = R"({"data":{"event_id":"inner","org_id":"x"},"event_id":null,)"
                         R"("message_id":"<m@b>","org_id":42,"list":[{"event_id":"y"}]})";
    auto hn = signed_headers(sig::Scheme::mailparse, keys, nested, k_now);
    auto cn = check_request({}, keys, hn, nested, k_now * 1000);
    REQUIRE(cn.status == 0);
    CHECK(cn.event.event_id == "<m@b>");
    CHECK(cn.event.org_id == "42");

    std::string anonymous = R"({"subject":"no id"})";
    auto h3 = signed_headers(sig::Scheme::mailparse, keys, anonymous, k_now);
    auto c3 = check_request({}, keys, h3, anonymous, k_now * 1000);
    REQUIRE(c3.status == 0);
    CHECK(c3.event.event_id.starts_with("sha256:"));
    CHECK(c3.event.event_id.size() == 7 + 64);
}

TEST_CASE("receive::check_request refuses a well-signed body that is not a JSON object") {
    auto keys = keyset(sig::Scheme::mailparse);
    for (std::string body : {std::string("not json"), std::string(R"({"event_id":)"),
                             std::string("[1,2]"), std::string("\"evt\"")}) {
        CAPTURE(body);
        auto headers = signed_headers(sig::Scheme::mailparse, keys, body, k_now);
        auto c = check_request({}, keys, headers, body, k_now * 1000);
        CHECK(c.status == 400);
        CHECK(c.reason_code == "invalid_json");
        CHECK(c.event.body.empty());
    }
}

TEST_CASE("receive::trace_id_of reads W3C traceparent and refuses malformed ones") {
    CHECK(trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") ==
          "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01").empty());
    CHECK(trace_id_of("garbage").empty());
}
