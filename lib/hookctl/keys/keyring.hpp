#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/keys/secret.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::keys {

// What a keyring secret is for: an HMAC secret, an ed25519 key (pair or public key only), or
// an archive key (`hkak_`, encrypts archive bodies: hookctl::keys::load_archive_keys; never
// used to sign or verify).
enum class KeyFamily { hmac, ed25519, archive };

// Where a keyring secret is in its life. `primary` signs and verifies; `verify-only` verifies
// until its `not_after` (if any); `retired` does neither and is kept for the record.
enum class KeyState { primary, verify_only, retired };

std::string_view to_string(KeyFamily family);
std::string_view to_string(KeyState state);
// The inverse of to_string: nothing for a name that is not one.
std::optional<KeyFamily> parse_key_family(std::string_view s);
std::optional<KeyState> parse_key_state(std::string_view s);

// One change in a secret's life: what happened, when (Unix seconds), by whom, on which host.
struct KeyEvent {
    std::string what;
    std::int64_t when = 0;
    std::string user;
    std::string host;
};

// Who makes a change: recorded in each secret's history.
struct Actor {
    std::string user;
    std::string host;
};

// The current user (login name, or uid when unknown) and host name.
Actor current_actor();

// One secret of a keyring.
struct KeyEntry {
    std::string id;          // `k1`, `k2`, ...: unique within the keyring, never reused
    std::string fingerprint; // as `fingerprint()`: of the decoded key (whsec_/whsk_/whpk_) or raw
    KeyFamily family = KeyFamily::hmac;
    SecretBytes secret;     // the secret as written: `whsec_...`, `whsk_...`, `whpk_...` or raw
    std::string public_key; // ed25519 only: `whpk_...` (not secret)
    KeyState state = KeyState::verify_only;
    std::int64_t created_at = 0;
    std::optional<std::int64_t> not_after;   // verify-only: the last second it verifies
    std::optional<std::string> rotated_from; // set by `rotate begin`: the previous primary's id
    std::vector<KeyEvent> history;

    // True when this secret signs or verifies at `now`: the primary, or a verify-only secret
    // whose `not_after` is absent or not yet passed (`now <= not_after`).
    bool valid_at(std::int64_t now) const;
};

// A keyring: secrets in the order they were added.
struct Keyring {
    std::vector<KeyEntry> keys;

    // The primary secret, or null when there is none (an empty keyring).
    const KeyEntry* primary() const;
    KeyEntry* primary();

    // The secret named `id_or_fingerprint` (its id, or its fingerprint), or null.
    const KeyEntry* find(std::string_view id_or_fingerprint) const;
    KeyEntry* find(std::string_view id_or_fingerprint);

    // Secrets valid at `now`, in signing order: the primary first, then verify-only secrets,
    // newest first.
    std::vector<const KeyEntry*> valid_at(std::int64_t now) const;

    // True when a rotation window is open at `now`: a verify-only secret with a `not_after`
    // that has not passed.
    bool rotation_in_progress(std::int64_t now) const;

    // The next time after `now` at which the set of valid secrets changes (a window ends), so
    // a long-running verifier can reload then; nothing when no window is open.
    std::optional<std::int64_t> next_change_after(std::int64_t now) const;
};

// How a fresh HMAC secret is written: `whsec_` + base64 (Standard Webhooks), or lowercase hex.
enum class SecretFormat { whsec, hex };

// A fresh secret from OpenSSL's CSPRNG: 32 random bytes as `format` says for HMAC; for ed25519
// a key pair (the secret `whsk_` + base64 seed, the public `whpk_` + base64 key).
struct NewSecret {
    KeyFamily family = KeyFamily::hmac;
    SecretBytes secret;
    std::string public_key; // ed25519 only
    std::string fingerprint;
};
Result<NewSecret> generate_secret(KeyFamily family, SecretFormat format);

// Reads a secret given as text (`whsec_`, `whsk_`, `whpk_` or raw): its family, fingerprint and
// (for ed25519) public key. Fails (exit 2) naming `origin` on a malformed value.
Result<NewSecret> describe_secret(const SecretBytes& text, const std::string& origin);

// The format of `secret` (hex when it is 64 lowercase hex digits, whsec otherwise), so a
// rotation generates a successor written like its predecessor.
SecretFormat format_of(const KeyEntry& entry);

// Adds `secret` to `keyring` at `now` by `actor`: as the primary when the keyring has no
// primary, else with `state` (verify-only by default, with `not_after` if given). Fails (exit 2)
// when the keyring already holds a secret with the same fingerprint, or when `state` is
// primary and a primary exists (use a rotation). Returns the new secret's id.
struct AddOptions {
    std::optional<KeyState> state;
    std::optional<std::int64_t> not_after;
    std::string what = "secret import"; // the command, for the history
};
Result<std::string> add_secret(Keyring& keyring, const NewSecret& secret, std::int64_t now,
                               const Actor& actor, const AddOptions& options = {});

// `rotate begin`: `secret` becomes the primary; the old primary becomes verify-only until
// `now + window_seconds`. Verify-only secrets whose window already ended are retired. Fails
// (exit 2) when the keyring has no primary, when `secret` is already in it, or when a
// rotation window is open and `force` is false. Returns the new primary's id.
Result<std::string> begin_rotation(Keyring& keyring, const NewSecret& secret,
                                   std::int64_t window_seconds, bool force, std::int64_t now,
                                   const Actor& actor);

// `rotate finish`: retires every verify-only secret. Returns their ids (empty: nothing to do).
std::vector<std::string> finish_rotation(Keyring& keyring, std::int64_t now, const Actor& actor);

// `rotate abort`: the primary made by the last `rotate begin` is retired and the secret it
// replaced (still verify-only) becomes primary again. Fails (exit 2) when there is no
// rotation to abort (the primary was not made by `rotate begin`, or `rotate finish` already
// retired its predecessor). Returns the restored primary's id.
Result<std::string> abort_rotation(Keyring& keyring, std::int64_t now, const Actor& actor);

// A secret as `secret show` and `rotate status` present it: id, fingerprint, family, state,
// `valid` at `now`, created_at, not_after, `seconds_left` in its window, public_key,
// rotated_from, and its history when `history` is set. The secret itself only when `reveal`.
nlohmann::json describe_entry(const KeyEntry& entry, std::int64_t now, bool reveal, bool history);

} // namespace hookctl::keys
