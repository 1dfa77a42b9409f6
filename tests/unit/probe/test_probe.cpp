#include <algorithm>
#include <map>

#include <doctest/doctest.h>

#include <hookctl/probe/probe.hpp>
#include <hookctl/sig/verify.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>

using namespace hookctl;

namespace {

constexpr std::int64_t k_now = 1'764'160'000;

keys::Key test_key(sig::Scheme scheme) {
    std::string raw = "probe-unit-secret";
    if (sig::info(scheme).encoding == keys::SecretEncoding::standard_webhooks) {
        raw = "whsec_" + util::base64_encode(raw);
    }
    keys::SecretText text{keys::SecretBytes(raw), "test"};
    auto key = keys::decode_key(text, sig::info(scheme).encoding);
    REQUIRE(key);
    return *key;
}

// A receiver in memory that verifies with hookctl's own sig::verify, with faults to switch on.
class FakeReceiver final : public probe::Transport {
public:
    explicit FakeReceiver(sig::Scheme scheme)
        : m_scheme(scheme)
        , m_key(test_key(scheme)) {}

    bool any_signature = false;
    bool ignore_timestamps = false;
    bool crash_on_malformed = false;
    bool hang_on_large = false;
    bool refused = false;
    std::chrono::microseconds latency{1000};
    std::size_t limit = 64 * 1024; // as options_for's max_body
    std::vector<std::string> bodies;
    std::vector<util::HeaderList> headers_seen;

    probe::Exchange post(const std::string&, const util::HeaderList& headers,
                         const std::string& body, std::chrono::milliseconds) override {
        probe::Exchange out;
        out.latency = latency;
        if (refused) {
            out.error = "connection refused";
            out.unreachable = true;
            return out;
        }
        bodies.push_back(body);
        headers_seen.push_back(headers);
        if (body.size() > limit) {
            if (hang_on_large) {
                out.timed_out = true;
                out.error = "timed out";
                return out;
            }
            out.status = 413;
            return out;
        }
        if (!any_signature) {
            sig::VerifyRequest request{m_scheme,
                                       ignore_timestamps ? std::chrono::seconds(1'000'000)
                                                         : std::chrono::seconds(300),
                                       k_now};
            util::MemorySource source(body);
            auto verdict = sig::verify(request, headers, {m_key}, source);
            REQUIRE(verdict);
            if (!verdict->ok()) {
                out.status = 401;
                out.body = std::string(sig::to_string(verdict->outcome));
                return out;
            }
        }
        if (!nlohmann::json::accept(body)) {
            out.status = crash_on_malformed ? 500 : 400;
            return out;
        }
        auto key = headers.find("Idempotency-Key");
        REQUIRE(key);
        bool again = !m_seen.emplace(std::string(*key), true).second;
        out.status = again ? 200 : 202;
        out.body = again ? "{\"status\":\"duplicate\"}" : "{\"status\":\"accepted\"}";
        return out;
    }

    // TLS: how the endpoint treats a client without a certificate and a TLS 1.0/1.1 offer.
    bool requires_client_cert = false;
    probe::LegacyTls::Outcome legacy = probe::LegacyTls::Outcome::refused;
    int anonymous_posts = 0;

    probe::Exchange post_without_client_cert(const std::string& url,
                                             const util::HeaderList& headers,
                                             const std::string& body,
                                             std::chrono::milliseconds timeout) override {
        ++anonymous_posts;
        if (requires_client_cert) {
            probe::Exchange out;
            out.tls_failed = true;
            out.error = "TLS: the server requires a client certificate";
            return out;
        }
        return post(url, headers, body, timeout);
    }

    probe::LegacyTls offer_legacy_tls(const std::string&, std::chrono::milliseconds) override {
        probe::LegacyTls out;
        out.outcome = legacy;
        out.version = legacy == probe::LegacyTls::Outcome::accepted ? "TLSv1.1" : "";
        out.detail = "tlsv1 alert protocol version";
        return out;
    }

private:
    sig::Scheme m_scheme;
    keys::Key m_key;
    std::map<std::string, bool> m_seen;
};

probe::ProbeOptions options_for(sig::Scheme scheme) {
    probe::ProbeOptions options;
    options.url = "http://127.0.0.1:1/hooks";
    options.scheme = scheme;
    options.keys = {test_key(scheme)};
    options.max_body = 64 * 1024;
    options.now = [] { return k_now; };
    return options;
}

std::vector<std::string> with_status(const probe::Report& report, probe::Status status) {
    std::vector<std::string> out;
    for (const auto& c : report.checks) {
        if (c.status == status) {
            out.push_back(c.name);
        }
    }
    return out;
}

const probe::CheckResult& check(const probe::Report& report, std::string_view name) {
    auto it = std::ranges::find(report.checks, name, &probe::CheckResult::name);
    REQUIRE(it != report.checks.end());
    return *it;
}

} // namespace

