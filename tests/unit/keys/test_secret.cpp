#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <hookctl/keys/secret.hpp>

#include "../temp_dir.hpp"

using namespace hookctl;

// Env and file sources have no window: the time load_secrets is given does not matter.
constexpr std::int64_t k_no_keyring_time = 0;
using keys::SecretEncoding;
using keys::SecretSource;

namespace {

keys::SecretText text(std::string s) {
    return {keys::SecretBytes(std::move(s)), "test source"};
}

} // namespace

TEST_CASE("keys::load_secrets reads env and files, dropping one trailing newline") {
    testing::TempDir dir;
    ::setenv("HOOKCTL_TEST_SECRET", "from-env-0123456789\n", 1);
    auto path = dir.file("secret.txt");
    std::ofstream(path) << "from-file-0123456789\r\n";
    ::chmod(path.c_str(), 0600);
    auto secrets = keys::load_secrets(
        {{SecretSource::Kind::env, "HOOKCTL_TEST_SECRET"}, {SecretSource::Kind::file, path}},
        k_no_keyring_time);
    REQUIRE(secrets.has_value());
    CHECK(secrets->at(0).text.view() == "from-env-0123456789");
    CHECK(secrets->at(1).text.view() == "from-file-0123456789");
    CHECK(secrets->at(1).origin == "file " + path);
}

TEST_CASE("keys::load_secrets marks the secret read from stdin, and only that one") {
    testing::TempDir dir;
    auto piped = dir.write("stdin.txt", "from-stdin-0123456789\n");
    auto path = dir.write("secret.txt", "from-file-0123456789\n");
    ::chmod(path.c_str(), 0600);
    ::setenv("HOOKCTL_TEST_STDIN", "from-env-0123456789", 1); // "stdin" in its name: not stdin
    // Stand a file in for stdin while load_secrets reads `-`.
    int saved = ::dup(STDIN_FILENO);
    REQUIRE(saved >= 0);
    FILE* in = std::fopen(piped.c_str(), "r");
    REQUIRE(in != nullptr);
    REQUIRE(::dup2(::fileno(in), STDIN_FILENO) == STDIN_FILENO);
    auto secrets = keys::load_secrets({{SecretSource::Kind::env, "HOOKCTL_TEST_STDIN"},
                                       {SecretSource::Kind::file, "-"},
                                       {SecretSource::Kind::file, path}},
                                      k_no_keyring_time);
    ::dup2(saved, STDIN_FILENO);
    ::close(saved);
    std::fclose(in);
    REQUIRE(secrets.has_value());
    REQUIRE(secrets->size() == 3);
    CHECK_FALSE(secrets->at(0).from_stdin);
    CHECK(secrets->at(1).text.view() == "from-stdin-0123456789");
    CHECK(secrets->at(1).from_stdin);
    CHECK_FALSE(secrets->at(2).from_stdin);
    CHECK(SecretSource{SecretSource::Kind::file, "-"}.is_stdin());
    CHECK_FALSE(SecretSource{SecretSource::Kind::file, "stdin"}.is_stdin());
    CHECK_FALSE(SecretSource{SecretSource::Kind::env, "-"}.is_stdin());
}

TEST_CASE("keys::check_secret_file refuses a secret file its group or others may use") {
    testing::TempDir dir;
    auto path = dir.file("hook.secret");
    std::ofstream(path) << "a-webhook-secret-of-some-length\n";
    for (unsigned mode : {0644u, 0640u, 0604u, 0660u, 0620u, 0601u}) {
        CAPTURE(mode);
        ::chmod(path.c_str(), mode);
        auto loaded = keys::load_secrets({{SecretSource::Kind::file, path}}, k_no_keyring_time);
        REQUIRE_FALSE(loaded.has_value());
        CHECK(loaded.error().code == ExitCode::usage);
        CHECK(loaded.error().message.find("are too open") != std::string::npos);
        CHECK(loaded.error().message.find("chmod 600 " + path) != std::string::npos);
        CHECK(loaded.error().message.find("a-webhook-secret") == std::string::npos);
    }
    for (unsigned mode : {0600u, 0400u}) {
        ::chmod(path.c_str(), mode);
        CHECK(
            keys::load_secrets({{SecretSource::Kind::file, path}}, k_no_keyring_time).has_value());
    }
    // A pipe has no permissions of its own to judge; a keyring must be a regular file.
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    CHECK(keys::check_secret_file(fds[0], "pipe", "secret file").has_value());
    auto keyring = keys::check_secret_file(fds[0], "pipe", "keyring", true);
    REQUIRE_FALSE(keyring.has_value());
    CHECK(keyring.error().message == "keyring pipe is not a regular file");
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("keys::check_secret_text refuses blank secrets and warns on short ones") {
    for (const char* blank : {"", " ", " \t \r\n  "}) {
        auto r = keys::check_secret_text(blank, "file x");
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == ExitCode::usage);
        CHECK(r.error().message.starts_with("secret from file x is "));
    }
    auto shorter = keys::check_secret_text("hunter2", "env PASSWORD");
    REQUIRE(shorter.has_value());
    REQUIRE(shorter->has_value());
    CHECK(**shorter == "secret from env PASSWORD is only 7 bytes long: a short secret can be "
                       "guessed offline from one signed request; use at least 16 random bytes "
                       "('hookctl secret new' makes 32)");
    CHECK((*keys::check_secret_text("0123456789abcdef", "x")) == std::nullopt);
    // A whsec_ secret is judged by its key: 8 bytes of base64 are short, however long the text.
    CHECK(keys::check_secret_text("whsec_c2VjcmV0LTg=", "x")->has_value());
    CHECK_FALSE(keys::check_secret_text("whsec_MDEyMzQ1Njc4OWFiY2RlZg==", "x")->has_value());
}

