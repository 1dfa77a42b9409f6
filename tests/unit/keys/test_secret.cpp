#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include <hookctl/keys/secret.hpp>

using namespace hookctl;
using keys::SecretEncoding;
using keys::SecretSource;

namespace {

keys::SecretText text(std::string s) {
    return {keys::SecretBytes(std::move(s)), "test source"};
}

} // namespace

TEST_CASE("keys::load_secrets reads env and files, dropping one trailing newline") {
    ::setenv("HOOKCTL_TEST_SECRET", "from-env\n", 1);
    auto path = std::filesystem::temp_directory_path() / "hookctl-test-secret.txt";
    std::ofstream(path) << "from-file\r\n";
    auto secrets = keys::load_secrets({{SecretSource::Kind::env, "HOOKCTL_TEST_SECRET"},
                                       {SecretSource::Kind::file, path.string()}});
    REQUIRE(secrets.has_value());
    CHECK(secrets->at(0).text.view() == "from-env");
    CHECK(secrets->at(1).text.view() == "from-file");
    CHECK(secrets->at(1).origin == "file " + path.string());
    std::filesystem::remove(path);
}

TEST_CASE("keys::load_secrets fails clearly on unset, unreadable and empty secrets") {
    ::unsetenv("HOOKCTL_TEST_UNSET");
    auto unset = keys::load_secrets({{SecretSource::Kind::env, "HOOKCTL_TEST_UNSET"}});
    REQUIRE_FALSE(unset.has_value());
    CHECK(unset.error().code == ExitCode::usage);
    CHECK(unset.error().message.find("HOOKCTL_TEST_UNSET is not set") != std::string::npos);

    auto missing = keys::load_secrets({{SecretSource::Kind::file, "/nonexistent/secret"}});
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find("/nonexistent/secret") != std::string::npos);

    ::setenv("HOOKCTL_TEST_EMPTY", "\n", 1);
    auto empty = keys::load_secrets({{SecretSource::Kind::env, "HOOKCTL_TEST_EMPTY"}});
    REQUIRE_FALSE(empty.has_value());
    CHECK(empty.error().message.find("is empty") != std::string::npos);
}

TEST_CASE("keys::decode_key reads whsec_ and refuses malformed base64 without echoing it") {
    auto key = keys::decode_key(text("whsec_c2VjcmV0"), SecretEncoding::standard_webhooks);
    REQUIRE(key.has_value());
    CHECK(key->bytes.view() == "secret");
    CHECK(key->fingerprint == keys::fingerprint("secret"));
    CHECK(key->fingerprint.size() == 8);

    auto bad = keys::decode_key(text("whsec_not*base64!"), SecretEncoding::standard_webhooks);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == ExitCode::usage);
    CHECK(bad.error().message.find("malformed whsec_ secret") != std::string::npos);
    CHECK(bad.error().message.find("not*base64") == std::string::npos);
}

TEST_CASE("keys::decode_key keeps raw secrets raw for the other schemes") {
    auto key = keys::decode_key(text("whsec_stripe_style"), SecretEncoding::raw);
    REQUIRE(key.has_value());
    CHECK(key->bytes.view() == "whsec_stripe_style");
}

TEST_CASE("keys::decode_key rejects ed25519 keys of the wrong length") {
    CHECK_FALSE(keys::decode_key(text("whsk_aGk="), SecretEncoding::standard_webhooks));
    CHECK_FALSE(keys::decode_key(text("whpk_aGk="), SecretEncoding::standard_webhooks));
}
