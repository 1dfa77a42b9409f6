#pragma once

// The rules of encryption at rest, above the storage: what an archive records about its
// encryption (the `archive_meta` table), which key may read and write it, and how a value
// read from the file becomes bytes for the caller (hookctl-events(1), ENCRYPTION). Pure: the
// archive reads and writes the state; these functions decide.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/archive/body_cipher.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::archive {

// What `archive_meta` says about encryption.
struct EncryptionState {
    bool encrypted = false;
    // The keys bodies may be under (ids). A writer's key must be one of them; a reader's key
    // must be one of them.
    std::vector<std::string> key_ids;
    // An unfinished `events rekey` to key `to`: values up to the cursors are done.
    struct Rekey {
        std::string to;
        std::int64_t bodies_after = 0;   // event_bodies.seq done
        std::int64_t reparses_after = 0; // event_reparses.id done
        // Encrypting an archive that held values in clear: those at or below these rows that
        // are not sealed yet are in clear (0: none).
        std::int64_t bodies_plain_until = 0;
        std::int64_t reparses_plain_until = 0;
    };
    std::optional<Rekey> rekey;

    bool has_key(std::string_view id) const;
};

// The state of `meta` (the rows of archive_meta); an empty map is an archive in clear.
// Fails (exit 4) on rows this hookctl cannot read.
Result<EncryptionState> encryption_from_meta(const std::map<std::string, std::string>& meta);
// The rows that record `state` (every key; absent values as empty text).
std::map<std::string, std::string> encryption_to_meta(const EncryptionState& state);

// Which table a stored value lives in, for the plain-text window of an unfinished encryption.
enum class StoredTable { bodies, reparses };

// The field names values are bound to.
inline constexpr std::string_view k_field_body = "body";
inline constexpr std::string_view k_field_raw_mime = "raw_mime";
std::string reparse_field(std::int64_t version); // `reparse:N`

// Turns values into what is stored and back, for one archive handle: the state it last read
// and the keys it was opened with (none: reads and writes in clear only).
class BodyCodec {
public:
    BodyCodec() = default;
    BodyCodec(std::shared_ptr<const BodyCipher> cipher, std::string path);

    const std::shared_ptr<const BodyCipher>& cipher() const { return m_cipher; }
    const EncryptionState& state() const { return m_state; }
    void set_state(EncryptionState state) { m_state = std::move(state); }

    // At open: fails (exit 4) when the archive is encrypted and none of the given keys is one
    // of its keys (a wrong key: nothing is read or written).
    Result<void> check_key() const;

    // Before storing values, with the state just read in the write transaction: fails (exit 4)
    // when bodies cannot be stored as this handle would (an encrypted archive and no key, or a
    // key the archive does not use; a key given for an archive that holds values in clear).
    // Returns the state to record when an archive without values becomes encrypted.
    Result<std::optional<EncryptionState>> check_write(bool archive_has_values) const;

    // The stored form of `plaintext`: sealed under the write key when the archive is
    // encrypted (check_write passed), else the bytes as they are.
    Result<std::string> encode(std::string_view plaintext, std::string_view field,
                               std::string_view event_id) const;

    // True when `stored` looks sealed while the state says the archive is in clear: the state
    // may be stale (encrypted since it was read); read it again before decode().
    bool stale_for(std::string_view stored) const;

    // The bytes of a stored value of `field` of `event_id` in row `row` of `table`. Fails
    // (exit 4) when it is sealed and no key was given, under a key not given, not authentic, or
    // in clear in an encrypted archive (outside an unfinished encryption).
    Result<std::string> decode(std::string stored, std::string_view field,
                               std::string_view event_id, StoredTable table,
                               std::int64_t row) const;

    // True when `stored` is sealed under the key `key_id`.
    static bool sealed_under(std::string_view stored, std::string_view key_id);

private:
    bool plain_window(StoredTable table, std::int64_t row) const;

    std::shared_ptr<const BodyCipher> m_cipher;
    std::string m_path;
    EncryptionState m_state;
};

} // namespace hookctl::archive
