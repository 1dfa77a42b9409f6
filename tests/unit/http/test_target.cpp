#include <filesystem>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include <hookctl/http/target.hpp>

#include "../temp_dir.hpp"

namespace fs = std::filesystem;
using namespace hookctl;
using namespace std::chrono_literals;
using testing::TempDir;

namespace {

constexpr std::int64_t k_now = 1'764'000'000; // keyrings are judged at this Unix second

// A secret file as the secret rule wants it (mode 600), and a source naming it.
keys::SecretSource secret_file(const TempDir& dir, const char* name, const std::string& text) {
    auto path = dir.file(name);
    std::ofstream(path) << text;
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    return {keys::SecretSource::Kind::file, path};
}

http::DeliverySpec to_url(const TempDir& dir) {
    http::DeliverySpec spec;
    spec.to = "http://127.0.0.1:9/hook";
    spec.secrets = {secret_file(dir, "s", "0123456789abcdef0123456789abcdef")};
    return spec;
}

// The message of a spec that must fail with exit 2.
std::string refusal(const http::DeliverySpec& spec, http::Resolve mode = http::Resolve::to_send) {
    auto resolved = http::resolve_delivery(spec, {}, k_now, mode);
    REQUIRE_FALSE(resolved);
    CHECK(resolved.error().code == ExitCode::usage);
    return resolved.error().message;
}

} // namespace

TEST_CASE("http::resolve_delivery wants exactly one of a URL and a target, and an http(s) URL, "
          "without naming flags") {
    TempDir dir;
    auto spec = to_url(dir);
    spec.to.clear();
    CHECK(refusal(spec) == "no destination: give a URL or a target name");
    spec.to = "http://127.0.0.1:9/hook";
    spec.target = "prod";
    CHECK(refusal(spec) == "a URL and a target name both given: give one of them");
    spec.target.clear();
    spec.to = "127.0.0.1:9/hook";
    CHECK(refusal(spec) == "URL 127.0.0.1:9/hook: not an http:// or https:// URL");
}

TEST_CASE("http::resolve_delivery takes the retry policy and timeouts, refusing out of range "
          "values without naming flags") {
    TempDir dir;
    auto spec = to_url(dir);
    spec.retries = 0;
    spec.backoff_base = 250ms;
    spec.backoff_max = 2s;
    spec.max_elapsed = 1min;
    spec.timeout = 5s;
    spec.connect_timeout = 1500ms;
    auto resolved = http::resolve_delivery(spec, {}, k_now);
    REQUIRE(resolved);
    CHECK(resolved->endpoint.url == "http://127.0.0.1:9/hook");
    CHECK(resolved->target_label == "http://127.0.0.1:9/hook");
    CHECK_FALSE(resolved->target);
    CHECK(resolved->endpoint.scheme == sig::Scheme::mailparse);
    CHECK(resolved->endpoint.keys.size() == 1);
    CHECK(resolved->policy.retries == 0);
    CHECK(resolved->policy.backoff_base == 250ms);
    CHECK(resolved->policy.backoff_max == 2s);
    CHECK(resolved->policy.max_elapsed == 60s);
    CHECK(resolved->client.total_timeout == 5s);
    CHECK(resolved->client.connect_timeout == 1500ms);

    spec.max_elapsed.reset(); // no limit
    CHECK_FALSE(http::resolve_delivery(spec, {}, k_now)->policy.max_elapsed);
    spec.retries = 1000;
    CHECK(http::resolve_delivery(spec, {}, k_now)->policy.retries == 1000);
    spec.backoff_base = 0ms; // no wait between attempts
    CHECK(http::resolve_delivery(spec, {}, k_now));

    // The defaults are the ones --help states.
    http::DeliverySpec defaults;
    CHECK(defaults.retries == 5);
    CHECK(defaults.backoff_base == 500ms);
    CHECK(defaults.backoff_max == 30s);
    CHECK_FALSE(defaults.max_elapsed);
    CHECK(defaults.timeout == 30s);
    CHECK(defaults.connect_timeout == 10s);

    for (int bad : {-1, 1001}) {
        CAPTURE(bad);
        auto wrong = spec;
        wrong.retries = bad;
        CHECK(refusal(wrong) ==
              "the retry count must be a whole number from 0 to 1000, not " + std::to_string(bad));
    }
    auto negative = spec;
    negative.backoff_max = -1ms;
    CHECK(refusal(negative) == "the backoff delays and the retry time limit cannot be negative");
    for (auto field : {&http::DeliverySpec::timeout, &http::DeliverySpec::connect_timeout}) {
        auto zero = spec;
        zero.*field = 0ms;
        CHECK(refusal(zero) == "the request timeout and the connect timeout must be above zero");
    }
}

