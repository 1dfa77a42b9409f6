#include <hookctl/sig/crypto.hpp>
#include <hookctl/sig/explain.hpp>
#include <hookctl/util/encoding.hpp>

#include "sig_test_support.hpp"

using namespace hookctl;
using sig::Cause;
using sig::Scheme;

namespace {

constexpr std::int64_t k_now = 1'764'160'000;

keys::Key raw_key(std::string bytes) {
    keys::Key key;
    key.kind = keys::KeyKind::hmac;
    key.bytes = keys::SecretBytes(std::move(bytes));
    return key;
}

// What the receiver holds: secret texts as loaded.
std::vector<keys::SecretText> held(std::vector<std::string> texts) {
    std::vector<keys::SecretText> out;
    for (auto& t : texts) {
        out.push_back({keys::SecretBytes(t), "env HOOK_SECRET"});
    }
    return out;
}

sig::Explanation explain_ok(Scheme scheme, const util::HeaderList& headers,
                            const std::vector<keys::SecretText>& secrets, std::string_view body,
                            std::vector<sig::PastKey> past = {}, std::int64_t now = k_now) {
    auto e = sig::explain({scheme, std::chrono::seconds(300), now}, headers, secrets, past, body);
    REQUIRE(e.has_value());
    return *e;
}

// The candidates that matched, by cause.
std::vector<Cause> matched(const sig::Explanation& e) {
    std::vector<Cause> out;
    for (const auto& t : e.evidence) {
        if (t.matched) {
            out.push_back(t.cause);
        }
    }
    return out;
}

// The explanation says nothing of `secret` itself, in text or JSON.
void check_secret_not_shown(const sig::Explanation& e, std::string_view secret) {
    std::string text = sig::to_text(e) + sig::to_json(e).dump();
    CHECK(text.find(secret) == std::string::npos);
    auto first = secret.find_first_not_of(" \t\r\n");
    auto last = secret.find_last_not_of(" \t\r\n");
    auto trimmed = secret.substr(first, last - first + 1);
    if (trimmed.size() >= 6) {
        CHECK(text.find(trimmed) == std::string::npos);
    }
}

const std::string k_body = R"({"event_id":"evt_1","org_id":"acme","subject":"Invoice 42"})";

} // namespace

TEST_CASE("sig::explain says valid, with no candidates, when the signature matches") {
    auto keys = test::keys_for(Scheme::mailparse, {"right-secret"});
    auto headers = test::sign_ok(Scheme::mailparse, keys, k_body, k_now);
    auto e = explain_ok(Scheme::mailparse, headers, held({"right-secret"}), k_body);
    CHECK(e.cause == Cause::valid);
    CHECK(e.exit_code == ExitCode::ok);
    CHECK(e.evidence.empty());
    CHECK(sig::to_text(e).starts_with("valid"));
    CHECK(sig::to_json(e)["evidence"].empty());
}

TEST_CASE("sig::explain finds whitespace around the secret, either side") {
    // The receiver's secret file kept a space and a newline; the sender signs with the bare one.
    auto headers = test::sign_ok(Scheme::mailparse, {raw_key("s3cret-value-01")}, k_body, k_now);
    auto e = explain_ok(Scheme::mailparse, headers, held({" s3cret-value-01 \n"}), k_body);
    CHECK(e.cause == Cause::secret_whitespace);
    CHECK(e.exit_code == ExitCode::check_failed);
    CHECK(matched(e) == std::vector{Cause::secret_whitespace});
    check_secret_not_shown(e, " s3cret-value-01 \n");
    // The sender signs with the file's newline; the receiver dropped it.
    headers = test::sign_ok(Scheme::mailparse, {raw_key("s3cret-value-01\n")}, k_body, k_now);
    e = explain_ok(Scheme::mailparse, headers, held({"s3cret-value-01"}), k_body);
    CHECK(e.cause == Cause::secret_whitespace);
    CHECK(e.finding.find("trailing newline") != std::string::npos);
}

