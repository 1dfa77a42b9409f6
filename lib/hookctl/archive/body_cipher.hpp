#pragma once

// Encryption at rest of an archive's bodies (hookctl-events(1), ENCRYPTION): AES-256-GCM by
// OpenSSL's EVP interface, each value sealed in a small self-describing envelope
//
//   offset 0   4 bytes   magic "\x89HKE"
//          4   1 byte    format version: 1 = the value, 2 = the value as one zstd frame
//          5   1 byte    L, the length of the key id
//          6   L bytes   key id (the key's fingerprint, 8 hex)
//          6+L 12 bytes  nonce (random, fresh for every value)
//          18+L ...      ciphertext (as long as the plaintext: the value or its zstd frame)
//          end-16        GCM tag (16 bytes)
//
// seal() compresses a value of 128 bytes or more with zstd (fast level -3) and writes version 2
// when the frame is shorter than the value, else version 1. Without it a sealed 2 KiB body, 42
// bytes longer than in clear, no longer shared a 4 KiB SQLite page with the next one, and listen
// wrote about twice the pages (bench/atrest.sh).
//
// authenticated with associated data = the header (bytes 0 .. 6+L), the field (`body`,
// `raw_mime`, `reparse:N`) and the event id: a value moved to another row or another column,
// or altered, fails authentication instead of reading as another event's bytes.
//
// Thread-safety: a BodyCipher is immutable after make(); seal() and open() may run on many
// threads at once (each call has its own EVP context).

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/keys/archive_key.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::archive {

// The magic at the start of every sealed value.
inline constexpr std::string_view k_sealed_magic{"\x89HKE", 4};
// Bytes a sealed value adds to its plaintext (or to its zstd frame), for a key id of 8
// characters.
inline constexpr std::size_t k_sealed_overhead = 4 + 1 + 1 + 8 + 12 + 16;

// True when `bytes` starts like a sealed value (magic and version); says nothing of whether
// it authenticates.
bool is_sealed(std::string_view bytes);

// The key id a sealed value names, or nothing when `bytes` is not a well-formed envelope.
std::optional<std::string> sealed_key_id(std::string_view bytes);

class BodyCipher {
public:
    // A cipher over `keys` (at least one; each 32 bytes, ids unique): the first encrypts
    // (the write key), every one decrypts. Fails (exit 2) on an empty list or a bad key.
    static Result<std::shared_ptr<const BodyCipher>> make(std::vector<keys::ArchiveKey> keys);

    BodyCipher(const BodyCipher&) = delete;
    BodyCipher& operator=(const BodyCipher&) = delete;
    ~BodyCipher();

    // The id of the key that encrypts.
    const std::string& write_key_id() const;
    // The ids of every key, the write key first.
    std::vector<std::string> key_ids() const;
    bool has_key(std::string_view id) const;

    // Seals `plaintext` under the write key, bound to `field` and `event_id`. Fails (exit 4)
    // only when OpenSSL does (no randomness, out of memory).
    Result<std::string> seal(std::string_view plaintext, std::string_view field,
                             std::string_view event_id) const;

    // Opens a sealed value of `field` of `event_id`. Fails (exit 4) saying why: not an
    // envelope, under a key this cipher does not hold (naming its id), or not authentic (altered,
    // or moved from another row or column). Never returns unauthenticated bytes.
    Result<std::string> open(std::string_view sealed, std::string_view field,
                             std::string_view event_id) const;

private:
    struct Impl;
    explicit BodyCipher(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace hookctl::archive
