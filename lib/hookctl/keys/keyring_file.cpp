#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <hookctl/keys/keyring_file.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/time.hpp>

// The keyring file: its JSON format (version 1, hookctl-secret(1)) and its I/O, a lock-free
// read and a locked read-change-write with an atomic replace. The model and its rotations are
// in keyring.cpp.

namespace hookctl::keys {

namespace {

using nlohmann::json;

constexpr std::string_view k_format = "hookctl-keyring";
constexpr int k_version = 1;

std::string errno_text(int err) {
    return std::strerror(err);
}

Result<void> fsync_parent(const std::string& path) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    util::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) != 0) {
        return fail(ExitCode::environment,
                    "keyring " + path + ": cannot sync folder " + dir + ": " + errno_text(errno));
    }
    return {};
}

} // namespace

std::string to_json(const Keyring& keyring) {
    json doc = {{"format", k_format}, {"version", k_version}, {"keys", json::array()}};
    for (const auto& e : keyring.keys) {
        json history = json::array();
        for (const auto& h : e.history) {
            history.push_back({{"what", h.what},
                               {"when", util::format_time_s(h.when)},
                               {"user", h.user},
                               {"host", h.host}});
        }
        json entry = {{"id", e.id},
                      {"fingerprint", e.fingerprint},
                      {"family", to_string(e.family)},
                      {"state", to_string(e.state)},
                      {"created_at", util::format_time_s(e.created_at)},
                      {"not_after", nullptr},
                      {"secret", std::string(e.secret.view())},
                      {"history", history}};
        if (e.not_after) {
            entry["not_after"] = util::format_time_s(*e.not_after);
        }
        if (!e.public_key.empty()) {
            entry["public_key"] = e.public_key;
        }
        if (e.rotated_from) {
            entry["rotated_from"] = *e.rotated_from;
        }
        doc["keys"].push_back(std::move(entry));
    }
    std::string out = doc.dump(2) + "\n";
    // The document's copy of each secret lives until here; wipe what nlohmann allocated.
    for (auto& entry : doc["keys"]) {
        cleanse(entry["secret"].get_ref<std::string&>());
    }
    return out;
}

Result<Keyring> parse_keyring(std::string_view text, const std::string& path) {
    auto corrupt = [&](const std::string& what) {
        return fail(ExitCode::usage,
                    "keyring " + path + " is corrupt: " + what +
                        "; it was left untouched: restore it from a backup, or fix it by hand "
                        "(see hookctl-secret(1), FILES)");
    };
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::parse_error& e) {
        // e.what() may quote the bytes it choked on (a secret): say only where.
        return corrupt("not valid JSON (error at byte " + std::to_string(e.byte) + ")");
    }
    if (!doc.is_object() || doc.value("format", std::string()) != k_format) {
        return corrupt("not a hookctl keyring (\"format\" is not \"hookctl-keyring\")");
    }
    if (!doc.contains("version") || !doc["version"].is_number_integer() ||
        doc["version"].get<int>() != k_version) {
        return corrupt("unsupported \"version\" (this hookctl reads version 1)");
    }
    if (!doc.contains("keys") || !doc["keys"].is_array()) {
        return corrupt("\"keys\" is missing or not a list");
    }
    Keyring keyring;
    int primaries = 0;
    for (std::size_t i = 0; i < doc["keys"].size(); ++i) {
        const json& k = doc["keys"][i];
        std::string where = "keys[" + std::to_string(i) + "]";
        auto str = [&](const char* field) -> std::optional<std::string> {
            if (!k.is_object() || !k.contains(field) || !k[field].is_string()) {
                return std::nullopt;
            }
            return k[field].get<std::string>();
        };
        for (const char* field : {"id", "fingerprint", "family", "state", "created_at", "secret"}) {
            if (!str(field)) {
                return corrupt(where + ": \"" + field + "\" is missing or not a string");
            }
        }
        KeyEntry e;
        e.id = *str("id");
        where += " (" + e.id + ")";
        e.fingerprint = *str("fingerprint");
        auto family = parse_key_family(*str("family"));
        auto state = parse_key_state(*str("state"));
        auto created = util::parse_time_s_strict(*str("created_at"));
        if (!family || !state || !created) {
            return corrupt(where + ": bad family, state or created_at");
        }
        e.family = *family;
        e.state = *state;
        e.created_at = *created;
        if (k.contains("not_after") && !k["not_after"].is_null()) {
            auto t = k["not_after"].is_string()
                         ? util::parse_time_s_strict(k["not_after"].get<std::string>())
                         : std::nullopt;
            if (!t) {
                return corrupt(where + ": bad not_after");
            }
            e.not_after = *t;
        }
        if (auto from = str("rotated_from")) {
            e.rotated_from = *from;
        }
        if (auto pub = str("public_key")) {
            e.public_key = *pub;
        }
        std::string secret = *str("secret");
        e.secret = SecretBytes(secret);
        cleanse(secret);
        if (e.secret.empty()) {
            return corrupt(where + ": \"secret\" is empty");
        }
        auto described = describe_secret(e.secret, "keyring " + path + " " + where);
        if (!described) {
            return corrupt(where + ": the secret cannot be read");
        }
        if (described->fingerprint != e.fingerprint || described->family != e.family) {
            return corrupt(where + ": the fingerprint or family does not match the secret");
        }
        if (k.contains("history") && k["history"].is_array()) {
            for (const auto& h : k["history"]) {
                if (!h.is_object()) {
                    return corrupt(where + ": a history entry is not an object");
                }
                KeyEvent ev;
                ev.what = h.value("what", std::string());
                ev.user = h.value("user", std::string());
                ev.host = h.value("host", std::string());
                auto when = util::parse_time_s_strict(h.value("when", std::string()));
                if (!when) {
                    return corrupt(where + ": a history entry has a bad \"when\"");
                }
                ev.when = *when;
                e.history.push_back(std::move(ev));
            }
        }
        if (keyring.find(e.id) != nullptr || keyring.find(e.fingerprint) != nullptr) {
            return corrupt(where + ": duplicate id or fingerprint");
        }
        primaries += e.state == KeyState::primary ? 1 : 0;
        keyring.keys.push_back(std::move(e));
    }
    if (primaries > 1) {
        return corrupt("more than one primary secret");
    }
    return keyring;
}