TEST_CASE("probe::run passes every check against a correct receiver, in every scheme") {
    for (const auto& info : sig::all_schemes()) {
        CAPTURE(info.name);
        FakeReceiver receiver(info.scheme);
        auto report = probe::run(options_for(info.scheme), receiver);
        REQUIRE(report);
        CHECK(report->failed == 0);
        CHECK(report->ok());
        // The TLS checks are not listed for an http:// endpoint; the others are reported in
        // the order of check_names() (the checks' table), the control `valid` first.
        CHECK(report->checks.size() == probe::check_names().size() - 2);
        std::vector<std::string> order;
        for (const auto& c : report->checks) {
            order.push_back(c.name);
        }
        CHECK(order == std::vector<std::string>(probe::check_names().begin(),
                                                probe::check_names().end() - 2));
        CHECK(probe::check_names() ==
              std::vector<std::string>{"valid", "duplicate", "tampered-body", "wrong-secret",
                                       "stale-timestamp", "future-timestamp", "missing-signature",
                                       "malformed-json", "oversized-body", "latency", "tls-version",
                                       "mtls-required"});
        if (info.has_timestamp) {
            CHECK(report->passed == 10);
        } else {
            CHECK(with_status(*report, probe::Status::skip) ==
                  std::vector<std::string>{"stale-timestamp", "future-timestamp"});
        }
        CHECK(check(*report, "duplicate").detail == "the endpoint reported a duplicate");
        // Every request body that parses is a marked test event.
        for (const auto& body : receiver.bodies) {
            auto doc = nlohmann::json::parse(body, nullptr, false);
            if (!doc.is_discarded()) {
                CHECK(doc["type"] == "hookctl.probe");
            }
        }
        CHECK(receiver.bodies.back().size() == 64 * 1024 + 1);
    }
}

TEST_CASE("probe::run fails exactly the checks a broken receiver gets wrong") {
    SUBCASE("accepts any signature") {
        FakeReceiver receiver(sig::Scheme::mailparse);
        receiver.any_signature = true;
        auto report = probe::run(options_for(sig::Scheme::mailparse), receiver);
        REQUIRE(report);
        CHECK(with_status(*report, probe::Status::fail) ==
              std::vector<std::string>{"tampered-body", "wrong-secret", "stale-timestamp",
                                       "future-timestamp", "missing-signature"});
        CHECK(check(*report, "wrong-secret").got == "202: {\"status\":\"accepted\"}");
        CHECK(check(*report, "wrong-secret").expected == "4xx (401 or 403)");
        CHECK_FALSE(report->ok());
    }
    SUBCASE("ignores timestamps") {
        FakeReceiver receiver(sig::Scheme::stripe);
        receiver.ignore_timestamps = true;
        auto report = probe::run(options_for(sig::Scheme::stripe), receiver);
        REQUIRE(report);
        CHECK(with_status(*report, probe::Status::fail) ==
              std::vector<std::string>{"stale-timestamp", "future-timestamp"});
    }
    SUBCASE("answers 500 to malformed JSON") {
        FakeReceiver receiver(sig::Scheme::standard);
        receiver.crash_on_malformed = true;
        auto report = probe::run(options_for(sig::Scheme::standard), receiver);
        REQUIRE(report);
        CHECK(with_status(*report, probe::Status::fail) ==
              std::vector<std::string>{"malformed-json"});
        CHECK(check(*report, "malformed-json").got == "500");
    }
    SUBCASE("hangs on large bodies") {
        FakeReceiver receiver(sig::Scheme::mailparse);
        receiver.hang_on_large = true;
        auto report = probe::run(options_for(sig::Scheme::mailparse), receiver);
        REQUIRE(report);
        CHECK(with_status(*report, probe::Status::fail) ==
              std::vector<std::string>{"oversized-body"});
        CHECK(check(*report, "oversized-body").got == "no answer within 10000 ms");
    }
    SUBCASE("slower than the latency budget") {
        FakeReceiver receiver(sig::Scheme::mailparse);
        receiver.latency = std::chrono::milliseconds(250);
        auto report = probe::run(options_for(sig::Scheme::mailparse), receiver);
        REQUIRE(report);
        CHECK(with_status(*report, probe::Status::fail) == std::vector<std::string>{"latency"});
        CHECK(check(*report, "latency").got == "250.0 ms");
        CHECK(check(*report, "latency").expected == "<= 200 ms");
    }
}

