#include <cstdlib>
#include <filesystem>

#include <toml++/toml.h>

#include <hookctl/http/config.hpp>

namespace hookctl::http {
namespace {

namespace fs = std::filesystem;

// "; " and `advice` (what to do, in the caller's words), or nothing when there is none.
std::string advice_ending(std::string_view advice) {
    return advice.empty() ? std::string() : "; " + std::string(advice);
}

Result<std::vector<std::string>> string_or_array(const toml::node& node, const std::string& where) {
    std::vector<std::string> out;
    if (auto s = node.value<std::string>()) {
        out.push_back(*s);
        return out;
    }
    if (const auto* array = node.as_array()) {
        for (const auto& item : *array) {
            auto s = item.value<std::string>();
            if (!s) {
                return fail(ExitCode::usage, where + " must be a string or an array of strings");
            }
            out.push_back(*s);
        }
        return out;
    }
    return fail(ExitCode::usage, where + " must be a string or an array of strings");
}

std::string resolve_beside(const std::string& config_path, const std::string& file) {
    if (file == "-" || fs::path(file).is_absolute()) {
        return file;
    }
    return (fs::path(config_path).parent_path() / file).string();
}

// The TLS setting a target's `key` sets, or nothing when `key` is not one.
std::string* tls_field(TlsClientSpec& tls, std::string_view key) {
    return key == "ca_file"                      ? &tls.ca_file
           : key == "ca_path"                    ? &tls.ca_path
           : key == "client_cert"                ? &tls.cert
           : key == "client_key"                 ? &tls.key
           : key == "client_key_passphrase_env"  ? &tls.key_passphrase_env
           : key == "client_key_passphrase_file" ? &tls.key_passphrase_file
                                                 : nullptr;
}

Result<Target> parse_target(const std::string& path, const std::string& name,
                            const toml::table& table) {
    Target t;
    t.name = name;
    std::string where = path + ": [targets." + name + "]";
    for (const auto& [key_node, value] : table) {
        std::string key(key_node.str());
        std::string at = where + " " + key;
        if (key == "url") {
            auto s = value.value<std::string>();
            if (!s || !(s->starts_with("http://") || s->starts_with("https://"))) {
                return fail(ExitCode::usage, at + " must be an http:// or https:// URL");
            }
            t.url = *s;
        } else if (key == "scheme") {
            auto s = value.value<std::string>();
            if (!s) {
                return fail(ExitCode::usage, at + " must be a string");
            }
            auto scheme = sig::parse_scheme(*s);
            if (!scheme) {
                return fail(ExitCode::usage, at + ": " + scheme.error().message);
            }
            t.scheme = *scheme;
        } else if (key == "secret_env" || key == "secret_file" || key == "keyring") {
            auto names = string_or_array(value, at);
            HOOKCTL_RETURN_IF_ERROR(names);
            for (const auto& n : *names) {
                if (key == "secret_env") {
                    t.secrets.push_back({keys::SecretSource::Kind::env, n});
                } else {
                    t.secrets.push_back({key == "keyring" ? keys::SecretSource::Kind::keyring
                                                          : keys::SecretSource::Kind::file,
                                         resolve_beside(path, n)});
                }
            }
        } else if (key == "secret") {
            return fail(ExitCode::usage,
                        at + ": secrets are not stored in the config file; use secret_env, "
                             "secret_file or keyring");
        } else if (key == "rate") {
            std::string text;
            if (auto s = value.value<std::string>()) {
                text = *s;
            } else if (auto n = value.value<double>()) {
                text = std::to_string(*n);
            } else {
                return fail(ExitCode::usage, at + " must be a rate such as \"50/s\" or \"max\"");
            }
            auto rate = util::parse_rate(text);
            if (!rate) {
                return fail(ExitCode::usage, at + ": " + rate.error().message);
            }
            t.rate = *rate;
        } else if (key == "concurrency") {
            auto n = value.value<std::int64_t>();
            if (!n || *n < 1 || *n > 4096) {
                return fail(ExitCode::usage, at + " must be a whole number from 1 to 4096");
            }
            t.concurrency = static_cast<int>(*n);
        } else if (key == "production") {
            auto b = value.value<bool>();
            if (!b) {
                return fail(ExitCode::usage, at + " must be true or false");
            }
            t.production = *b;
        } else if (auto* field = tls_field(t.tls, key)) {
            auto s = value.value<std::string>();
            if (!s || s->empty()) {
                return fail(ExitCode::usage, at + " must be a non-empty string");
            }
            *field = key == "client_key_passphrase_env" ? *s : resolve_beside(path, *s);
        } else {
            return fail(ExitCode::usage,
                        at + ": unknown key (known: url, scheme, secret_env, secret_file, "
                             "keyring, rate, concurrency, production, ca_file, ca_path, "
                             "client_cert, client_key, client_key_passphrase_env, "
                             "client_key_passphrase_file)");
        }
    }
    if (t.url.empty()) {
        return fail(ExitCode::usage, where + " has no url");
    }
    return t;
}

} // namespace

Result<const Target*> Config::find_target(std::string_view name, std::string_view advice) const {
    for (const auto& t : targets) {
        if (t.name == name) {
            return &t;
        }
    }
    std::string known;
    for (const auto& t : targets) {
        known += (known.empty() ? "" : ", ") + t.name;
    }
    std::string file = path.empty() ? default_config_path() + " (not found)" : path;
    return fail(ExitCode::usage, "unknown target '" + std::string(name) + "' in " + file +
                                     (known.empty() ? ": it defines no [targets.NAME]"
                                                    : ": known targets are " + known) +
                                     advice_ending(advice));
}

std::string default_config_path() {
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && xdg[0] != '\0') {
        return (fs::path(xdg) / "hookctl" / "config.toml").string();
    }
    if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
        return (fs::path(home) / ".config" / "hookctl" / "config.toml").string();
    }
    return "config.toml";
}

