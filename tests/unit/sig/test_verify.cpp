#include <hookctl/util/encoding.hpp>

#include "sig_test_support.hpp"

using namespace hookctl;
using hookctl::test::keys_for;
using hookctl::test::sign_ok;
using hookctl::test::verify_ok;
using sig::Outcome;
using sig::Scheme;

namespace {

constexpr std::int64_t k_ts = 1'700'000'000;

std::string secret_for(Scheme scheme, int n) {
    std::string raw = "secret-number-" + std::to_string(n);
    return sig::info(scheme).encoding == keys::SecretEncoding::standard_webhooks
               ? "whsec_" + util::base64_encode(raw)
               : raw;
}

} // namespace

TEST_CASE("sig round trip: every scheme signs and verifies with one and two secrets") {
    for (const auto& scheme : sig::all_schemes()) {
        CAPTURE(scheme.name);
        std::string body = "{\"n\":1}";
        auto one = keys_for(scheme.scheme, {secret_for(scheme.scheme, 1)});
        auto two =
            keys_for(scheme.scheme, {secret_for(scheme.scheme, 1), secret_for(scheme.scheme, 2)});
        // One secret signs; a verifier holding either or both accepts.
        auto headers = sign_ok(scheme.scheme, one, body, k_ts);
        CHECK(verify_ok(scheme.scheme, headers, one, body, k_ts).ok());
        auto v = verify_ok(scheme.scheme, headers, two, body, k_ts);
        CHECK(v.ok());
        CHECK(v.fingerprint.value() == one[0].fingerprint);

        if (scheme.multi_signature) {
            // Two secrets sign (rotation); a verifier holding only the second accepts.
            auto dual = sign_ok(scheme.scheme, two, body, k_ts);
            auto second_only = keys_for(scheme.scheme, {secret_for(scheme.scheme, 2)});
            auto v2 = verify_ok(scheme.scheme, dual, second_only, body, k_ts);
            CHECK(v2.ok());
            CHECK(v2.signatures == 2);
        } else {
            util::MemorySource source(body);
            auto refused = sig::sign({scheme.scheme, k_ts, "msg_x"}, two, source);
            REQUIRE_FALSE(refused.has_value());
            CHECK(refused.error().code == ExitCode::usage);
        }

        // A different secret does not verify.
        auto other = keys_for(scheme.scheme, {secret_for(scheme.scheme, 3)});
        CHECK(verify_ok(scheme.scheme, headers, other, body, k_ts).outcome == Outcome::no_match);
        // A changed body does not verify.
        CHECK(verify_ok(scheme.scheme, headers, one, body + " ", k_ts).outcome ==
              Outcome::no_match);
    }
}

TEST_CASE("sig::verify names a missing header") {
    auto keys = keys_for(Scheme::standard, {secret_for(Scheme::standard, 1)});
    auto headers = sign_ok(Scheme::standard, keys, "x", k_ts);
    util::HeaderList without_ts;
    for (const auto& [n, v] : headers.entries()) {
        if (n != "webhook-timestamp") {
            without_ts.add(n, v);
        }
    }
    auto v = verify_ok(Scheme::standard, without_ts, keys, "x", k_ts);
    CHECK(v.outcome == Outcome::missing_header);
    CHECK(v.reason == "missing header webhook-timestamp");
}