TEST_CASE("sig::explain finds a whsec_ prefix kept or dropped") {
    const std::string bare = util::base64_encode("prefix-secret-bytes-0123456789ab");
    auto headers = test::sign_ok(Scheme::stripe, {raw_key("whsec_" + bare)}, k_body, k_now);
    auto e = explain_ok(Scheme::stripe, headers, held({bare}), k_body);
    CHECK(e.cause == Cause::secret_prefix);
    CHECK(matched(e) == std::vector{Cause::secret_prefix});
    check_secret_not_shown(e, bare);

    headers = test::sign_ok(Scheme::mailparse, {raw_key(bare)}, k_body, k_now);
    e = explain_ok(Scheme::mailparse, headers, held({"whsec_" + bare}), k_body);
    CHECK(e.cause == Cause::secret_prefix);
    CHECK(e.finding.find("without its whsec_ prefix") != std::string::npos);
}

TEST_CASE("sig::explain finds a secret decoded the wrong way") {
    // Svix's most common mistake: the base64 text used as the key instead of its bytes.
    const std::string b64 = util::base64_encode("standard-webhooks-key-0123456789");
    auto headers = test::sign_ok(Scheme::standard, {raw_key(b64)}, k_body, k_now, "msg_1");
    auto e = explain_ok(Scheme::standard, headers, held({"whsec_" + b64}), k_body);
    CHECK(e.cause == Cause::secret_encoding);
    CHECK(matched(e) == std::vector{Cause::secret_encoding});
    check_secret_not_shown(e, b64);
    // A hex secret the sender decodes to bytes while the receiver uses its text.
    const std::string hex = util::hex_encode("hex-secret-bytes-0123456789abcde");
    headers = test::sign_ok(Scheme::github, {raw_key(*util::hex_decode(hex))}, k_body, k_now);
    e = explain_ok(Scheme::github, headers, held({hex}), k_body);
    CHECK(e.cause == Cause::secret_encoding);
    CHECK(e.finding.find("hex-decoded") != std::string::npos);
}

TEST_CASE("sig::explain finds a body re-serialised: key order, spacing, slashes, unicode") {
    auto key = raw_key("body-secret");
    struct Case {
        std::string signed_body;
        std::string received_body;
        Cause cause;
    };
    std::vector<Case> cases = {
        // A Go sender marshals a map: sorted keys; the receiver has them in arrival order.
        {R"({"a":"x","b":1,"c":[1,2]})", R"({"c":[1,2],"b":1,"a":"x"})", Cause::body_key_order},
        // Signed compact, checked pretty-printed (copied from a log).
        {R"({"a":1,"b":[1,2]})", "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}",
         Cause::body_spacing},
        // Signed with Python's separators, checked compact.
        {R"({"a": 1, "b": "two"})", R"({"a":1,"b":"two"})", Cause::body_spacing},
        // PHP escapes slashes.
        {R"({"url":"https:\/\/a.example\/x"})", R"({"url":"https://a.example/x"})",
         Cause::body_escaped_slashes},
        {R"({"url":"https://a.example/x"})", R"({"url":"https:\/\/a.example\/x"})",
         Cause::body_escaped_slashes},
        // Python's ensure_ascii.
        {R"({"name":"Jos\u00e9"})", "{\"name\":\"Jos\xc3\xa9\"}", Cause::body_unicode_escapes},
    };
    for (const auto& c : cases) {
        CAPTURE(c.received_body);
        auto headers = test::sign_ok(Scheme::mailparse, {key}, c.signed_body, k_now);
        auto e = explain_ok(Scheme::mailparse, headers, held({"body-secret"}), c.received_body);
        CHECK(sig::to_string(e.cause) == sig::to_string(c.cause));
        CHECK(matched(e).front() == c.cause);
        CHECK(e.advice.find("raw request body") != std::string::npos);
    }
}

