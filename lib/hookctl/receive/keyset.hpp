#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include <hookctl/keys/secret.hpp>
#include <hookctl/sig/scheme.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::receive {

// The secrets a receiver verifies with, decoded for both secret encodings (so `--scheme auto`
// can verify Standard Webhooks and raw-secret schemes with the same secrets).
struct KeySet {
    std::vector<keys::Key> raw;             // decoded as raw bytes
    std::vector<keys::Key> standard;        // decoded as whsec_/whsk_/whpk_ (those that are)
    std::optional<std::int64_t> expires_at; // the set must be reloaded after this Unix second
    std::size_t secrets = 0;                // secrets loaded

    const std::vector<keys::Key>& for_scheme(sig::Scheme scheme) const;
};

// Decodes `secrets` into a KeySet. With `scheme` set, every secret must decode for it (exit 2
// naming the secret's origin); with `scheme` empty (auto) a secret that is not a Standard
// Webhooks secret is only used by the raw-secret schemes. `expires_at`: when the set of valid
// secrets changes next (a keyring's rotation window ends).
Result<KeySet> make_key_set(const std::vector<keys::SecretText>& secrets,
                            std::optional<sig::Scheme> scheme,
                            std::optional<std::int64_t> expires_at = std::nullopt);

// Loads the secrets valid at `now` (Unix seconds) again: the same flags, files and keyrings
// the receiver started with.
using KeyLoader = std::function<Result<KeySet>(std::int64_t now)>;

// A receiver's secrets: the set it starts with, and how it loads them again.
struct ReceiverKeys {
    KeySet initial;
    KeyLoader loader;
};

// The receiver's reload policy. `loaded`: the secrets keys::load_secrets read from `sources` at
// `loaded_at` (Unix seconds), decoded now into `initial` (as make_key_set, for `scheme`). The
// loader reads every source again at the time it is given, except stdin (`file -`), which
// cannot be read twice: the secrets read from it at start (SecretText::from_stdin) are kept, ahead
// of the others. Each set expires when the set of valid secrets of a keyring among `sources`
// next changes (a rotation window opens or ends), so it is reloaded then. Fails (exit 2, naming
// the source) when a secret does not decode; the loader fails as keys::load_secrets does.
Result<ReceiverKeys> receiver_keys(const std::vector<keys::SecretSource>& sources,
                                   const std::vector<keys::SecretText>& loaded,
                                   std::optional<sig::Scheme> scheme, std::int64_t loaded_at);

// The receiver's current KeySet, swapped atomically: readers never block and never see a half
// loaded set. `reload` re-runs the loader (see Reloader: a signal, a keyring file change);
// `current(now)` reloads first when the set has expired at `now`, so a secret whose window ended
// stops verifying at the time of the check, not at the next reload. Thread-safe.
class KeyStore {
public:
    KeyStore(KeyLoader loader, KeySet initial);

    std::shared_ptr<const KeySet> current(std::int64_t now);

    // Loads the secrets again; on failure the current set stays in place and the error (exit 2,
    // naming the source) is returned for the log.
    Result<std::shared_ptr<const KeySet>> reload(std::int64_t now);

private:
    KeyLoader m_loader;
    std::atomic<std::shared_ptr<const KeySet>> m_current;
    std::mutex m_reload_mutex;
};

} // namespace hookctl::receive
