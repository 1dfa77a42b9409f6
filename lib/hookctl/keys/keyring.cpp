#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <pwd.h>
#include <unistd.h>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <hookctl/keys/archive_key.hpp>
#include <hookctl/keys/keyring.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::keys {

namespace {

using nlohmann::json;

void record(KeyEntry& entry, std::string what, std::int64_t now, const Actor& actor) {
    entry.history.push_back({std::move(what), now, actor.user, actor.host});
}

std::string next_id(const Keyring& keyring) {
    long highest = 0;
    for (const auto& entry : keyring.keys) {
        if (entry.id.size() > 1 && entry.id[0] == 'k') {
            long n = 0;
            auto [end, ec] =
                std::from_chars(entry.id.data() + 1, entry.id.data() + entry.id.size(), n);
            if (ec == std::errc() && end == entry.id.data() + entry.id.size()) {
                highest = std::max(highest, n);
            }
        }
    }
    return "k" + std::to_string(highest + 1);
}

} // namespace

std::optional<KeyState> parse_key_state(std::string_view s) {
    if (s == "primary") {
        return KeyState::primary;
    }
    if (s == "verify-only") {
        return KeyState::verify_only;
    }
    if (s == "retired") {
        return KeyState::retired;
    }
    return std::nullopt;
}

std::optional<KeyFamily> parse_key_family(std::string_view s) {
    if (s == "hmac") {
        return KeyFamily::hmac;
    }
    if (s == "ed25519") {
        return KeyFamily::ed25519;
    }
    if (s == "archive") {
        return KeyFamily::archive;
    }
    return std::nullopt;
}

std::string_view to_string(KeyFamily family) {
    switch (family) {
    case KeyFamily::hmac:
        return "hmac";
    case KeyFamily::ed25519:
        return "ed25519";
    case KeyFamily::archive:
        return "archive";
    }
    return "hmac";
}

std::string_view to_string(KeyState state) {
    switch (state) {
    case KeyState::primary:
        return "primary";
    case KeyState::verify_only:
        return "verify-only";
    case KeyState::retired:
        return "retired";
    }
    return "retired";
}

Actor current_actor() {
    Actor actor;
    if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_name != nullptr) {
        actor.user = pw->pw_name;
    } else {
        actor.user = "uid " + std::to_string(::geteuid());
    }
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) {
        actor.host = host;
    }
    return actor;
}

bool KeyEntry::valid_at(std::int64_t now) const {
    switch (state) {
    case KeyState::primary:
        return true;
    case KeyState::verify_only:
        return !not_after || now <= *not_after;
    case KeyState::retired:
        return false;
    }
    return false;
}

const KeyEntry* Keyring::primary() const {
    for (const auto& entry : keys) {
        if (entry.state == KeyState::primary) {
            return &entry;
        }
    }
    return nullptr;
}

KeyEntry* Keyring::primary() {
    return const_cast<KeyEntry*>(std::as_const(*this).primary());
}

const KeyEntry* Keyring::find(std::string_view id_or_fingerprint) const {
    for (const auto& entry : keys) {
        if (entry.id == id_or_fingerprint || entry.fingerprint == id_or_fingerprint) {
            return &entry;
        }
    }
    return nullptr;
}

KeyEntry* Keyring::find(std::string_view id_or_fingerprint) {
    return const_cast<KeyEntry*>(std::as_const(*this).find(id_or_fingerprint));
}

std::vector<const KeyEntry*> Keyring::valid_at(std::int64_t now) const {
    std::vector<const KeyEntry*> out;
    if (const auto* p = primary()) {
        out.push_back(p);
    }
    for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
        if (it->state == KeyState::verify_only && it->valid_at(now)) {
            out.push_back(&*it);
        }
    }
    return out;
}

bool Keyring::rotation_in_progress(std::int64_t now) const {
    return std::any_of(keys.begin(), keys.end(), [&](const KeyEntry& e) {
        return e.state == KeyState::verify_only && e.not_after && now <= *e.not_after;
    });
}

std::optional<std::int64_t> Keyring::next_change_after(std::int64_t now) const {
    std::optional<std::int64_t> next;
    for (const auto& e : keys) {
        if (e.state == KeyState::verify_only && e.not_after && *e.not_after >= now) {
            std::int64_t t = *e.not_after + 1;
            if (!next || t < *next) {
                next = t;
            }
        }
    }
    return next;
}