TEST_CASE("sig::explain finds a trailing newline, CRLF line endings and a form-encoded body") {
    auto key = raw_key("bytes-secret");
    auto check = [&](const std::string& signed_body, const std::string& received, Cause cause) {
        CAPTURE(received);
        auto headers = test::sign_ok(Scheme::slack, {key}, signed_body, k_now);
        auto e = explain_ok(Scheme::slack, headers, held({"bytes-secret"}), received);
        CHECK(sig::to_string(e.cause) == sig::to_string(cause));
        CHECK(matched(e) == std::vector{cause});
    };
    check(k_body, k_body + "\n", Cause::body_trailing_newline);
    check(k_body + "\n", k_body, Cause::body_trailing_newline);
    check("{\r\n  \"a\": 1,\r\n  \"b\": 2\r\n}", "{\n  \"a\": 1,\n  \"b\": 2\n}",
          Cause::body_line_endings);
    check("payload=%7B%22event_id%22%3A%22evt_1%22%2C%22n%22%3A1%7D",
          R"({"event_id":"evt_1","n":1})", Cause::body_form_encoded);
    check(R"({"event_id":"evt_1","n":1})",
          "payload=%7B%22event_id%22%3A%22evt_1%22%2C%22n%22%3A1%7D", Cause::body_form_encoded);
}

TEST_CASE("sig::explain finds a timestamp in milliseconds") {
    auto key = raw_key("ms-secret");
    std::int64_t ms = k_now * 1000 + 123;
    // Sent and signed in milliseconds: stale as seconds.
    auto headers = test::sign_ok(Scheme::mailparse, {key}, k_body, ms);
    auto e = explain_ok(Scheme::mailparse, headers, held({"ms-secret"}), k_body);
    CHECK(e.verdict.outcome == sig::Outcome::stale_timestamp);
    CHECK(e.cause == Cause::timestamp_milliseconds);
    CHECK(e.exit_code == ExitCode::check_failed);
    CHECK(matched(e) == std::vector{Cause::timestamp_milliseconds});
    // Signed in milliseconds, sent in seconds: no match at the header's timestamp.
    headers = test::sign_ok(Scheme::mailparse, {key}, k_body, ms);
    util::HeaderList seconds;
    for (const auto& [name, value] : headers.entries()) {
        seconds.add(name, name == "X-Signature-Timestamp" ? std::to_string(k_now) : value);
    }
    e = explain_ok(Scheme::mailparse, seconds, held({"ms-secret"}), k_body);
    CHECK(e.verdict.outcome == sig::Outcome::no_match);
    CHECK(e.cause == Cause::timestamp_milliseconds);
}

TEST_CASE("sig::explain measures a clock skew beyond the tolerance") {
    auto key = raw_key("skew-secret");
    auto headers = test::sign_ok(Scheme::stripe, {key}, k_body, k_now - 1000);
    auto e = explain_ok(Scheme::stripe, headers, held({"skew-secret"}), k_body);
    CHECK(e.cause == Cause::clock_skew);
    CHECK(e.finding.find("1000 s in the past: 700 s beyond the 300 s tolerance") !=
          std::string::npos);
    CHECK(e.finding.find("the signature itself matches") != std::string::npos);
    CHECK_FALSE(e.also.has_value());
    headers = test::sign_ok(Scheme::stripe, {key}, k_body, k_now + 420);
    e = explain_ok(Scheme::stripe, headers, held({"skew-secret"}), k_body);
    CHECK(e.finding.find("420 s in the future: 120 s beyond") != std::string::npos);
    // Stale and a second mistake: both are named.
    headers = test::sign_ok(Scheme::stripe, {key}, k_body, k_now - 1000);
    e = explain_ok(Scheme::stripe, headers, held({"skew-secret"}), k_body + "\n");
    CHECK(e.cause == Cause::clock_skew);
    REQUIRE(e.also.has_value());
    CHECK(*e.also == Cause::body_trailing_newline);
}

