#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/util/error.hpp>

namespace hookctl::keys {

// Bytes of a secret, wiped (OPENSSL_cleanse) when destroyed. Never printed or logged.
class SecretBytes {
public:
    SecretBytes() = default;
    explicit SecretBytes(std::string bytes)
        : m_bytes(std::move(bytes)) {}
    SecretBytes(const SecretBytes& other) = default;
    SecretBytes(SecretBytes&& other) noexcept;
    SecretBytes& operator=(const SecretBytes& other);
    SecretBytes& operator=(SecretBytes&& other) noexcept;
    ~SecretBytes();

    std::string_view view() const { return m_bytes; }
    bool empty() const { return m_bytes.empty(); }
    std::size_t size() const { return m_bytes.size(); }

private:
    void wipe();
    std::string m_bytes;
};

// Wipes a string that held secret material (OPENSSL_cleanse), then empties it.
void cleanse(std::string& s);

// Where a secret comes from. Secrets never come from argv (process lists and shell history
// leak them): only from an environment variable, a file (`-` is stdin) or a keyring file.
struct SecretSource {
    enum class Kind { env, file, keyring };
    Kind kind = Kind::env;
    std::string where; // the variable name or the path

    // A file source named `-`: stdin, which can be read only once.
    bool is_stdin() const { return kind == Kind::file && where == "-"; }

    // `env NAME`, `file PATH`, `keyring PATH`: how errors and logs name the source.
    std::string describe() const;
};

// A secret as loaded, before it is decoded for a scheme.
struct SecretText {
    SecretBytes text;
    std::string origin;      // SecretSource::describe(), for error messages
    bool from_stdin = false; // read from stdin (`file -`): it cannot be read a second time, so
                             // whoever loads the secrets again keeps this one
};

// The rule for every file a secret is read from (`--secret-file`, a target's `secret_file`, a
// keyring), checked on the open file `fd` named `path`: a regular file that its group or others
// may read, write or run is refused (exit 2) with the fix (`chmod 600 PATH`), as ssh refuses such
// private keys: whoever can read the secret can forge webhooks, whoever can write it can swap it.
// Pipes and other non-regular files (`--secret-file <(vault read ...)`, stdin) have no mode to
// judge and pass, unless `regular_only` (keyrings, which are replaced atomically) refuses them.
// `what` names the file in the message: "secret file", "keyring".
Result<void> check_secret_file(int fd, const std::string& path, std::string_view what,
                               bool regular_only = false);

// The rule for a secret's text, wherever it came from (`origin` names it): empty or only
// whitespace is refused (exit 2). Shorter than 16 bytes (for `whsec_...`, of the decoded key)
// is allowed, and the returned warning says so; nothing when the secret is long enough. Neither
// message holds the secret.
Result<std::optional<std::string>> check_secret_text(std::string_view text,
                                                     const std::string& origin);

// Where load_secrets reports the warnings of check_secret_text: set once by the program (hookctl
// prints them on stderr); without a sink they are dropped. May be called from any thread.
using WarningSink = std::function<void(const std::string& message)>;
void set_warning_sink(WarningSink sink);

// Writes `secret` and a newline to the new file `path`, mode 0600 from the moment it exists
// (whatever the umask), synced to disk. An existing file is refused (exit 2) unless `overwrite`,
// which replaces it atomically. Fails (exit 4) when the folder cannot be written; a failed write
// leaves no file behind.
Result<void> write_secret_file(const std::string& path, const SecretBytes& secret, bool overwrite);

// Loads every source in order. Fails (exit 2) naming the source when a variable is unset, a
// file cannot be read or is too open (check_secret_file), stdin is named twice, or a secret is
// empty or only whitespace (check_secret_text; a short one is reported to the warning sink).
// One trailing newline (`\n` or `\r\n`) of a file or variable is dropped, as `echo` and
// editors add one.
// A keyring source yields the secrets valid at `at_s` (Unix seconds, the caller's clock), in
// signing order: its primary first, then its verify-only secrets whose window is open
// (hookctl::keys::keyring_secrets); it fails when the keyring is unreadable, too open, corrupt
// or holds no valid secret.
Result<std::vector<SecretText>> load_secrets(const std::vector<SecretSource>& sources,
                                             std::int64_t at_s);

// What a decoded key is used for.
enum class KeyKind { hmac, ed25519_private, ed25519_public };

// How a scheme reads its secrets: Standard Webhooks and Svix use `whsec_<base64>` for HMAC
// keys and `whsk_`/`whpk_` (base64) for ed25519; the other schemes use the raw bytes.
enum class SecretEncoding { raw, standard_webhooks };

// A secret decoded for signing or verifying.
struct Key {
    KeyKind kind = KeyKind::hmac;
    SecretBytes bytes;       // HMAC key, ed25519 32-byte seed, or ed25519 32-byte public key
    std::string public_key;  // ed25519 only: the 32-byte public key
    std::string fingerprint; // first 8 hex of SHA-256 of the HMAC key or ed25519 public key;
                             // of the decoded bytes for a `whsec_` secret even when used raw
    std::string origin;
};

// Decodes `secret` as `encoding` says. Fails (exit 2) on a malformed `whsec_`/`whsk_`/`whpk_`
// value, naming the secret's origin, never its bytes.
Result<Key> decode_key(const SecretText& secret, SecretEncoding encoding);

// Decodes every secret; the first failure is returned.
Result<std::vector<Key>> decode_keys(const std::vector<SecretText>& secrets,
                                     SecretEncoding encoding);

// The short fingerprint that names key bytes in output: first 8 hex of their SHA-256.
std::string fingerprint(std::string_view key_bytes);

} // namespace hookctl::keys