TEST_CASE("probe::run selects checks with only and skip, and reports the rest skipped") {
    FakeReceiver receiver(sig::Scheme::mailparse);
    receiver.hang_on_large = true;
    auto options = options_for(sig::Scheme::mailparse);
    options.skip = {"oversized-body"};
    auto report = probe::run(options, receiver);
    REQUIRE(report);
    CHECK(report->ok());
    CHECK(with_status(*report, probe::Status::skip) == std::vector<std::string>{"oversized-body"});

    FakeReceiver fresh(sig::Scheme::mailparse);
    options.skip.clear();
    options.only = {"missing-signature"};
    report = probe::run(options, fresh);
    REQUIRE(report);
    CHECK(report->passed == 1);
    CHECK(report->skipped == 9);
    // The valid event (the control), then the request of the one check.
    CHECK(fresh.bodies.size() == 2);
    CHECK(fresh.headers_seen.front().contains("X-Signature"));
    CHECK_FALSE(fresh.headers_seen.back().contains("X-Signature"));
    CHECK(check(*report, "valid").detail == "not selected (--only/--skip)");
}

TEST_CASE("probe::run does not count rejections when the valid event is refused too") {
    FakeReceiver receiver(sig::Scheme::standard); // verifies standard
    auto options = options_for(sig::Scheme::standard);
    keys::SecretText other{keys::SecretBytes("whsec_" + util::base64_encode("another secret")),
                           "test"};
    auto wrong = keys::decode_key(other, keys::SecretEncoding::standard_webhooks);
    REQUIRE(wrong);
    options.keys = {*wrong}; // not the receiver's secret: everything is refused
    options.scheme = sig::Scheme::standard;
    auto report = probe::run(options, receiver);
    REQUIRE(report);
    CHECK(with_status(*report, probe::Status::fail) == std::vector<std::string>{"valid"});
    CHECK(report->passed == 1); // latency: the refusal was quick
    CHECK(check(*report, "wrong-secret").status == probe::Status::skip);
    CHECK(check(*report, "wrong-secret").detail.starts_with("not meaningful"));
    CHECK(receiver.bodies.size() == 1);
    CHECK_FALSE(report->ok());

    options.only = {"missing-signature"};
    FakeReceiver fresh(sig::Scheme::standard);
    report = probe::run(options, fresh);
    REQUIRE(report);
    CHECK(report->passed == 0);
    CHECK_FALSE(report->ok());
}

TEST_CASE("probe::validate_selection refuses unknown checks and empty selections") {
    CHECK(probe::validate_selection({}, {}));
    CHECK(probe::validate_selection({"valid"}, {"latency"}));
    auto unknown = probe::validate_selection({"valid", "nonsense"}, {});
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().code == ExitCode::usage);
    CHECK(unknown.error().message.find("'nonsense' in --only") != std::string::npos);
    auto empty = probe::validate_selection({"valid"}, {"valid"});
    REQUIRE_FALSE(empty);
    CHECK(empty.error().message == "--only and --skip leave no check to run");
}

TEST_CASE("probe::run reports an unreachable endpoint as an environment error") {
    FakeReceiver receiver(sig::Scheme::mailparse);
    receiver.refused = true;
    auto report = probe::run(options_for(sig::Scheme::mailparse), receiver);
    REQUIRE_FALSE(report);
    CHECK(report.error().code == ExitCode::environment);
    CHECK(report.error().message.find("cannot reach http://127.0.0.1:1/hooks") == 0);
}

TEST_CASE("probe::to_junit escapes what the endpoint answered and counts the results") {
    probe::Report report;
    report.url = "http://127.0.0.1:1/a?b=1&c=2";
    report.scheme = "mailparse";
    report.checks = {{"valid", probe::Status::pass, "2xx", "202", "", {}},
                     {"wrong-secret",
                      probe::Status::fail,
                      "4xx (401 or 403)",
                      "200: <ok & \"fine\">",
                      "accepted",
                      {}},
                     {"latency", probe::Status::skip, "", "", "not selected", {}}};
    report.passed = report.failed = report.skipped = 1;
    std::string xml = probe::to_junit(report);
    CHECK(xml.find("a?b=1&amp;c=2") != std::string::npos);
    CHECK(xml.find("got 200: &lt;ok &amp; &quot;fine&quot;&gt;") != std::string::npos);
    CHECK(xml.find("<skipped message=\"not selected\"/>") != std::string::npos);
    CHECK(xml.find("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\"") != std::string::npos);
    auto json = probe::to_json(report);
    CHECK(json["checks"][1]["status"] == "fail");
    CHECK(json["failed"] == 1);
}