TEST_CASE("sig::explain finds the wrong scheme for the headers") {
    const std::string secret = "whsec_" + util::base64_encode("svix-secret-0123456789abcdef0123");
    auto keys = test::keys_for(Scheme::svix, {secret});
    auto headers = test::sign_ok(Scheme::svix, keys, k_body, k_now, "msg_2");
    // svix-* headers checked as standard (webhook-*): a missing header, explained.
    auto e = explain_ok(Scheme::standard, headers, held({secret}), k_body);
    CHECK(e.verdict.outcome == sig::Outcome::missing_header);
    CHECK(e.cause == Cause::wrong_scheme);
    CHECK(e.advice.find("--scheme svix") != std::string::npos);
    check_secret_not_shown(e, secret);
    // A GitHub-style signature (the body alone) carried in mailparse's headers.
    auto github = test::sign_ok(Scheme::github, {raw_key("plain-secret")}, k_body, k_now);
    util::HeaderList mailparse;
    mailparse.add("X-Signature",
                  std::string(github.find("X-Hub-Signature-256")->substr(7))); // after sha256=
    mailparse.add("X-Signature-Timestamp", std::to_string(k_now));
    e = explain_ok(Scheme::mailparse, mailparse, held({"plain-secret"}), k_body);
    CHECK(e.cause == Cause::wrong_scheme);
    CHECK(e.finding.find("github and shopify") != std::string::npos);
    CHECK(matched(e) == std::vector{Cause::wrong_scheme});
}

TEST_CASE("sig::explain finds a keyring secret whose window ended") {
    auto headers = test::sign_ok(Scheme::mailparse, {raw_key("old-secret")}, k_body, k_now);
    sig::PastKey old;
    old.secret = {keys::SecretBytes(std::string("old-secret")), "keyring ring.json (k1)"};
    old.id = "k1";
    old.fingerprint = keys::fingerprint("old-secret");
    old.state = "verify-only";
    old.not_after = k_now - 3600;
    auto e = explain_ok(Scheme::mailparse, headers, held({"new-secret"}), k_body, {old});
    CHECK(e.cause == Cause::key_outside_window);
    CHECK(e.finding.find("k1") != std::string::npos);
    CHECK(e.finding.find("window ended") != std::string::npos);
    check_secret_not_shown(e, "old-secret");
}

TEST_CASE("sig::explain says when nothing explains it, and lists what it tried") {
    auto headers = test::sign_ok(Scheme::mailparse, {raw_key("their-secret")}, k_body, k_now);
    auto e = explain_ok(Scheme::mailparse, headers, held({"our-secret"}), k_body);
    CHECK(e.cause == Cause::unexplained);
    CHECK(e.exit_code == ExitCode::check_failed);
    CHECK(matched(e).empty());
    CHECK(e.evidence.size() > 10);
    auto text = sig::to_text(e);
    CHECK(text.starts_with("finding: no usual mistake"));
    CHECK(text.find("evidence:") > text.find("finding:"));
    check_secret_not_shown(e, "our-secret");
}

TEST_CASE("sig::explain keeps verify's exit code for an unreadable header or secret") {
    util::HeaderList headers;
    headers.add("X-Signature", "not-hex");
    headers.add("X-Signature-Timestamp", std::to_string(k_now));
    auto e = explain_ok(Scheme::mailparse, headers, held({"a-secret"}), k_body);
    CHECK(e.cause == Cause::malformed_header);
    CHECK(e.exit_code == ExitCode::usage);
    // A standard secret with a stray space cannot be decoded: exit 2, and the space is found.
    const std::string secret = "whsec_" + util::base64_encode("spacey-secret-0123456789abcdef01");
    auto keys = test::keys_for(Scheme::standard, {secret});
    auto signed_headers = test::sign_ok(Scheme::standard, keys, k_body, k_now, "msg_3");
    e = explain_ok(Scheme::standard, signed_headers, held({" " + secret}), k_body);
    CHECK(e.exit_code == ExitCode::usage);
    CHECK(e.cause == Cause::secret_whitespace);
    CHECK_FALSE(e.secret_error.empty());
    check_secret_not_shown(e, secret);
}