TEST_CASE("http::resolve_delivery needs a secret to send, not to check, and a known scheme") {
    TempDir dir;
    auto spec = to_url(dir);
    spec.secrets.clear();
    CHECK(refusal(spec) == "no secret to sign with");
    spec.advice.add_secret = "pass a secret flag"; // the caller's words: a command's flags
    CHECK(refusal(spec) == "no secret to sign with: pass a secret flag");
    auto checked = http::resolve_delivery(spec, {}, k_now, http::Resolve::to_check);
    REQUIRE(checked);
    CHECK(checked->endpoint.keys.empty());

    spec = to_url(dir);
    spec.scheme = "nonsense";
    CHECK(refusal(spec).starts_with("unknown scheme 'nonsense'"));
}

TEST_CASE("http::resolve_delivery takes a target's URL, scheme and secrets; flags win") {
    TempDir dir;
    secret_file(dir, "target.secret", "fedcba9876543210fedcba9876543210");
    auto config = dir.file("config.toml");
    std::ofstream(config) << "[targets.prod]\nurl = \"https://hooks.example.com/in\"\n"
                             "scheme = \"github\"\nsecret_file = \"target.secret\"\n"
                             "production = true\n"
                             "[targets.bare]\nurl = \"http://127.0.0.1:9/bare\"\n";
    http::DeliverySpec spec;
    spec.config_path = config;
    spec.target = "prod";

    // A production target: refused unless confirmed when no one can be asked, saying how in the
    // caller's words; a dry run asks no one.
    CHECK(refusal(spec) == "target 'prod' is marked production = true: it needs confirming (no "
                           "terminal to ask on, so nothing was sent)");
    spec.advice.confirm = "pass --yes to confirm";
    CHECK(refusal(spec).find(": pass --yes to confirm (no terminal") != std::string::npos);
    CHECK(http::resolve_delivery(spec, {}, k_now, http::Resolve::to_check));

    spec.yes = true;
    auto resolved = http::resolve_delivery(spec, {}, k_now);
    REQUIRE(resolved);
    REQUIRE(resolved->target);
    CHECK(resolved->target_label == "prod");
    CHECK(resolved->endpoint.url == "https://hooks.example.com/in");
    CHECK(resolved->endpoint.scheme == sig::Scheme::github);
    REQUIRE(resolved->endpoint.keys.size() == 1);
    auto from_target = resolved->endpoint.keys[0].fingerprint;

    // --scheme and a secret flag replace the target's.
    spec.scheme = "slack";
    spec.secrets = {secret_file(dir, "flag.secret", "0123456789abcdef0123456789abcdef")};
    auto flagged = http::resolve_delivery(spec, {}, k_now);
    REQUIRE(flagged);
    CHECK(flagged->endpoint.scheme == sig::Scheme::slack);
    REQUIRE(flagged->endpoint.keys.size() == 1);
    CHECK(flagged->endpoint.keys[0].fingerprint != from_target);

    // A target without secrets: the message also names the config keys.
    http::DeliverySpec bare;
    bare.config_path = config;
    bare.target = "bare";
    CHECK(refusal(bare) == "no secret to sign with: set secret_env/secret_file/keyring on the "
                           "target");
    bare.advice.add_secret = "pass a secret flag";
    CHECK(refusal(bare).ends_with(
        ": pass a secret flag, or set secret_env/secret_file/keyring on the target"));
    bare.target = "staging";
    CHECK(refusal(bare).ends_with("known targets are bare, prod"));
    bare.advice.unknown_target = "pass another config file";
    CHECK(refusal(bare).ends_with("known targets are bare, prod; pass another config file"));
}