Result<Keyring> read_keyring(const std::string& path) {
    util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        int err = errno;
        if (err == ENOENT) {
            return fail(ExitCode::usage, "keyring " + path +
                                             " does not exist: create it with 'hookctl secret "
                                             "new --keyring " +
                                             path + "' (or check the path)");
        }
        return fail(ExitCode::usage, "cannot open keyring " + path + ": " + errno_text(err));
    }
    if (auto safe = check_secret_file(fd.get(), path, "keyring", true); !safe) {
        return std::unexpected(safe.error());
    }
    std::string text;
    {
        char buffer[65536];
        for (;;) {
            ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                int err = errno;
                cleanse(text);
                return fail(ExitCode::usage,
                            "cannot read keyring " + path + ": " + errno_text(err));
            }
            if (n == 0) {
                break;
            }
            text.append(buffer, static_cast<std::size_t>(n));
        }
        OPENSSL_cleanse(buffer, sizeof buffer);
    }
    auto keyring = parse_keyring(text, path);
    cleanse(text);
    return keyring;
}

Result<Keyring> update_keyring(const std::string& path, bool create,
                               const std::function<Result<void>(Keyring&)>& change) {
    std::string lock_path = path + ".lock";
    util::UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock) {
        return fail(ExitCode::environment, "cannot open lock file " + lock_path + ": " +
                                               errno_text(errno) + " (check the folder)");
    }
    while (::flock(lock.get(), LOCK_EX) != 0) {
        if (errno != EINTR) {
            return fail(ExitCode::environment,
                        "cannot lock " + lock_path + ": " + errno_text(errno));
        }
    }
    Keyring keyring;
    struct stat st {};
    bool exists = ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
    if (exists || !create) {
        auto read = read_keyring(path);
        HOOKCTL_RETURN_IF_ERROR(read);
        keyring = std::move(*read);
    }
    if (auto changed = change(keyring); !changed) {
        return std::unexpected(changed.error());
    }
    std::string text = to_json(keyring);
    auto written = util::write_file_atomic(path, text, 0600);
    cleanse(text);
    HOOKCTL_RETURN_IF_ERROR(written);
    if (auto synced = fsync_parent(path); !synced) {
        return std::unexpected(synced.error());
    }
    return keyring;
}

Result<std::vector<SecretText>> keyring_secrets(const std::string& path, std::int64_t now) {
    auto keyring = read_keyring(path);
    HOOKCTL_RETURN_IF_ERROR(keyring);
    std::vector<SecretText> out;
    for (const KeyEntry* e : keyring->valid_at(now)) {
        if (e->family == KeyFamily::archive) {
            continue; // encrypts archive bodies; never signs or verifies
        }
        out.push_back({e->secret, "keyring " + path + " (" + e->id + ")"});
    }
    if (out.empty()) {
        return fail(ExitCode::usage,
                    "keyring " + path + " holds no secret valid at " + util::format_time_s(now) +
                        ": add one with 'hookctl secret new --keyring " + path + "'");
    }
    return out;
}

} // namespace hookctl::keys
