#pragma once

// Archive keys: the 256-bit AES keys that encrypt archive bodies at rest (hookctl-events(1),
// ENCRYPTION). An archive key is written `hkak_` + base64 of its 32 bytes (what `hookctl secret
// new --kind archive` makes); a key file may also hold 64 hex digits or the 32 raw bytes. A key
// is named by its id: its fingerprint (first 8 hex of the SHA-256 of the 32 bytes), as `secret
// show` names every secret.

#include <string>
#include <string_view>
#include <vector>

#include <hookctl/keys/secret.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::keys {

inline constexpr std::size_t k_archive_key_bytes = 32;
inline constexpr std::string_view k_archive_key_prefix = "hkak_";

// One archive key: its 32 bytes and its id.
struct ArchiveKey {
    std::string id;
    SecretBytes bytes;
    std::string origin; // where it was read (`file PATH`, `keyring PATH (k2)`), for messages
};

// True when `text` is written as an archive key (`hkak_...`).
bool is_archive_key_text(std::string_view text);

// Decodes an archive key's text: `hkak_` + base64 of 32 bytes, 64 hex digits, or exactly 32
// raw bytes (one trailing newline of a text form is ignored). Fails (exit 2) naming `origin`,
// never echoing the key.
Result<ArchiveKey> decode_archive_key(std::string_view text, const std::string& origin);

// A fresh archive key from OpenSSL's CSPRNG, as text (`hkak_...`).
SecretBytes generate_archive_key_text();

// The archive keys in `path`: a key file (one key), or a hookctl keyring (its archive keys,
// the primary first, then the others newest first: every one decrypts, the first encrypts).
// Like every secret file (keys::check_secret_file), `path` must not be open to its group or
// others (`chmod 600`); a pipe (`--archive-key <(vault read ...)`) passes. Fails (exit 2) naming
// the file and the fix when it is missing, too open, malformed, or a keyring without an archive
// key.
Result<std::vector<ArchiveKey>> load_archive_keys(const std::string& path);

} // namespace hookctl::keys
