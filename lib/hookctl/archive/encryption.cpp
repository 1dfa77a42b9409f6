#include <algorithm>

#include <nlohmann/json.hpp>

#include <hookctl/archive/encryption.hpp>

namespace hookctl::archive {
namespace {

using json = nlohmann::json;

constexpr std::string_view k_algorithm = "aes-256-gcm";

std::string join(const std::vector<std::string>& ids) {
    std::string out;
    for (const auto& id : ids) {
        out += (out.empty() ? "" : ", ") + id;
    }
    return out;
}

} // namespace

bool EncryptionState::has_key(std::string_view id) const {
    return std::find(key_ids.begin(), key_ids.end(), id) != key_ids.end();
}

Result<EncryptionState> encryption_from_meta(const std::map<std::string, std::string>& meta) {
    EncryptionState state;
    auto bad = [](const std::string& what) {
        return fail(ExitCode::environment,
                    "archive_meta " + what +
                        ": written by a newer or another tool; upgrade hookctl or restore the "
                        "archive from a copy");
    };
    auto value = [&](const char* key) -> std::string {
        auto it = meta.find(key);
        return it == meta.end() ? std::string() : it->second;
    };
    const std::string algorithm = value("encryption");
    if (algorithm.empty() || algorithm == "none") {
        return state;
    }
    if (algorithm != k_algorithm) {
        return bad("names encryption '" + algorithm + "', which this hookctl does not know");
    }
    state.encrypted = true;
    auto ids = json::parse(value("key_ids"), nullptr, false);
    if (!ids.is_array() || ids.empty()) {
        return bad("key_ids is not a non-empty list of key ids");
    }
    for (const auto& id : ids) {
        if (!id.is_string() || id.get<std::string>().empty()) {
            return bad("key_ids holds something other than key ids");
        }
        state.key_ids.push_back(id.get<std::string>());
    }
    const std::string rekey = value("rekey");
    if (!rekey.empty()) {
        auto doc = json::parse(rekey, nullptr, false);
        if (!doc.is_object() || !doc.contains("to") || !doc["to"].is_string()) {
            return bad("rekey is not a rekey record");
        }
        EncryptionState::Rekey r;
        r.to = doc["to"].get<std::string>();
        auto number = [&](const char* key) -> std::int64_t {
            auto it = doc.find(key);
            return it != doc.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
        };
        r.bodies_after = number("bodies_after");
        r.reparses_after = number("reparses_after");
        r.bodies_plain_until = number("bodies_plain_until");
        r.reparses_plain_until = number("reparses_plain_until");
        state.rekey = r;
    }
    return state;
}

std::map<std::string, std::string> encryption_to_meta(const EncryptionState& state) {
    std::map<std::string, std::string> meta{{"encryption", "none"}, {"key_ids", ""}, {"rekey", ""}};
    if (!state.encrypted) {
        return meta;
    }
    meta["encryption"] = std::string(k_algorithm);
    meta["key_ids"] = json(state.key_ids).dump();
    if (state.rekey) {
        const auto& r = *state.rekey;
        meta["rekey"] = json{{"to", r.to},
                             {"bodies_after", r.bodies_after},
                             {"reparses_after", r.reparses_after},
                             {"bodies_plain_until", r.bodies_plain_until},
                             {"reparses_plain_until", r.reparses_plain_until}}
                            .dump();
    }
    return meta;
}

std::string reparse_field(std::int64_t version) {
    return "reparse:" + std::to_string(version);
}

BodyCodec::BodyCodec(std::shared_ptr<const BodyCipher> cipher, std::string path)
    : m_cipher(std::move(cipher))
    , m_path(std::move(path)) {}

Result<void> BodyCodec::check_key() const {
    if (!m_state.encrypted || !m_cipher) {
        return {};
    }
    for (const auto& id : m_cipher->key_ids()) {
        if (m_state.has_key(id)) {
            return {};
        }
    }
    return fail(ExitCode::environment,
                "archive " + m_path + " is encrypted under archive key " + join(m_state.key_ids) +
                    " and the key given is " + join(m_cipher->key_ids()) +
                    ": pass the archive's --archive-key (nothing was read or changed)");
}

Result<std::optional<EncryptionState>> BodyCodec::check_write(bool archive_has_values) const {
    if (m_state.encrypted) {
        if (!m_cipher) {
            return fail(ExitCode::environment,
                        "archive " + m_path +
                            " is encrypted and no archive key was given: its bodies are not "
                            "stored in clear; pass --archive-key FILE (key " +
                            join(m_state.key_ids) + ")");
        }
        if (!m_state.has_key(m_cipher->write_key_id())) {
            return fail(ExitCode::environment,
                        "archive " + m_path + " is encrypted under archive key " +
                            join(m_state.key_ids) + ", not under key " + m_cipher->write_key_id() +
                            " given to write with: pass the archive's key, or move the archive "
                            "to the new key first with `hookctl events rekey --archive " +
                            m_path + " --archive-key NEW --old-key OLD`");
        }
        return std::optional<EncryptionState>();
    }
    if (!m_cipher) {
        return std::optional<EncryptionState>();
    }
    if (archive_has_values) {
        return fail(ExitCode::environment,
                    "archive " + m_path +
                        " holds events stored in clear, and an archive key was given: encrypt "
                        "what it holds first with `hookctl events rekey --archive " +
                        m_path +
                        " --archive-key FILE` (an archive is encrypted whole or not at all)");
    }
    EncryptionState state;
    state.encrypted = true;
    state.key_ids = {m_cipher->write_key_id()};
    return std::optional<EncryptionState>(std::move(state));
}

Result<std::string> BodyCodec::encode(std::string_view plaintext, std::string_view field,
                                      std::string_view event_id) const {
    if (!m_state.encrypted) {
        if (m_cipher) {
            return fail(ExitCode::environment, "archive " + m_path +
                                                   ": an archive key was given but the archive is "
                                                   "not recorded as encrypted (internal error: "
                                                   "check_write was skipped)");
        }
        return std::string(plaintext);
    }
    if (!m_cipher || !m_state.has_key(m_cipher->write_key_id())) {
        auto checked = check_write(true);
        return std::unexpected(
            checked ? Error{ExitCode::environment, "archive " + m_path + ": cannot encrypt"}
                    : checked.error());
    }
    auto sealed = m_cipher->seal(plaintext, field, event_id);
    if (!sealed) {
        return fail(sealed.error().code, "archive " + m_path + ": " + sealed.error().message);
    }
    return sealed;
}

bool BodyCodec::stale_for(std::string_view stored) const {
    return !m_state.encrypted && is_sealed(stored);
}

bool BodyCodec::plain_window(StoredTable table, std::int64_t row) const {
    if (!m_state.rekey) {
        return false;
    }
    return row <= (table == StoredTable::bodies ? m_state.rekey->bodies_plain_until
                                                : m_state.rekey->reparses_plain_until);
}

Result<std::string> BodyCodec::decode(std::string stored, std::string_view field,
                                      std::string_view event_id, StoredTable table,
                                      std::int64_t row) const {
    if (!m_state.encrypted) {
        return stored;
    }
    const bool window = plain_window(table, row);
    if (!is_sealed(stored)) {
        if (window) {
            return stored; // not encrypted yet by an unfinished `events rekey`
        }
        return fail(ExitCode::environment,
                    "archive " + m_path + ": the " + std::string(field) + " of event " +
                        std::string(event_id) +
                        " is stored in clear in an encrypted archive: it was altered, or "
                        "written by a program that ignores the archive's encryption; nothing "
                        "was read from it");
    }
    if (!m_cipher) {
        return fail(ExitCode::environment,
                    "archive " + m_path + " is encrypted (archive key " + join(m_state.key_ids) +
                        "): pass --archive-key FILE to read the " + std::string(field) +
                        " of event " + std::string(event_id));
    }
    auto opened = m_cipher->open(stored, field, event_id);
    if (!opened) {
        auto id = sealed_key_id(stored);
        const bool known_key_missing = id && m_state.has_key(*id) && !m_cipher->has_key(*id);
        if (window && !known_key_missing) {
            return stored; // bytes in clear that happen to start like an envelope
        }
        return fail(opened.error().code, "archive " + m_path + ": " + opened.error().message);
    }
    return opened;
}

bool BodyCodec::sealed_under(std::string_view stored, std::string_view key_id) {
    auto id = sealed_key_id(stored);
    return id && *id == key_id;
}

} // namespace hookctl::archive
