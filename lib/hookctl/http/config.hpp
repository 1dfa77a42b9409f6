#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/http/tls.hpp>
#include <hookctl/keys/secret.hpp>
#include <hookctl/sig/scheme.hpp>
#include <hookctl/util/error.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::http {

// A named delivery target from the config file (DESIGN.md §7):
//
//   [targets.staging]
//   url = "https://staging.example.com/hooks/email"
//   scheme = "mailparse"            # optional, default mailparse
//   secret_env = "STAGING_SECRET"   # or secret_file = "path", or keyring = "path"
//   rate = "50/s"                   # optional default for replay
//   concurrency = 8                 # optional default for replay
//   production = false              # true: needs --yes or typing the name at a TTY
//   ca_file = "company-ca.pem"      # optional: trust these CAs (PEM) instead of the system's
//   ca_path = "/etc/company/certs"  # optional: a directory prepared with `openssl rehash`
//   client_cert = "client.pem"      # optional: mutual TLS, with
//   client_key = "client.key"       #   its key (mode 0600; default: in client_cert)
//   client_key_passphrase_env = "CLIENT_KEY_PASS"  # or client_key_passphrase_file = "path"
//
// `secret_env`, `secret_file` and `keyring` may each be a string or an array of strings.
// Relative paths resolve beside the config file.
struct Target {
    std::string name;
    std::string url;
    sig::Scheme scheme = sig::Scheme::mailparse;
    std::vector<keys::SecretSource> secrets; // relative files resolve beside the config file
    std::optional<util::Rate> rate;
    std::optional<int> concurrency;
    bool production = false;
    TlsClientSpec tls; // ca_file, ca_path, client_cert, client_key, passphrase source
};

struct Config {
    std::string path; // the file read; empty when there was none
    std::vector<Target> targets;

    // The target called `name`; fails (exit 2) naming the config file and the known targets.
    Result<const Target*> find_target(std::string_view name) const;
};

// $XDG_CONFIG_HOME/hookctl/config.toml, or ~/.config/hookctl/config.toml.
std::string default_config_path();

// Reads and validates `path`. Fails (exit 2) when the file cannot be read, is not TOML
// (with line and column), or a target is malformed (unknown key, bad url/scheme/rate).
Result<Config> load_config(const std::string& path);

// `explicit_path` (from --config) when given, which must exist; otherwise the default path,
// and an empty Config when that file does not exist.
Result<Config> load_config_or_default(const std::string& explicit_path);

// Asks a person to type something at a terminal; nothing when there is no terminal or input
// ended.
using Prompt = std::function<std::optional<std::string>(const std::string& question)>;

// The production guard: a `production` target needs `yes`, or the target's name typed at the
// prompt. Without a prompt (no TTY) and without `yes` it fails (exit 2) saying why; a wrong
// answer fails too. Non-production targets pass.
Result<void> check_production_guard(const Target& target, bool yes, const Prompt& prompt);

} // namespace hookctl::http