TEST_CASE("keys::load_secrets reports short secrets to the warning sink, never the secret") {
    std::vector<std::string> warnings;
    keys::set_warning_sink([&](const std::string& m) { warnings.push_back(m); });
    ::setenv("HOOKCTL_TEST_SHORT", "tiny\n", 1);
    ::setenv("HOOKCTL_TEST_LONG", "long-enough-secret-text", 1);
    auto loaded = keys::load_secrets({{SecretSource::Kind::env, "HOOKCTL_TEST_SHORT"},
                                      {SecretSource::Kind::env, "HOOKCTL_TEST_LONG"}},
                                     k_no_keyring_time);
    keys::set_warning_sink(nullptr);
    REQUIRE(loaded.has_value());
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].starts_with("secret from env HOOKCTL_TEST_SHORT is only 4 bytes long"));
    CHECK(warnings[0].find("tiny") == std::string::npos);
    ::setenv("HOOKCTL_TEST_BLANK", "   \n", 1);
    auto blank =
        keys::load_secrets({{SecretSource::Kind::env, "HOOKCTL_TEST_BLANK"}}, k_no_keyring_time);
    REQUIRE_FALSE(blank.has_value());
    CHECK(blank.error().message.find("is only whitespace") != std::string::npos);
}

TEST_CASE("keys::write_secret_file creates 0600 whatever the umask, and never overwrites") {
    testing::TempDir dir;
    auto path = dir.file("hook.secret");
    mode_t old_umask = ::umask(0);
    auto written = keys::write_secret_file(path, keys::SecretBytes("whsec_abc"), false);
    ::umask(old_umask);
    REQUIRE(written.has_value());
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    std::ifstream in(path);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(content == "whsec_abc\n");

    auto again = keys::write_secret_file(path, keys::SecretBytes("whsec_new"), false);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().code == ExitCode::usage);
    CHECK(again.error().message.find("already exists") != std::string::npos);
    CHECK(again.error().message.find("--force") != std::string::npos);

    ::chmod(path.c_str(), 0644);
    REQUIRE(keys::write_secret_file(path, keys::SecretBytes("whsec_new"), true).has_value());
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);

    auto nowhere = keys::write_secret_file(dir.file("missing/hook.secret"),
                                           keys::SecretBytes("whsec_abc"), false);
    REQUIRE_FALSE(nowhere.has_value());
    CHECK(nowhere.error().code == ExitCode::environment);
}

TEST_CASE("keys::load_secrets fails clearly on unset, unreadable and empty secrets") {
    ::unsetenv("HOOKCTL_TEST_UNSET");
    auto unset =
        keys::load_secrets({{SecretSource::Kind::env, "HOOKCTL_TEST_UNSET"}}, k_no_keyring_time);
    REQUIRE_FALSE(unset.has_value());
    CHECK(unset.error().code == ExitCode::usage);
    CHECK(unset.error().message.find("HOOKCTL_TEST_UNSET is not set") != std::string::npos);

    auto missing =
        keys::load_secrets({{SecretSource::Kind::file, "/nonexistent/secret"}}, k_no_keyring_time);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find("/nonexistent/secret") != std::string::npos);

    ::setenv("HOOKCTL_TEST_EMPTY", "\n", 1);
    auto empty =
        keys::load_secrets({{SecretSource::Kind::env, "HOOKCTL_TEST_EMPTY"}}, k_no_keyring_time);
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