Result<NewSecret> describe_secret(const SecretBytes& text, const std::string& origin) {
    std::string_view view = text.view();
    NewSecret out;
    out.secret = text;
    if (is_archive_key_text(view)) {
        auto key = decode_archive_key(view, origin);
        HOOKCTL_RETURN_IF_ERROR(key);
        out.family = KeyFamily::archive;
        out.fingerprint = key->id;
        return out;
    }
    bool sw = view.starts_with("whsec_") || view.starts_with("whsk_") || view.starts_with("whpk_");
    auto key = decode_key(SecretText{text, origin},
                          sw ? SecretEncoding::standard_webhooks : SecretEncoding::raw);
    if (!key && view.starts_with("whsec_")) {
        // Not base64 after the prefix: a provider's secret used raw (Stripe writes whsec_...).
        key = decode_key(SecretText{text, origin}, SecretEncoding::raw);
    }
    HOOKCTL_RETURN_IF_ERROR(key);
    out.fingerprint = key->fingerprint;
    if (key->kind == KeyKind::hmac) {
        out.family = KeyFamily::hmac;
    } else {
        out.family = KeyFamily::ed25519;
        out.public_key = "whpk_" + util::base64_encode(key->public_key);
    }
    return out;
}

Result<NewSecret> generate_secret(KeyFamily family, SecretFormat format) {
    if (family == KeyFamily::archive) {
        return describe_secret(generate_archive_key_text(), "a new archive key");
    }
    std::string bytes = util::random_bytes(32);
    std::string text;
    if (family == KeyFamily::ed25519) {
        text = "whsk_" + util::base64_encode(bytes);
    } else if (format == SecretFormat::hex) {
        text = util::hex_encode(bytes);
    } else {
        text = "whsec_" + util::base64_encode(bytes);
    }
    cleanse(bytes);
    SecretBytes secret(text);
    cleanse(text);
    return describe_secret(secret, "a new secret");
}

SecretFormat format_of(const KeyEntry& entry) {
    std::string_view s = entry.secret.view();
    bool hex = s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
                   return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
               });
    return hex ? SecretFormat::hex : SecretFormat::whsec;
}

Result<std::string> add_secret(Keyring& keyring, const NewSecret& secret, std::int64_t now,
                               const Actor& actor, const AddOptions& options) {
    if (const auto* same = keyring.find(secret.fingerprint)) {
        return fail(ExitCode::usage, "the keyring already holds this secret as " + same->id +
                                         " (fingerprint " + same->fingerprint + ", " +
                                         std::string(to_string(same->state)) + ")");
    }
    KeyState state = keyring.primary() == nullptr ? KeyState::primary
                                                  : options.state.value_or(KeyState::verify_only);
    if (state == KeyState::primary && keyring.primary() != nullptr) {
        return fail(ExitCode::usage,
                    "the keyring already has a primary secret (" + keyring.primary()->id +
                        "): make a new primary with 'hookctl rotate begin' instead");
    }
    KeyEntry e;
    e.id = next_id(keyring);
    e.fingerprint = secret.fingerprint;
    e.family = secret.family;
    e.secret = secret.secret;
    e.public_key = secret.public_key;
    e.state = state;
    e.created_at = now;
    if (state == KeyState::verify_only) {
        e.not_after = options.not_after;
    }
    std::string what = "added as " + std::string(to_string(state));
    if (e.not_after) {
        what += " until " + util::format_time_s(*e.not_after);
    }
    record(e, what + " (" + options.what + ")", now, actor);
    keyring.keys.push_back(std::move(e));
    return keyring.keys.back().id;
}