Result<Config> load_config(const std::string& path, std::string_view advice) {
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        const auto& where = e.source().begin;
        std::error_code ec;
        if (!fs::exists(path, ec)) {
            return fail(ExitCode::usage, "cannot read config file " + path + ": no such file" +
                                             advice_ending(advice));
        }
        return fail(ExitCode::usage, "config file " + path + " line " + std::to_string(where.line) +
                                         " column " + std::to_string(where.column) + ": " +
                                         std::string(e.description()));
    }
    Config config;
    config.path = path;
    for (const auto& [key, value] : root) {
        if (key.str() != "targets") {
            continue; // other sections belong to other commands
        }
        const auto* targets = value.as_table();
        if (targets == nullptr) {
            return fail(ExitCode::usage, path + ": `targets` must be a table ([targets.NAME])");
        }
        for (const auto& [name, node] : *targets) {
            const auto* table = node.as_table();
            if (table == nullptr) {
                return fail(ExitCode::usage, path + ": targets." + std::string(name.str()) +
                                                 " must be a table ([targets." +
                                                 std::string(name.str()) + "])");
            }
            auto target = parse_target(path, std::string(name.str()), *table);
            HOOKCTL_RETURN_IF_ERROR(target);
            config.targets.push_back(std::move(*target));
        }
    }
    return config;
}

Result<Config> load_config_or_default(const std::string& explicit_path, std::string_view advice) {
    if (!explicit_path.empty()) {
        return load_config(explicit_path, advice);
    }
    std::string path = default_config_path();
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        return Config{};
    }
    return load_config(path);
}

Result<void> check_production_guard(const Target& target, bool yes, const Prompt& prompt,
                                    std::string_view advice) {
    if (!target.production || yes) {
        return {};
    }
    if (!prompt) {
        return fail(ExitCode::usage,
                    "target '" + target.name + "' is marked production = true: " +
                        (advice.empty() ? "it needs confirming" : std::string(advice)) +
                        " (no terminal to ask on, so nothing was sent)");
    }
    auto answer = prompt("target '" + target.name + "' (" + target.url +
                         ") is production. Type its name to continue: ");
    if (!answer || *answer != target.name) {
        return fail(ExitCode::usage, "confirmation did not match target name '" + target.name +
                                         "': nothing was sent");
    }
    return {};
}

} // namespace hookctl::http
