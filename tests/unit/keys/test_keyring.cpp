#include <atomic>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <doctest/doctest.h>

#include <hookctl/keys/keyring.hpp>
#include <hookctl/keys/keyring_file.hpp>
#include <hookctl/util/file.hpp>

#include "../temp_dir.hpp"

using namespace hookctl;
using keys::KeyState;

namespace {

const keys::Actor k_actor{"tester", "testhost"};
constexpr std::int64_t k_t0 = 1'800'000'000;

// A fresh folder under the temp dir, removed when the test ends.
using testing::TempDir;

keys::NewSecret secret(std::string text) {
    auto s = keys::describe_secret(keys::SecretBytes(std::move(text)), "test");
    REQUIRE(s.has_value());
    return *s;
}

keys::Keyring one_primary() {
    keys::Keyring k;
    REQUIRE(keys::add_secret(k, secret("whsec_b2xkLXNlY3JldA=="), k_t0, k_actor).has_value());
    return k;
}

std::vector<std::string> texts(const keys::Keyring& k, std::int64_t now) {
    std::vector<std::string> out;
    for (const auto* e : k.valid_at(now)) {
        out.emplace_back(e->secret.view());
    }
    return out;
}

std::string slurp(const std::string& path) {
    auto text = util::read_file(path);
    REQUIRE(text.has_value());
    return *text;
}

} // namespace

TEST_CASE("keys::add_secret makes the first secret primary and later ones verify-only") {
    auto k = one_primary();
    REQUIRE(k.primary() != nullptr);
    CHECK(k.primary()->id == "k1");
    CHECK(k.primary()->history.size() == 1);
    CHECK(k.primary()->history[0].user == "tester");
    auto second = keys::add_secret(k, secret("raw-second"), k_t0, k_actor);
    REQUIRE(second.has_value());
    CHECK(*second == "k2");
    CHECK(k.find("k2")->state == KeyState::verify_only);
    auto dup = keys::add_secret(k, secret("raw-second"), k_t0, k_actor);
    REQUIRE_FALSE(dup.has_value());
    CHECK(dup.error().message.find("already holds this secret as k2") != std::string::npos);
    CHECK(dup.error().message.find("raw-second") == std::string::npos);
}

TEST_CASE("keys::begin_rotation keeps the old secret valid exactly until the window ends") {
    auto k = one_primary();
    auto id =
        keys::begin_rotation(k, secret("whsec_bmV3LXNlY3JldA=="), 3600, false, k_t0 + 10, k_actor);
    REQUIRE(id.has_value());
    CHECK(*id == "k2");
    CHECK(k.primary()->id == "k2");
    CHECK(k.find("k1")->state == KeyState::verify_only);
    CHECK(*k.find("k1")->not_after == k_t0 + 3610);
    // Signing order: the new primary first, then the old one, until the last second.
    CHECK(texts(k, k_t0 + 3610) ==
          std::vector<std::string>{"whsec_bmV3LXNlY3JldA==", "whsec_b2xkLXNlY3JldA=="});
    CHECK(k.rotation_in_progress(k_t0 + 3610));
    CHECK(*k.next_change_after(k_t0 + 10) == k_t0 + 3611);
    // One second later the old secret no longer verifies, though nobody ran finish.
    CHECK(texts(k, k_t0 + 3611) == std::vector<std::string>{"whsec_bmV3LXNlY3JldA=="});
    CHECK_FALSE(k.rotation_in_progress(k_t0 + 3611));
    CHECK_FALSE(k.next_change_after(k_t0 + 3611).has_value());
}

