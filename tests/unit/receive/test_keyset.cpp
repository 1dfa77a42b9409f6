#include <atomic>
#include <sys/stat.h>

#include <doctest/doctest.h>

#include <hookctl/receive/keyset.hpp>

#include "../temp_dir.hpp"

using namespace hookctl;
using namespace hookctl::receive;

namespace {

std::vector<keys::SecretText> secrets(std::initializer_list<const char*> texts) {
    std::vector<keys::SecretText> out;
    for (const char* t : texts) {
        out.push_back({keys::SecretBytes(t), "test"});
    }
    return out;
}

} // namespace

TEST_CASE("receive::make_key_set decodes for the fixed scheme, or for both under auto") {
    auto fixed = make_key_set(secrets({"plain-secret"}), sig::Scheme::mailparse);
    REQUIRE(fixed.has_value());
    CHECK(fixed->raw.size() == 1);
    CHECK(fixed->standard.empty());
    CHECK_FALSE(make_key_set(secrets({"plain-secret"}), sig::Scheme::standard).has_value());
    auto automatic = make_key_set(
        secrets({"plain-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}), std::nullopt);
    REQUIRE(automatic.has_value());
    CHECK(automatic->raw.size() == 2);
    CHECK(automatic->standard.size() == 1);
}

TEST_CASE("receive::KeyStore swaps the set on reload and reloads an expired set at check time") {
    std::atomic<int> loads{0};
    KeyLoader loader = [&](std::int64_t now) -> Result<KeySet> {
        ++loads;
        auto set = make_key_set(secrets({"second"}), sig::Scheme::mailparse);
        if (set) {
            set->expires_at = now + 100;
        }
        return set;
    };
    auto first = make_key_set(secrets({"first"}), sig::Scheme::mailparse, 1000);
    REQUIRE(first.has_value());
    KeyStore store(loader, std::move(*first));
    auto a = store.current(1000);
    CHECK(a->raw.front().fingerprint == keys::fingerprint("first"));
    CHECK(loads == 0);
    auto b = store.current(1001); // expired: reloaded before the check
    CHECK(loads == 1);
    CHECK(b->raw.front().fingerprint == keys::fingerprint("second"));
    CHECK(a->raw.front().fingerprint == keys::fingerprint("first")); // old readers unaffected
    REQUIRE(store.reload(1002).has_value());
    CHECK(loads == 2);
}

TEST_CASE("receive::KeyStore fails closed when an expired set cannot be reloaded") {
    KeyLoader broken = [](std::int64_t) -> Result<KeySet> {
        return fail(ExitCode::usage, "keyring unreadable");
    };
    auto first = make_key_set(secrets({"first"}), sig::Scheme::mailparse, 1000);
    REQUIRE(first.has_value());
    KeyStore store(broken, std::move(*first));
    CHECK(store.current(999)->raw.size() == 1);
    CHECK(store.current(1001)->raw.empty());
    CHECK_FALSE(store.reload(1001).has_value());
}

namespace {

// The fingerprints of `set`'s raw keys, in order.
std::vector<std::string> fingerprints(const KeySet& set) {
    std::vector<std::string> out;
    for (const auto& key : set.raw) {
        out.push_back(key.fingerprint);
    }
    return out;
}

} // namespace

TEST_CASE("receive::receiver_keys keeps a stdin secret across reloads and reads files again") {
    testing::TempDir dir;
    // A file whose name says stdin is still a file: read again on reload.
    auto path = dir.write("stdin.secret", "file-secret-one-0123456789\n");
    ::chmod(path.c_str(), 0600);
    std::vector<keys::SecretSource> sources{{keys::SecretSource::Kind::file, path},
                                            {keys::SecretSource::Kind::file, "-"}};
    // As load_secrets read them at start: the file's secret, then the one piped on stdin.
    std::vector<keys::SecretText> loaded{
        {keys::SecretBytes("file-secret-one-0123456789"), "file " + path},
        {keys::SecretBytes("stdin-secret-0123456789"), "file - (stdin)", true}};
    auto receiver = receiver_keys(sources, loaded, sig::Scheme::mailparse, 1000);
    REQUIRE(receiver.has_value());
    CHECK(fingerprints(receiver->initial) ==
          std::vector<std::string>{keys::fingerprint("file-secret-one-0123456789"),
                                   keys::fingerprint("stdin-secret-0123456789")});
    CHECK_FALSE(receiver->initial.expires_at.has_value()); // no keyring: no window to end

    // The file changes: a reload reads it again, and keeps the stdin secret (stdin is not read
    // again: it would be empty, or block).
    dir.write("stdin.secret", "file-secret-two-0123456789\n");
    auto reloaded = receiver->loader(2000);
    REQUIRE(reloaded.has_value());
    CHECK(reloaded->secrets == 2);
    CHECK(fingerprints(*reloaded) ==
          std::vector<std::string>{keys::fingerprint("stdin-secret-0123456789"),
                                   keys::fingerprint("file-secret-two-0123456789")});

    // A file secret is never kept: once its file is gone, the reload fails naming it.
    std::filesystem::remove(path);
    auto missing = receiver->loader(3000);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find(path) != std::string::npos);
}

TEST_CASE("receive::receiver_keys with only a stdin secret reloads without reading anything") {
    std::vector<keys::SecretSource> sources{{keys::SecretSource::Kind::file, "-"}};
    std::vector<keys::SecretText> loaded{
        {keys::SecretBytes("stdin-secret-0123456789"), "file - (stdin)", true}};
    auto receiver = receiver_keys(sources, loaded, sig::Scheme::mailparse, 1000);
    REQUIRE(receiver.has_value());
    auto reloaded = receiver->loader(2000);
    REQUIRE(reloaded.has_value());
    CHECK(fingerprints(*reloaded) ==
          std::vector<std::string>{keys::fingerprint("stdin-secret-0123456789")});
}

TEST_CASE("receive::receiver_keys fails naming the secret that does not decode for the scheme") {
    std::vector<keys::SecretText> loaded{{keys::SecretBytes("not-base64!!"), "env HOOK_SECRET"}};
    auto receiver = receiver_keys({{keys::SecretSource::Kind::env, "HOOK_SECRET"}}, loaded,
                                  sig::Scheme::standard, 1000);
    REQUIRE_FALSE(receiver.has_value());
    CHECK(receiver.error().message.find("env HOOK_SECRET") != std::string::npos);
}
