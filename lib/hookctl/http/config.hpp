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
//   production = false              # true: needs confirming, or the name typed at a TTY
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

    // The target called `name`; fails (exit 2) naming the config file and the known targets,
    // and ending with `advice` when given: what to do instead, in the caller's words.
    Result<const Target*> find_target(std::string_view name, std::string_view advice = {}) const;
};

// $XDG_CONFIG_HOME/hookctl/config.toml, or ~/.config/hookctl/config.toml.
std::string default_config_path();

// Reads and validates `path`. Fails (exit 2) when the file cannot be read, is not TOML
// (with line and column), or a target is malformed (unknown key, bad url/scheme/rate). A file
// that does not exist is refused with `advice` when given (what to do, in the caller's words).
Result<Config> load_config(const std::string& path, std::string_view advice = {});

// `explicit_path` (the caller's choice) when given, which must exist (`advice`: as for
// load_config); otherwise the default path, and an empty Config when that file does not exist.
Result<Config> load_config_or_default(const std::string& explicit_path,
                                      std::string_view advice = {});

// Asks a person to type something at a terminal; nothing when there is no terminal or input
// ended.
using Prompt = std::function<std::optional<std::string>(const std::string& question)>;

// The production guard: a `production` target needs `yes`, or the target's name typed at the
// prompt. Without a prompt (no TTY) and without `yes` it fails (exit 2) saying why and, with
// `advice`, how to confirm in the caller's words ("pass --yes to confirm"); a wrong answer fails
// too. Non-production targets pass.
Result<void> check_production_guard(const Target& target, bool yes, const Prompt& prompt,
                                    std::string_view advice = {});

} // namespace hookctl::http
