#pragma once

// The keyring file (format version 1, JSON; see hookctl-secret(1)) and its locked I/O. The model
// it stores, and rotations of it, are in keyring.hpp.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/keys/keyring.hpp>
#include <hookctl/keys/secret.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::keys {

// The keyring file format, version 1 (JSON; see hookctl-secret(1)).
std::string to_json(const Keyring& keyring);

// Parses a keyring document; fails (exit 2) naming `path` and what is wrong, never echoing a
// secret. Checks: one primary at most, unique ids and fingerprints, known states and families.
Result<Keyring> parse_keyring(std::string_view text, const std::string& path);

// Reads the keyring at `path`. Fails (exit 2) when it does not exist, when its group or others
// have any permission on it (like ssh with private keys: `chmod 600 FILE`), or when it is
// corrupt. Reading takes no lock: writers replace the file atomically.
Result<Keyring> read_keyring(const std::string& path);

// Reads, changes and writes back the keyring at `path` while holding an exclusive flock on
// `path.lock`, so concurrent writers are serialised and none loses another's change. When the
// file does not exist and `create` is true, `change` gets an empty keyring and the file is
// created mode 0600; otherwise a missing file fails (exit 2). The file is written only when
// `change` succeeds: temp file beside it (0600), fsync, rename, fsync of the folder. A corrupt
// or too-open file fails before `change` runs and is never overwritten.
Result<Keyring> update_keyring(const std::string& path, bool create,
                               const std::function<Result<void>(Keyring&)>& change);

// The secrets of the keyring at `path` valid at `now`, in signing order, as `SecretText`s
// named `keyring PATH (ID)`. Fails (exit 2) when the keyring cannot be read or holds no valid
// secret.
Result<std::vector<SecretText>> keyring_secrets(const std::string& path, std::int64_t now);

} // namespace hookctl::keys