TEST_CASE("probe::run checks an https endpoint's TLS versions and, when asked, mutual TLS") {
    auto options = options_for(sig::Scheme::mailparse);
    options.url = "https://127.0.0.1:1/hooks";
    SUBCASE("a correct endpoint") {
        FakeReceiver receiver(sig::Scheme::mailparse);
        receiver.requires_client_cert = true;
        options.expect_mtls = true;
        auto report = probe::run(options, receiver);
        REQUIRE(report);
        CHECK(report->ok());
        CHECK(report->checks.size() == probe::check_names().size());
        CHECK(check(*report, "tls-version").status == probe::Status::pass);
        CHECK(check(*report, "mtls-required").status == probe::Status::pass);
        CHECK(check(*report, "mtls-required").got == "refused in the TLS handshake");
        CHECK(receiver.anonymous_posts == 1);
    }
    SUBCASE("an endpoint that still speaks TLS 1.1 fails tls-version") {
        FakeReceiver receiver(sig::Scheme::mailparse);
        receiver.legacy = probe::LegacyTls::Outcome::accepted;
        auto report = probe::run(options, receiver);
        REQUIRE(report);
        CHECK(with_status(*report, probe::Status::fail) == std::vector<std::string>{"tls-version"});
        CHECK(check(*report, "tls-version").got == "accepted TLSv1.1");
        // Without --expect-mtls the mutual TLS check is not listed, nor sent.
        CHECK(std::ranges::find(report->checks, "mtls-required", &probe::CheckResult::name) ==
              report->checks.end());
        CHECK(receiver.anonymous_posts == 0);
    }
    SUBCASE("an endpoint that accepts a client without a certificate fails mtls-required") {
        FakeReceiver receiver(sig::Scheme::mailparse);
        options.expect_mtls = true;
        auto report = probe::run(options, receiver);
        REQUIRE(report);
        CHECK(with_status(*report, probe::Status::fail) ==
              std::vector<std::string>{"mtls-required"});
        CHECK(check(*report, "mtls-required")
                  .detail.starts_with("accepted a request from a client "
                                      "without a certificate"));
        CHECK_FALSE(report->ok());
    }
    SUBCASE("this machine cannot offer TLS 1.1: skipped, not passed") {
        FakeReceiver receiver(sig::Scheme::mailparse);
        receiver.legacy = probe::LegacyTls::Outcome::not_offered;
        auto report = probe::run(options, receiver);
        REQUIRE(report);
        CHECK(check(*report, "tls-version").status == probe::Status::skip);
    }
    SUBCASE("--expect-mtls on an http:// URL fails; --only tls-version there is skipped") {
        FakeReceiver receiver(sig::Scheme::mailparse);
        options.url = "http://127.0.0.1:1/hooks";
        options.expect_mtls = true;
        options.only = {"mtls-required", "tls-version"};
        auto report = probe::run(options, receiver);
        REQUIRE(report);
        CHECK(check(*report, "mtls-required").status == probe::Status::fail);
        CHECK(check(*report, "tls-version").status == probe::Status::skip);
        CHECK(receiver.anonymous_posts == 0);
    }
}

TEST_CASE("probe::run stops with the TLS problem when the first request fails in TLS") {
    class Untrusted final : public probe::Transport {
    public:
        probe::Exchange post(const std::string&, const util::HeaderList&, const std::string&,
                             std::chrono::milliseconds) override {
            probe::Exchange out;
            out.tls_failed = true;
            out.error = "TLS: the server's certificate is not trusted by the system trust store "
                        "(self-signed certificate); if a private CA signed it, pass --cacert FILE";
            return out;
        }
        probe::Exchange post_without_client_cert(const std::string& u, const util::HeaderList& h,
                                                 const std::string& b,
                                                 std::chrono::milliseconds t) override {
            return post(u, h, b, t);
        }
        probe::LegacyTls offer_legacy_tls(const std::string&, std::chrono::milliseconds) override {
            return {};
        }
    } transport;
    auto options = options_for(sig::Scheme::mailparse);
    options.url = "https://127.0.0.1:1/hooks";
    auto report = probe::run(options, transport);
    REQUIRE_FALSE(report);
    CHECK(report.error().code == ExitCode::environment);
    CHECK(report.error().message.find("--cacert FILE") != std::string::npos);
}
