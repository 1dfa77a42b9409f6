#include <atomic>

#include <doctest/doctest.h>

#include <hookctl/receive/keyset.hpp>

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
