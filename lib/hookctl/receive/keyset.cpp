#include <hookctl/keys/keyring.hpp>
#include <hookctl/keys/keyring_file.hpp>
#include <hookctl/receive/keyset.hpp>

namespace hookctl::receive {

namespace {

// The earliest time after `now` a keyring among `sources` changes its set of valid secrets. A
// keyring that cannot be read is skipped: loading its secrets reports that.
std::optional<std::int64_t> next_keyring_change(const std::vector<keys::SecretSource>& sources,
                                                std::int64_t now) {
    std::optional<std::int64_t> next;
    for (const auto& source : sources) {
        if (source.kind != keys::SecretSource::Kind::keyring) {
            continue;
        }
        auto ring = keys::read_keyring(source.where);
        if (!ring) {
            continue;
        }
        if (auto t = ring->next_change_after(now); t && (!next || *t < *next)) {
            next = t;
        }
    }
    return next;
}

} // namespace

const std::vector<keys::Key>& KeySet::for_scheme(sig::Scheme scheme) const {
    return sig::info(scheme).encoding == keys::SecretEncoding::standard_webhooks ? standard : raw;
}

Result<KeySet> make_key_set(const std::vector<keys::SecretText>& secrets,
                            std::optional<sig::Scheme> scheme,
                            std::optional<std::int64_t> expires_at) {
    KeySet set;
    set.expires_at = expires_at;
    set.secrets = secrets.size();
    for (const auto& secret : secrets) {
        bool need_raw = !scheme || sig::info(*scheme).encoding == keys::SecretEncoding::raw;
        bool need_standard =
            !scheme || sig::info(*scheme).encoding == keys::SecretEncoding::standard_webhooks;
        if (need_raw) {
            auto key = keys::decode_key(secret, keys::SecretEncoding::raw);
            HOOKCTL_RETURN_IF_ERROR(key);
            set.raw.push_back(std::move(*key));
        }
        if (need_standard) {
            auto key = keys::decode_key(secret, keys::SecretEncoding::standard_webhooks);
            if (key) {
                set.standard.push_back(std::move(*key));
            } else if (scheme) {
                return std::unexpected(key.error());
            }
        }
    }
    return set;
}

KeyStore::KeyStore(KeyLoader loader, KeySet initial)
    : m_loader(std::move(loader))
    , m_current(std::make_shared<const KeySet>(std::move(initial))) {}

std::shared_ptr<const KeySet> KeyStore::current(std::int64_t now) {
    auto set = m_current.load(std::memory_order_acquire);
    if (set->expires_at && now > *set->expires_at && m_loader) {
        auto fresh = reload(now);
        if (fresh) {
            return *fresh;
        }
        // Fail closed: secrets whose window ended must not verify while a reload fails.
        static const auto empty = std::make_shared<const KeySet>();
        return empty;
    }
    return set;
}

Result<std::shared_ptr<const KeySet>> KeyStore::reload(std::int64_t now) {
    std::lock_guard lock(m_reload_mutex);
    auto set = m_current.load(std::memory_order_acquire);
    if (!m_loader) {
        return set;
    }
    auto loaded = m_loader(now);
    HOOKCTL_RETURN_IF_ERROR(loaded);
    auto fresh = std::make_shared<const KeySet>(std::move(*loaded));
    m_current.store(fresh, std::memory_order_release);
    return fresh;
}

Result<ReceiverKeys> receiver_keys(const std::vector<keys::SecretSource>& sources,
                                   const std::vector<keys::SecretText>& loaded,
                                   std::optional<sig::Scheme> scheme, std::int64_t loaded_at) {
    auto initial = make_key_set(loaded, scheme, next_keyring_change(sources, loaded_at));
    HOOKCTL_RETURN_IF_ERROR(initial);
    std::vector<keys::SecretText> kept;
    for (const auto& secret : loaded) {
        if (secret.from_stdin) {
            kept.push_back(secret);
        }
    }
    std::vector<keys::SecretSource> reread;
    for (const auto& source : sources) {
        if (!source.is_stdin()) {
            reread.push_back(source);
        }
    }
    KeyLoader loader = [kept = std::move(kept), reread = std::move(reread),
                        scheme](std::int64_t now) -> Result<KeySet> {
        std::vector<keys::SecretText> secrets = kept;
        if (!reread.empty()) {
            auto more = keys::load_secrets(reread, now);
            HOOKCTL_RETURN_IF_ERROR(more);
            secrets.insert(secrets.end(), more->begin(), more->end());
        }
        return make_key_set(secrets, scheme, next_keyring_change(reread, now));
    };
    return ReceiverKeys{std::move(*initial), std::move(loader)};
}

} // namespace hookctl::receive