Result<std::string> begin_rotation(Keyring& keyring, const NewSecret& secret,
                                   std::int64_t window_seconds, bool force, std::int64_t now,
                                   const Actor& actor) {
    KeyEntry* old = keyring.primary();
    if (old == nullptr) {
        return fail(ExitCode::usage, "the keyring has no primary secret to rotate: create one "
                                     "with 'hookctl secret new --keyring FILE'");
    }
    if (window_seconds <= 0) {
        return fail(ExitCode::usage, "--window must be longer than zero: it is how long the "
                                     "old secret keeps verifying");
    }
    if (keyring.rotation_in_progress(now) && !force) {
        std::string open;
        for (const auto& e : keyring.keys) {
            if (e.state == KeyState::verify_only && e.not_after && now <= *e.not_after) {
                open = e.id + " (" + e.fingerprint + ") verifies until " +
                       util::format_time_s(*e.not_after);
                break;
            }
        }
        return fail(ExitCode::usage, "a rotation is already in progress: " + open +
                                         "; run 'hookctl rotate finish' (or 'rotate abort') "
                                         "first, or pass --force to start another");
    }
    if (const auto* same = keyring.find(secret.fingerprint)) {
        return fail(ExitCode::usage, "the keyring already holds this secret as " + same->id +
                                         " (fingerprint " + same->fingerprint +
                                         "): a rotation needs a new secret");
    }
    for (auto& e : keyring.keys) {
        if (e.state == KeyState::verify_only && e.not_after && *e.not_after < now) {
            e.state = KeyState::retired;
            record(e,
                   "verify-only -> retired (window ended " + util::format_time_s(*e.not_after) +
                       "; rotate begin)",
                   now, actor);
        }
    }
    std::string old_id = old->id;
    std::int64_t until = now + window_seconds;
    old->state = KeyState::verify_only;
    old->not_after = until;
    record(*old, "primary -> verify-only until " + util::format_time_s(until) + " (rotate begin)",
           now, actor);
    KeyEntry e;
    e.id = next_id(keyring);
    e.fingerprint = secret.fingerprint;
    e.family = secret.family;
    e.secret = secret.secret;
    e.public_key = secret.public_key;
    e.state = KeyState::primary;
    e.created_at = now;
    e.rotated_from = old_id;
    record(e, "created as primary (rotate begin, replaces " + old_id + ")", now, actor);
    keyring.keys.push_back(std::move(e));
    return keyring.keys.back().id;
}

std::vector<std::string> finish_rotation(Keyring& keyring, std::int64_t now, const Actor& actor) {
    std::vector<std::string> retired;
    for (auto& e : keyring.keys) {
        if (e.state == KeyState::verify_only) {
            e.state = KeyState::retired;
            record(e, "verify-only -> retired (rotate finish)", now, actor);
            retired.push_back(e.id);
        }
    }
    return retired;
}

Result<std::string> abort_rotation(Keyring& keyring, std::int64_t now, const Actor& actor) {
    KeyEntry* current = keyring.primary();
    if (current == nullptr || !current->rotated_from) {
        return fail(ExitCode::usage, "no rotation to abort: the primary secret" +
                                         (current ? " " + current->id : std::string()) +
                                         " was not made by 'hookctl rotate begin'");
    }
    KeyEntry* previous = keyring.find(*current->rotated_from);
    if (previous == nullptr || previous->state != KeyState::verify_only) {
        return fail(ExitCode::usage, "cannot abort: the previous primary " +
                                         *current->rotated_from +
                                         " is already retired ('rotate finish' ran); start a "
                                         "new rotation with 'hookctl rotate begin' instead");
    }
    current->state = KeyState::retired;
    record(*current, "primary -> retired (rotate abort)", now, actor);
    previous->state = KeyState::primary;
    previous->not_after.reset();
    record(*previous, "verify-only -> primary (rotate abort, replaces " + current->id + ")", now,
           actor);
    return previous->id;
}

nlohmann::json describe_entry(const KeyEntry& e, std::int64_t now, bool reveal, bool history) {
    json doc = {{"id", e.id},
                {"fingerprint", e.fingerprint},
                {"family", to_string(e.family)},
                {"state", to_string(e.state)},
                {"valid", e.valid_at(now)},
                {"created_at", util::format_time_s(e.created_at)},
                {"not_after", nullptr},
                {"seconds_left", nullptr}};
    if (e.not_after) {
        doc["not_after"] = util::format_time_s(*e.not_after);
        if (e.state == KeyState::verify_only) {
            doc["seconds_left"] = std::max<std::int64_t>(0, *e.not_after - now);
        }
    }
    if (!e.public_key.empty()) {
        doc["public_key"] = e.public_key;
    }
    if (e.rotated_from) {
        doc["rotated_from"] = *e.rotated_from;
    }
    if (history) {
        doc["history"] = json::array();
        for (const auto& h : e.history) {
            doc["history"].push_back({{"what", h.what},
                                      {"when", util::format_time_s(h.when)},
                                      {"user", h.user},
                                      {"host", h.host}});
        }
    }
    if (reveal) {
        doc["secret"] = std::string(e.secret.view());
    }
    return doc;
}

} // namespace hookctl::keys
