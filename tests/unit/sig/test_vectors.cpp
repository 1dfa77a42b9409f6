// Published test vectors, one per scheme (see each case for its source).
#include <hookctl/util/encoding.hpp>

#include "sig_test_support.hpp"

using namespace hookctl;
using hookctl::test::keys_for;
using hookctl::test::sign_ok;
using hookctl::test::verify_ok;
using sig::Scheme;

namespace {

constexpr std::int64_t k_sw_timestamp = 1614265330;
constexpr const char* k_sw_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr const char* k_sw_body = R"({"test": 2432232314})";

} // namespace

// Standard Webhooks specification, reference test vector (HMAC).
TEST_CASE("sig::sign matches the Standard Webhooks v1 vector") {
    auto keys = keys_for(Scheme::standard, {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
    auto headers = sign_ok(Scheme::standard, keys, k_sw_body, k_sw_timestamp, k_sw_id);
    CHECK(headers.find("webhook-signature").value() ==
          "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    CHECK(headers.find("webhook-id").value() == k_sw_id);
    CHECK(headers.find("webhook-timestamp").value() == "1614265330");
    CHECK(verify_ok(Scheme::standard, headers, keys, k_sw_body, k_sw_timestamp).ok());
}

// Standard Webhooks specification, asymmetric (ed25519) test vector.
TEST_CASE("sig::sign matches the Standard Webhooks v1a ed25519 vector") {
    auto signer = keys_for(Scheme::standard, {"whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="});
    REQUIRE(signer[0].kind == keys::KeyKind::ed25519_private);
    CHECK(util::base64_encode(signer[0].public_key) ==
          "ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=");
    auto headers = sign_ok(Scheme::standard, signer, k_sw_body, k_sw_timestamp, k_sw_id);
    CHECK(headers.find("webhook-signature").value() ==
          "v1a,tQ9V2XOqn7jL/"
          "DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==");

    auto verifier =
        keys_for(Scheme::standard, {"whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="});
    auto verdict = verify_ok(Scheme::standard, headers, verifier, k_sw_body, k_sw_timestamp);
    CHECK(verdict.ok());
    // Signer and verifier name the key pair by the same fingerprint.
    CHECK(verdict.fingerprint.value() == signer[0].fingerprint);

    auto tampered =
        verify_ok(Scheme::standard, headers, verifier, R"({"test": 2432232315})", k_sw_timestamp);
    CHECK(tampered.outcome == sig::Outcome::no_match);
}

TEST_CASE("sig::verify accepts the Svix form of the Standard Webhooks vector") {
    auto keys = keys_for(Scheme::svix, {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
    util::HeaderList headers;
    headers.add("svix-id", k_sw_id);
    headers.add("svix-timestamp", "1614265330");
    headers.add("svix-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    CHECK(verify_ok(Scheme::svix, headers, keys, k_sw_body, k_sw_timestamp).ok());
}

// GitHub documentation, "Validating webhook deliveries", testing the signature.
TEST_CASE("sig::sign matches GitHub's documented X-Hub-Signature-256") {
    auto keys = keys_for(Scheme::github, {"It's a Secret to Everybody"});
    auto headers = sign_ok(Scheme::github, keys, "Hello, World!", 0);
    CHECK(headers.find("X-Hub-Signature-256").value() ==
          "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
    CHECK(verify_ok(Scheme::github, headers, keys, "Hello, World!", 1'900'000'000).ok());
}

// Slack documentation, "Verifying requests from Slack", the worked example.
TEST_CASE("sig::verify accepts Slack's documented example request") {
    std::string body =
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
        "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
        "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%"
        "2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
        "803a0bc887a14d10d2c447fce8b6703c";
    auto keys = keys_for(Scheme::slack, {"8f742231b10e8888abcd99yyyzzz85a5"});
    auto headers = sign_ok(Scheme::slack, keys, body, 1531420618);
    CHECK(headers.find("X-Slack-Signature").value() ==
          "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503");
    CHECK(headers.find("X-Slack-Request-Timestamp").value() == "1531420618");
    CHECK(verify_ok(Scheme::slack, headers, keys, body, 1531420618 + 60).ok());
}

// Stripe documents the scheme (t=, v1= hex HMAC of "{t}.{body}", the whole whsec_ string as
// the key) but publishes no vector; this one was computed independently with
// `printf '1492774577.<body>' | openssl dgst -sha256 -hmac whsec_test_secret`.
TEST_CASE("sig::sign matches a Stripe vector derived with openssl dgst") {
    std::string body = "{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}";
    auto keys = keys_for(Scheme::stripe, {"whsec_test_secret"});
    auto headers = sign_ok(Scheme::stripe, keys, body, 1492774577);
    CHECK(headers.find("Stripe-Signature").value() ==
          "t=1492774577,v1=c2f890decbc5ede7c5060bb9a6d31e0626a4342bacb9aeae2adb1bcea72f9812");
    // Stripe adds a v0= test-mode signature; readers skip it.
    util::HeaderList with_v0;
    with_v0.add("Stripe-Signature",
                "t=1492774577,v1=c2f890decbc5ede7c5060bb9a6d31e0626a4342bacb9aeae2adb1bcea72f9812,"
                "v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39");
    CHECK(verify_ok(Scheme::stripe, with_v0, keys, body, 1492774577).ok());
}

// Shopify documents base64(HMAC-SHA256(raw body)); derived with
// `printf '<body>' | openssl dgst -sha256 -hmac hush -binary | base64`.
TEST_CASE("sig::sign matches a Shopify vector derived with openssl dgst") {
    std::string body = R"({"id":820982911946154508,"email":"jon@doe.ca"})";
    auto keys = keys_for(Scheme::shopify, {"hush"});
    auto headers = sign_ok(Scheme::shopify, keys, body, 0);
    CHECK(headers.find("X-Shopify-Hmac-Sha256").value() ==
          "fp5HwmAHEVGQQwJU1KRpk57Ts2YHF6/TLOCczCtB5bs=");
}

// DESIGN.md §3 mailparse: hex HMAC of "{timestamp}.{body}"; derived with openssl dgst.
TEST_CASE("sig::sign matches a mailparse vector derived with openssl dgst") {
    std::string body = R"({"event":"email.received"})";
    auto keys = keys_for(Scheme::mailparse, {"mailparse-test-secret"});
    auto headers = sign_ok(Scheme::mailparse, keys, body, 1614265330);
    CHECK(headers.find("X-Signature").value() ==
          "7573a0e14828f4e25463bf8a95d37ade828b44f806ed94b13d352ea636145caa");
    CHECK(headers.find("X-Signature-Timestamp").value() == "1614265330");
}