TEST_CASE("sig::verify reports a malformed signature header") {
    auto keys = keys_for(Scheme::mailparse, {"s"});
    for (const char* garbage :
         {"zz", "abc", "", "not-hex-at-all-but-64-chars-long-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}) {
        util::HeaderList headers;
        headers.add("X-Signature", garbage);
        headers.add("X-Signature-Timestamp", std::to_string(k_ts));
        auto v = verify_ok(Scheme::mailparse, headers, keys, "x", k_ts);
        CHECK(v.outcome == Outcome::malformed_header);
        CHECK(v.reason.starts_with("malformed signature header X-Signature"));
    }
    auto stripe_keys = keys_for(Scheme::stripe, {"s"});
    for (const char* garbage : {"v1=abc", "t=1700000000", "garbage", "t=1700000000,v1=xyz"}) {
        util::HeaderList stripe;
        stripe.add("Stripe-Signature", garbage);
        CHECK(verify_ok(Scheme::stripe, stripe, stripe_keys, "x", k_ts).outcome ==
              Outcome::malformed_header);
    }
    auto sw_keys = keys_for(Scheme::standard, {secret_for(Scheme::standard, 1)});
    for (const char* garbage : {"v1", "v1,!!!!", "v2,abcd", "v1,aGk="}) {
        util::HeaderList sw;
        sw.add("webhook-id", "msg_1");
        sw.add("webhook-timestamp", std::to_string(k_ts));
        sw.add("webhook-signature", garbage);
        CHECK(verify_ok(Scheme::standard, sw, sw_keys, "x", k_ts).outcome ==
              Outcome::malformed_header);
    }
}

TEST_CASE("sig::verify reports a non-numeric or overflowing timestamp as malformed") {
    auto keys = keys_for(Scheme::mailparse, {"s"});
    auto headers = sign_ok(Scheme::mailparse, keys, "x", k_ts);
    for (const char* ts : {"soon", "99999999999999999999999", "1.5"}) {
        util::HeaderList h;
        h.add("X-Signature", std::string(*headers.find("X-Signature")));
        h.add("X-Signature-Timestamp", ts);
        CHECK(verify_ok(Scheme::mailparse, h, keys, "x", k_ts).outcome ==
              Outcome::malformed_header);
    }
}

TEST_CASE("sig::verify tolerance: 300 s accepted, 301 s rejected, in both directions") {
    auto keys = keys_for(Scheme::stripe, {"s"});
    auto headers = sign_ok(Scheme::stripe, keys, "x", k_ts);
    CHECK(verify_ok(Scheme::stripe, headers, keys, "x", k_ts + 300).ok());
    CHECK(verify_ok(Scheme::stripe, headers, keys, "x", k_ts - 300).ok());
    auto late = verify_ok(Scheme::stripe, headers, keys, "x", k_ts + 301);
    CHECK(late.outcome == Outcome::stale_timestamp);
    CHECK(late.reason ==
          "timestamp outside tolerance: 301 s (5m1s) in the past, beyond the 300 s tolerance");
    auto early = verify_ok(Scheme::stripe, headers, keys, "x", k_ts - 301);
    CHECK(early.outcome == Outcome::stale_timestamp);
    CHECK(early.reason == "timestamp outside tolerance: 301 s (5m1s) in the future, beyond the "
                          "300 s tolerance (is the sender's clock ahead?)");
    // By default a stale request's signature is not checked (a receiver saves the HMAC).
    CHECK_FALSE(late.signature_matches.has_value());
    CHECK_FALSE(late.fingerprint.has_value());
    // A far-off timestamp does not overflow the skew.
    util::HeaderList far;
    far.add("Stripe-Signature", "t=-9223372036854775808,v1=" + std::string(64, 'a'));
    CHECK(verify_ok(Scheme::stripe, far, keys, "x", INT64_MAX).outcome == Outcome::stale_timestamp);
}

TEST_CASE("sig::verify with match_when_stale tells a genuine old request from a forgery") {
    auto keys = keys_for(Scheme::mailparse, {"s"});
    auto headers = sign_ok(Scheme::mailparse, keys, "x", k_ts);
    auto check = [&](const std::vector<keys::Key>& with, std::int64_t now) {
        util::MemorySource source("x");
        sig::VerifyRequest request{Scheme::mailparse, std::chrono::seconds(300), now};
        request.match_when_stale = true;
        auto v = sig::verify(request, headers, with, source);
        REQUIRE(v.has_value());
        return *v;
    };
    auto old = check(keys, k_ts + 7380);
    CHECK(old.outcome == Outcome::stale_timestamp);
    CHECK_FALSE(old.ok());
    CHECK(old.signature_matches == true);
    CHECK(old.fingerprint == keys[0].fingerprint);
    CHECK(old.reason == "timestamp outside tolerance: 7380 s (2h3m) in the past, beyond the 300 s "
                        "tolerance; the signature matches at that timestamp (secret " +
                            keys[0].fingerprint + ")");
    auto forged = check(keys_for(Scheme::mailparse, {"other"}), k_ts - 400);
    CHECK(forged.outcome == Outcome::stale_timestamp);
    CHECK(forged.signature_matches == false);
    CHECK_FALSE(forged.fingerprint.has_value());
    CHECK(forged.reason == "timestamp outside tolerance: 400 s (6m40s) in the future, beyond the "
                           "300 s tolerance (is the sender's clock ahead?); no signature matches "
                           "either");
    // Inside the tolerance nothing changes: valid, and signature_matches says so.
    auto fresh = check(keys, k_ts);
    CHECK(fresh.ok());
    CHECK(fresh.signature_matches == true);
}

TEST_CASE("sig::verify says how many signatures and secrets it tried") {
    auto signer = keys_for(Scheme::mailparse, {"a", "b"});
    auto headers = sign_ok(Scheme::mailparse, signer, "x", k_ts);
    auto v = verify_ok(Scheme::mailparse, headers, keys_for(Scheme::mailparse, {"c"}), "x", k_ts);
    CHECK(v.outcome == Outcome::no_match);
    CHECK(v.reason == "no signature matched (2 signatures, 1 secret)");
}

TEST_CASE("sig::detect_scheme picks the scheme from the headers present") {
    for (const auto& scheme : sig::all_schemes()) {
        util::HeaderList h;
        h.add(std::string(scheme.signature_header), "x");
        CHECK(sig::detect_scheme(h) == scheme.scheme);
    }
    util::HeaderList none;
    none.add("Content-Type", "application/json");
    CHECK_FALSE(sig::detect_scheme(none).has_value());
}

TEST_CASE("sig signs and verifies binary bodies byte for byte") {
    std::string body("\0\xff\xfe{\x80\x00\n", 8);
    for (const auto& scheme : sig::all_schemes()) {
        auto keys = keys_for(scheme.scheme, {secret_for(scheme.scheme, 1)});
        auto headers = sign_ok(scheme.scheme, keys, body, k_ts);
        CHECK(verify_ok(scheme.scheme, headers, keys, body, k_ts).ok());
        std::string truncated = body.substr(0, 7);
        CHECK_FALSE(verify_ok(scheme.scheme, headers, keys, truncated, k_ts).ok());
    }
}

namespace {

// `signed_headers` with its signature field replaced by one field per signer in `signers`, in
// that order (every other header kept).
util::HeaderList repeat_signature_field(Scheme scheme,
                                        const std::vector<std::vector<keys::Key>>& signers,
                                        std::string_view body) {
    const auto& info = sig::info(scheme);
    util::HeaderList out;
    bool first = true;
    for (const auto& signer : signers) {
        auto headers = sign_ok(scheme, signer, body, k_ts);
        for (const auto& [name, value] : headers.entries()) {
            bool is_signature = util::iequals(name, info.signature_header);
            if (is_signature || first) {
                out.add(name, value);
            }
        }
        first = false;
    }
    return out;
}

} // namespace

TEST_CASE("sig::verify reads a repeated signature field as one list in multi-signature schemes") {
    for (const auto& scheme : sig::all_schemes()) {
        CAPTURE(scheme.name);
        auto wrong = keys_for(scheme.scheme, {secret_for(scheme.scheme, 7)});
        auto right = keys_for(scheme.scheme, {secret_for(scheme.scheme, 8)});
        // The matching signature is in the second field only.
        auto headers = repeat_signature_field(scheme.scheme, {wrong, right}, "{}");
        auto v = verify_ok(scheme.scheme, headers, right, "{}", k_ts);
        if (scheme.multi_signature) {
            CHECK(v.ok());
            CHECK(v.signatures == 2);
            CHECK(v.fingerprint.value() == right[0].fingerprint);
            // Either order, and neither field alone decides.
            auto reversed = repeat_signature_field(scheme.scheme, {right, wrong}, "{}");
            CHECK(verify_ok(scheme.scheme, reversed, right, "{}", k_ts).ok());
            auto both_wrong = repeat_signature_field(scheme.scheme, {wrong, wrong}, "{}");
            CHECK(verify_ok(scheme.scheme, both_wrong, right, "{}", k_ts).outcome ==
                  Outcome::no_match);
        } else {
            CHECK(v.outcome == Outcome::malformed_header);
            CHECK(v.reason.find("appears 2 times") != std::string::npos);
        }
    }
}

TEST_CASE("sig::verify refuses repeated timestamp or id fields that disagree") {
    auto keys = keys_for(Scheme::mailparse, {"s"});
    auto headers = sign_ok(Scheme::mailparse, keys, "{}", k_ts);
    auto same = headers;
    same.add("X-Signature-Timestamp", std::to_string(k_ts));
    CHECK(verify_ok(Scheme::mailparse, same, keys, "{}", k_ts).ok());
    auto differ = headers;
    differ.add("X-Signature-Timestamp", std::to_string(k_ts + 1));
    auto v = verify_ok(Scheme::mailparse, differ, keys, "{}", k_ts);
    CHECK(v.outcome == Outcome::malformed_header);
    CHECK(v.reason ==
          "malformed header X-Signature-Timestamp: it appears several times with different values");
    // Stripe: two fields with different t= values.
    auto stripe_keys = keys_for(Scheme::stripe, {"s"});
    util::HeaderList stripe;
    stripe.add("Stripe-Signature", "t=1700000000,v1=" + std::string(64, 'a'));
    stripe.add("Stripe-Signature", "t=1700000001,v1=" + std::string(64, 'b'));
    auto sv = verify_ok(Scheme::stripe, stripe, stripe_keys, "{}", k_ts);
    CHECK(sv.outcome == Outcome::malformed_header);
    CHECK(sv.reason.find("two different t= timestamps") != std::string::npos);
    // Standard Webhooks: two different webhook-id values.
    auto sw = keys_for(Scheme::standard, {secret_for(Scheme::standard, 1)});
    auto sw_headers = sign_ok(Scheme::standard, sw, "{}", k_ts);
    sw_headers.add("webhook-id", "msg_other");
    CHECK(verify_ok(Scheme::standard, sw_headers, sw, "{}", k_ts).outcome ==
          Outcome::malformed_header);
}

TEST_CASE("sig::check_headers judges what the headers alone can tell, without the body") {
    auto keys = keys_for(Scheme::mailparse, {"s"});
    auto headers = sign_ok(Scheme::mailparse, keys, "{}", k_ts);
    CHECK_FALSE(sig::check_headers({Scheme::mailparse, std::chrono::seconds(300), k_ts}, headers)
                    .has_value());
    auto stale =
        sig::check_headers({Scheme::mailparse, std::chrono::seconds(300), k_ts + 301}, headers);
    REQUIRE(stale.has_value());
    CHECK(stale->outcome == Outcome::stale_timestamp);
    util::HeaderList none;
    auto missing = sig::check_headers({Scheme::mailparse, std::chrono::seconds(300), k_ts}, none);
    REQUIRE(missing.has_value());
    CHECK(missing->outcome == Outcome::missing_header);
    util::HeaderList garbled;
    garbled.add("X-Signature", "zz");
    garbled.add("X-Signature-Timestamp", std::to_string(k_ts));
    auto malformed =
        sig::check_headers({Scheme::mailparse, std::chrono::seconds(300), k_ts}, garbled);
    REQUIRE(malformed.has_value());
    CHECK(malformed->outcome == Outcome::malformed_header);
}