TEST_CASE("keys::begin_rotation refuses while a window is open unless forced") {
    auto k = one_primary();
    REQUIRE(keys::begin_rotation(k, secret("second"), 3600, false, k_t0, k_actor).has_value());
    auto again = keys::begin_rotation(k, secret("third"), 3600, false, k_t0 + 1, k_actor);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().message.find("already in progress") != std::string::npos);
    CHECK(again.error().message.find("--force") != std::string::npos);
    CHECK(k.keys.size() == 2);
    auto forced = keys::begin_rotation(k, secret("third"), 3600, true, k_t0 + 1, k_actor);
    REQUIRE(forced.has_value());
    CHECK(texts(k, k_t0 + 2).size() == 3);
    // After the window, begin works without --force and retires the expired secrets.
    auto later = keys::begin_rotation(k, secret("fourth"), 60, false, k_t0 + 10'000, k_actor);
    REQUIRE(later.has_value());
    CHECK(k.find("k1")->state == KeyState::retired);
    CHECK(k.find("k2")->state == KeyState::retired);
    CHECK(k.find("k3")->state == KeyState::verify_only);
    CHECK(texts(k, k_t0 + 10'000) == std::vector<std::string>{"fourth", "third"});
}

TEST_CASE("keys::finish_rotation and abort_rotation") {
    SUBCASE("finish retires the verify-only secrets") {
        auto k = one_primary();
        REQUIRE(keys::begin_rotation(k, secret("second"), 3600, false, k_t0, k_actor));
        auto retired = keys::finish_rotation(k, k_t0 + 5, k_actor);
        CHECK(retired == std::vector<std::string>{"k1"});
        CHECK(texts(k, k_t0 + 5) == std::vector<std::string>{"second"});
        CHECK(keys::finish_rotation(k, k_t0 + 6, k_actor).empty());
        auto abort = keys::abort_rotation(k, k_t0 + 7, k_actor);
        REQUIRE_FALSE(abort.has_value());
        CHECK(abort.error().message.find("already retired") != std::string::npos);
    }
    SUBCASE("abort restores the previous primary and retires the new one") {
        auto k = one_primary();
        REQUIRE(keys::begin_rotation(k, secret("second"), 3600, false, k_t0, k_actor));
        auto restored = keys::abort_rotation(k, k_t0 + 5, k_actor);
        REQUIRE(restored.has_value());
        CHECK(*restored == "k1");
        CHECK(k.find("k2")->state == KeyState::retired);
        CHECK_FALSE(k.find("k1")->not_after.has_value());
        CHECK(texts(k, k_t0 + 100'000) == std::vector<std::string>{"whsec_b2xkLXNlY3JldA=="});
        CHECK_FALSE(keys::abort_rotation(k, k_t0 + 6, k_actor).has_value());
    }
}

TEST_CASE("keys::to_json and parse_keyring round-trip, and corruption is named") {
    auto k = one_primary();
    REQUIRE(keys::begin_rotation(k, secret("whsk_" + std::string(43, 'A') + "="), 60, false, k_t0,
                                 k_actor));
    std::string text = keys::to_json(k);
    auto back = keys::parse_keyring(text, "ring.json");
    REQUIRE(back.has_value());
    REQUIRE(back->keys.size() == 2);
    CHECK(back->keys[1].family == keys::KeyFamily::ed25519);
    CHECK(back->keys[1].public_key.starts_with("whpk_"));
    CHECK(back->keys[0].not_after == k.keys[0].not_after);
    CHECK(back->keys[0].history.size() == 2);
    CHECK(keys::to_json(*back) == text);

    auto bad_json = keys::parse_keyring(text.substr(0, text.size() / 2), "ring.json");
    REQUIRE_FALSE(bad_json.has_value());
    CHECK(bad_json.error().message.find("ring.json is corrupt: not valid JSON") !=
          std::string::npos);
    CHECK(bad_json.error().message.find("whsec_") == std::string::npos);

    // A secret edited by hand no longer matches its fingerprint.
    std::string tampered = text;
    auto at = tampered.find("whsec_b2xk");
    REQUIRE(at != std::string::npos);
    tampered[at + 6] = 'c';
    auto bad_fp = keys::parse_keyring(tampered, "ring.json");
    REQUIRE_FALSE(bad_fp.has_value());
    CHECK(bad_fp.error().message.find("does not match") != std::string::npos);
}

TEST_CASE("keys::update_keyring creates 0600, refuses open modes and corrupt files untouched") {
    TempDir dir;
    std::string path = dir.file("ring.json");
    auto add = [&](std::string text) {
        return keys::update_keyring(path, true, [&](keys::Keyring& k) -> Result<void> {
            auto id = keys::add_secret(k, secret(text), k_t0, k_actor);
            if (!id) {
                return std::unexpected(id.error());
            }
            return {};
        });
    };
    REQUIRE(add("first").has_value());
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(add("second").has_value());
    CHECK(keys::read_keyring(path)->keys.size() == 2);

    ::chmod(path.c_str(), 0644);
    auto open = keys::read_keyring(path);
    REQUIRE_FALSE(open.has_value());
    CHECK(open.error().message.find("permissions 0644 are too open") != std::string::npos);
    CHECK(open.error().message.find("chmod 600") != std::string::npos);
    CHECK_FALSE(add("third").has_value());
    ::chmod(path.c_str(), 0600);

    std::string before = slurp(path);
    {
        std::ofstream out(path, std::ios::trunc);
        out << before.substr(0, 40);
    }
    std::string corrupt = slurp(path);
    auto refused = add("third");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message.find("is corrupt") != std::string::npos);
    CHECK(slurp(path) == corrupt);

    auto missing = keys::read_keyring(dir.file("absent.json"));
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message.find("does not exist") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.file("absent.json")));
}

TEST_CASE("keys::update_keyring serialises concurrent writers: no change is lost") {
    TempDir dir;
    std::string path = dir.file("ring.json");
    constexpr int k_writers = 8;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int i = 0; i < k_writers; ++i) {
        threads.emplace_back([&, i] {
            auto done = keys::update_keyring(path, true, [&](keys::Keyring& k) -> Result<void> {
                auto id = keys::add_secret(k, secret("secret-" + std::to_string(i)), k_t0, k_actor);
                if (!id) {
                    return std::unexpected(id.error());
                }
                return {};
            });
            failures += done ? 0 : 1;
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(failures == 0);
    auto k = keys::read_keyring(path);
    REQUIRE(k.has_value());
    CHECK(k->keys.size() == k_writers);
    int primaries = 0;
    for (const auto& e : k->keys) {
        primaries += e.state == KeyState::primary ? 1 : 0;
    }
    CHECK(primaries == 1);
}

TEST_CASE("keys::load_secrets reads a keyring at the check time") {
    TempDir dir;
    std::string path = dir.file("ring.json");
    auto k = one_primary();
    REQUIRE(keys::begin_rotation(k, secret("second"), 100, false, k_t0, k_actor));
    REQUIRE(util::write_file_atomic(path, keys::to_json(k), 0600).has_value());
    keys::SecretSource source{keys::SecretSource::Kind::keyring, path};
    auto during = keys::load_secrets({source}, k_t0 + 100);
    REQUIRE(during.has_value());
    REQUIRE(during->size() == 2);
    CHECK(during->at(0).text.view() == "second");
    CHECK(during->at(0).origin == "keyring " + path + " (k2)");
    auto after = keys::load_secrets({source}, k_t0 + 101);
    REQUIRE(after.has_value());
    CHECK(after->size() == 1);

    keys::Keyring empty;
    REQUIRE(util::write_file_atomic(path, keys::to_json(empty), 0600).has_value());
    auto none = keys::load_secrets({source}, k_t0);
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error().message.find("holds no secret valid") != std::string::npos);
}

TEST_CASE("keys::generate_secret makes 32-byte whsec_, hex and ed25519 secrets") {
    auto whsec = keys::generate_secret(keys::KeyFamily::hmac, keys::SecretFormat::whsec);
    REQUIRE(whsec.has_value());
    CHECK(whsec->secret.view().starts_with("whsec_"));
    CHECK(whsec->secret.size() == 6 + 44);
    auto hex = keys::generate_secret(keys::KeyFamily::hmac, keys::SecretFormat::hex);
    REQUIRE(hex.has_value());
    CHECK(hex->secret.size() == 64);
    CHECK(hex->secret.view() != whsec->secret.view());
    auto ed = keys::generate_secret(keys::KeyFamily::ed25519, keys::SecretFormat::whsec);
    REQUIRE(ed.has_value());
    CHECK(ed->family == keys::KeyFamily::ed25519);
    CHECK(ed->secret.view().starts_with("whsk_"));
    CHECK(ed->public_key.starts_with("whpk_"));
    CHECK(keys::describe_secret(keys::SecretBytes(ed->public_key), "t")->fingerprint ==
          ed->fingerprint);
}

TEST_CASE("keys::describe_secret names a secret by one fingerprint whichever scheme uses it") {
    auto sw = secret("whsec_c2VjcmV0");
    CHECK(sw.fingerprint == keys::fingerprint("secret"));
    keys::SecretText text{keys::SecretBytes(std::string("whsec_c2VjcmV0")), "t"};
    CHECK(keys::decode_key(text, keys::SecretEncoding::raw)->fingerprint == sw.fingerprint);
    // A provider's whsec_ secret that is not base64 is kept as raw bytes.
    auto stripe = secret("whsec_stripe_style_secret");
    CHECK(stripe.family == keys::KeyFamily::hmac);
    CHECK(stripe.fingerprint == keys::fingerprint("whsec_stripe_style_secret"));
    CHECK_FALSE(keys::describe_secret(keys::SecretBytes(std::string("whsk_???")), "t"));
}
