// hookctl secret: new, show, export and import secrets and keyrings.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <memory>

#include <openssl/crypto.h>

#include <hookctl/keys/keyring.hpp>
#include <hookctl/keys/keyring_file.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/units.hpp>

#include "common.hpp"

namespace hookctl::cli {
namespace {

struct SecretOptions {
    std::string keyring;
    std::string family = "hmac";
    std::string format; // new: whsec|hex; export: env|json|raw
    std::string id;
    std::string name = "WEBHOOK_SECRET";
    std::string state;
    std::string not_after;
    std::string window;
    std::string secret_env;
    std::string secret_file;
    std::string out; // new: write the secret to this file (0600) instead of stdout
    bool force = false;
    bool reveal = false;
    bool history = false;
    bool public_only = false;
};

// Quotes `value` for a shell or an env file when it holds anything but safe characters.
std::string env_quote(std::string_view value) {
    bool safe = std::all_of(value.begin(), value.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
               std::string_view("_+/=-.:,@").find(c) != std::string_view::npos;
    });
    if (safe && !value.empty()) {
        return std::string(value);
    }
    std::string out = "'";
    for (char c : value) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

void print_entry_line(const keys::KeyEntry& e, std::int64_t now) {
    std::cout << e.id << "  " << e.fingerprint << "  " << keys::to_string(e.family) << "  "
              << keys::to_string(e.state);
    if (e.state == keys::KeyState::verify_only && e.not_after) {
        std::cout << (e.valid_at(now) ? " until " : " (window ended ")
                  << util::format_time_s(*e.not_after) << (e.valid_at(now) ? "" : ")");
    }
    std::cout << '\n';
}

// Reads the secret named by --secret-env or --secret-file (exactly one), as text or as a
// `secret export --format json` document.
Result<keys::NewSecret> read_given_secret(const SecretOptions& opt, std::int64_t now) {
    if (opt.secret_env.empty() == opt.secret_file.empty()) {
        return fail(ExitCode::usage,
                    "give the secret with exactly one of --secret-env NAME or --secret-file PATH");
    }
    keys::SecretSource source =
        opt.secret_env.empty() ? keys::SecretSource{keys::SecretSource::Kind::file, opt.secret_file}
                               : keys::SecretSource{keys::SecretSource::Kind::env, opt.secret_env};
    auto texts = keys::load_secrets({source}, now);
    HOOKCTL_RETURN_IF_ERROR(texts);
    keys::SecretBytes text = texts->front().text;
    if (text.view().starts_with("{")) {
        auto doc = nlohmann::json::parse(text.view(), nullptr, false);
        if (doc.is_discarded() || !doc.is_object() || !doc.contains("secret") ||
            !doc["secret"].is_string()) {
            return fail(ExitCode::usage,
                        "secret from " + source.describe() +
                            " looks like JSON but is not a 'hookctl secret export --format "
                            "json' document (an object with a \"secret\" string)");
        }
        text = keys::SecretBytes(doc["secret"].get<std::string>());
    }
    return keys::describe_secret(text, source.describe());
}

Result<std::optional<std::int64_t>> parse_not_after(const SecretOptions& opt, std::int64_t now) {
    if (!opt.not_after.empty() && !opt.window.empty()) {
        return fail(ExitCode::usage, "give --not-after or --window, not both");
    }
    if (!opt.window.empty()) {
        auto d = util::parse_duration(opt.window);
        if (!d) {
            return fail(ExitCode::usage, "--window: " + d.error().message);
        }
        return now + std::chrono::duration_cast<std::chrono::seconds>(*d).count();
    }
    if (!opt.not_after.empty()) {
        if (auto t = util::parse_time_s_strict(opt.not_after)) {
            return *t;
        }
        auto t = util::parse_unix_seconds(opt.not_after);
        if (!t) {
            return fail(ExitCode::usage, "--not-after: '" + opt.not_after +
                                             "' is neither Unix seconds nor "
                                             "YYYY-MM-DDTHH:MM:SSZ");
        }
        return *t;
    }
    return std::optional<std::int64_t>();
}

// Adds `secret` to the keyring (creating it when absent) and reports the new entry.
Result<ExitCode> add_to_keyring(const SecretOptions& opt, const Context& context,
                                const keys::NewSecret& secret, keys::AddOptions add,
                                std::int64_t now) {
    bool created = false;
    std::string id;
    auto keyring = keys::update_keyring(opt.keyring, true, [&](keys::Keyring& k) -> Result<void> {
        created = k.keys.empty();
        auto added = keys::add_secret(k, secret, now, keys::current_actor(), add);
        HOOKCTL_RETURN_IF_ERROR(added);
        id = *added;
        return {};
    });
    HOOKCTL_RETURN_IF_ERROR(keyring);
    const keys::KeyEntry& entry = *keyring->find(id);
    if (context.global.json) {
        print_json({{"keyring", opt.keyring},
                    {"created", created},
                    {"key", keys::describe_entry(entry, now, opt.reveal, false)}});
        return ExitCode::ok;
    }
    print_entry_line(entry, now);
    if (opt.reveal) {
        std::cout << entry.secret.view() << '\n';
    }
    if (!entry.public_key.empty()) {
        std::cout << entry.public_key << '\n';
    }
    if (!context.global.quiet) {
        std::cerr << "hookctl: " << (created ? "created keyring " : "added to keyring ")
                  << opt.keyring << (opt.reveal ? "" : " (the secret is not shown: --reveal)")
                  << '\n';
    }
    return ExitCode::ok;
}

Result<ExitCode> run_new(const SecretOptions& opt, Context& context) {
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto family = opt.family == "ed25519"   ? keys::KeyFamily::ed25519
                  : opt.family == "archive" ? keys::KeyFamily::archive
                                            : keys::KeyFamily::hmac;
    auto format = opt.format == "hex" ? keys::SecretFormat::hex : keys::SecretFormat::whsec;
    if (family != keys::KeyFamily::hmac && opt.format == "hex") {
        return fail(ExitCode::usage, "--format hex is for HMAC secrets; ed25519 keys are "
                                     "written whsk_/whpk_, archive keys hkak_");
    }
    auto secret = keys::generate_secret(family, format);
    HOOKCTL_RETURN_IF_ERROR(secret);
    if (!opt.keyring.empty()) {
        if (!opt.out.empty()) {
            return fail(ExitCode::usage, "give --keyring or --out, not both: a keyring already "
                                         "keeps the secret in a 0600 file");
        }
        return add_to_keyring(
            opt, context, *secret,
            {.state = std::nullopt, .not_after = std::nullopt, .what = "secret new"}, *now);
    }
    if (!opt.out.empty() && opt.out != "-") {
        // The secret goes only to the file; the public part of a pair is no secret.
        if (auto written = keys::write_secret_file(opt.out, secret->secret, opt.force); !written) {
            return std::unexpected(written.error());
        }
        if (context.global.json) {
            nlohmann::json doc = {{"family", keys::to_string(secret->family)},
                                  {"fingerprint", secret->fingerprint},
                                  {"file", opt.out}};
            if (!secret->public_key.empty()) {
                doc["public_key"] = secret->public_key;
            }
            print_json(doc);
            return ExitCode::ok;
        }
        if (!secret->public_key.empty()) {
            std::cout << secret->public_key << '\n';
        }
        if (!context.global.quiet) {
            std::cerr << "hookctl: wrote a new " << keys::to_string(secret->family) << " secret to "
                      << opt.out << " (mode 0600), fingerprint " << secret->fingerprint << '\n';
        }
        return ExitCode::ok;
    }
    // No keyring, no file: printing the fresh secret is the point.
    if (context.global.json) {
        nlohmann::json doc = {{"family", keys::to_string(secret->family)},
                              {"fingerprint", secret->fingerprint},
                              {"secret", std::string(secret->secret.view())}};
        if (!secret->public_key.empty()) {
            doc["public_key"] = secret->public_key;
        }
        print_json(doc);
        return ExitCode::ok;
    }
    std::cout << secret->secret.view() << '\n';
    if (!secret->public_key.empty()) {
        std::cout << secret->public_key << '\n';
    }
    if (!context.global.quiet) {
        std::cerr << "hookctl: new " << keys::to_string(secret->family) << " secret, fingerprint "
                  << secret->fingerprint << "; store it in your secret manager\n";
    }
    return ExitCode::ok;
}

Result<ExitCode> run_show(const SecretOptions& opt, Context& context) {
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto keyring = keys::read_keyring(opt.keyring);
    HOOKCTL_RETURN_IF_ERROR(keyring);
    if (context.global.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& e : keyring->keys) {
            list.push_back(keys::describe_entry(e, *now, opt.reveal, opt.history));
        }
        print_json({{"keyring", opt.keyring},
                    {"now", util::format_time_s(*now)},
                    {"rotation_in_progress", keyring->rotation_in_progress(*now)},
                    {"keys", list}});
        return ExitCode::ok;
    }
    std::cout << "ID   FINGERPRINT  FAMILY   STATE        VALID  CREATED               "
                 "NOT AFTER\n";
    for (const auto& e : keyring->keys) {
        char line[256];
        std::snprintf(line, sizeof line, "%-4s %-12s %-8s %-12s %-6s %-21s %s", e.id.c_str(),
                      e.fingerprint.c_str(), std::string(keys::to_string(e.family)).c_str(),
                      std::string(keys::to_string(e.state)).c_str(),
                      e.valid_at(*now) ? "yes" : "no", util::format_time_s(e.created_at).c_str(),
                      e.not_after ? util::format_time_s(*e.not_after).c_str() : "-");
        std::cout << line << '\n';
        if (!e.public_key.empty()) {
            std::cout << "     public key " << e.public_key << '\n';
        }
        if (opt.reveal) {
            std::cout << "     secret " << e.secret.view() << '\n';
        }
        if (opt.history) {
            for (const auto& h : e.history) {
                std::cout << "     " << util::format_time_s(h.when) << "  " << h.what << "  ("
                          << h.user << "@" << h.host << ")\n";
            }
        }
    }
    return ExitCode::ok;
}

Result<ExitCode> run_export(const SecretOptions& opt, Context& context) {
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto keyring = keys::read_keyring(opt.keyring);
    HOOKCTL_RETURN_IF_ERROR(keyring);
    const keys::KeyEntry* entry = opt.id.empty() ? keyring->primary() : keyring->find(opt.id);
    if (entry == nullptr) {
        return fail(ExitCode::usage, opt.id.empty()
                                         ? "keyring " + opt.keyring +
                                               " has no primary secret: name "
                                               "one with --id ID (see 'hookctl secret show')"
                                         : "keyring " + opt.keyring + " has no secret " + opt.id +
                                               " (give an id or fingerprint from 'hookctl secret "
                                               "show')");
    }
    if (opt.public_only && entry->public_key.empty()) {
        return fail(ExitCode::usage,
                    "--public: " + entry->id + " is an HMAC secret, which has no public part");
    }
    if (!opt.public_only && !opt.reveal) {
        return fail(ExitCode::usage,
                    "secret export prints the secret itself: add --reveal to confirm, and pipe "
                    "it into your secret manager rather than a terminal or a log (--public "
                    "prints an ed25519 public key without --reveal)");
    }
    std::string value(opt.public_only ? std::string_view(entry->public_key) : entry->secret.view());
    std::string format = context.global.json ? "json" : opt.format;
    if (format == "json") {
        nlohmann::json doc = {{"id", entry->id},
                              {"fingerprint", entry->fingerprint},
                              {"family", keys::to_string(entry->family)},
                              {"state", keys::to_string(entry->state)}};
        doc[opt.public_only ? "public_key" : "secret"] = value;
        if (!opt.public_only && !entry->public_key.empty()) {
            doc["public_key"] = entry->public_key;
        }
        print_json(doc);
    } else if (format == "env") {
        std::cout << opt.name << "=" << env_quote(value) << '\n';
    } else {
        std::cout << value << '\n';
    }
    OPENSSL_cleanse(value.data(), value.size());
    return ExitCode::ok;
}

Result<ExitCode> run_import(const SecretOptions& opt, Context& context) {
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto secret = read_given_secret(opt, *now);
    HOOKCTL_RETURN_IF_ERROR(secret);
    auto not_after = parse_not_after(opt, *now);
    HOOKCTL_RETURN_IF_ERROR(not_after);
    keys::AddOptions add{.state = std::nullopt, .not_after = *not_after, .what = "secret import"};
    if (opt.state == "primary") {
        add.state = keys::KeyState::primary;
    } else if (opt.state == "verify-only") {
        add.state = keys::KeyState::verify_only;
    }
    return add_to_keyring(opt, context, *secret, add, *now);
}

void add_keyring_option(CLI::App& cmd, SecretOptions& opt, std::string_view help) {
    cmd.add_option("--keyring", opt.keyring, std::string(help))->type_name("FILE")->required();
}

void add_given_secret_options(CLI::App& cmd, SecretOptions& opt) {
    cmd.add_option("--secret-env", opt.secret_env, "Read the secret from environment variable NAME")
        ->type_name("NAME");
    cmd.add_option("--secret-file", opt.secret_file, "Read the secret from FILE ('-' for stdin)")
        ->type_name("FILE");
    add_refused_secret_option(cmd);
}

void bind(CLI::App* cmd, std::shared_ptr<SecretOptions> opt, Context& context,
          Result<ExitCode> (*run)(const SecretOptions&, Context&)) {
    set_run(*cmd, opt, context, run);
}

} // namespace

void register_secret(CLI::App& app, Context& context) {
    auto* secret = app.add_subcommand(
        "secret", "New, show, export and import secrets and keyrings (see hookctl-secret(1))");
    secret->require_subcommand(1);

    auto new_opt = std::make_shared<SecretOptions>();
    auto* cmd_new = secret->add_subcommand(
        "new", "Make a fresh secret: print it, or add it to a keyring (primary if the keyring "
               "is new, else verify-only)");
    cmd_new
        ->add_option("--keyring", new_opt->keyring,
                     "Add the secret to keyring FILE (created mode 0600 if absent); the "
                     "secret is then not printed unless --reveal")
        ->type_name("FILE");
    cmd_new
        ->add_option("--kind,--family", new_opt->family,
                     "hmac (default), ed25519 (whsk_/whpk_) or archive (hkak_: an archive key "
                     "for --archive-key, encrypts archive bodies)")
        ->check(CLI::IsMember({"hmac", "ed25519", "archive"}));
    cmd_new
        ->add_option("--format", new_opt->format,
                     "How an HMAC secret is written: whsec (whsec_ + base64, default) or hex")
        ->check(CLI::IsMember({"whsec", "hex"}));
    auto* out = cmd_new
                    ->add_option("--out", new_opt->out,
                                 "Write the secret to FILE, created mode 0600, instead of stdout "
                                 "(an ed25519 public key is still printed); refuses an existing "
                                 "FILE")
                    ->type_name("FILE");
    cmd_new->add_flag("--force", new_opt->force, "With --out: replace an existing FILE")
        ->needs(out);
    cmd_new->add_flag("--reveal", new_opt->reveal, "With --keyring: print the secret too");
    bind(cmd_new, new_opt, context, run_new);

    auto show_opt = std::make_shared<SecretOptions>();
    auto* cmd_show = secret->add_subcommand(
        "show", "List a keyring's secrets: ids, fingerprints, states, windows (never the "
                "secrets unless --reveal)");
    add_keyring_option(*cmd_show, *show_opt, "The keyring to list");
    cmd_show->add_flag("--reveal", show_opt->reveal, "Print the secrets too");
    cmd_show->add_flag("--history", show_opt->history,
                       "Print each secret's history (what, when, user@host)");
    bind(cmd_show, show_opt, context, run_show);

    auto export_opt = std::make_shared<SecretOptions>();
    export_opt->format = "raw";
    auto* cmd_export = secret->add_subcommand(
        "export", "Print one secret of a keyring, to pipe into a secret manager (needs --reveal)");
    add_keyring_option(*cmd_export, *export_opt, "The keyring to read");
    cmd_export
        ->add_option("--id", export_opt->id,
                     "The secret's id or fingerprint (default: the primary)")
        ->type_name("ID");
    cmd_export
        ->add_option("--format", export_opt->format,
                     "raw (the secret and a newline, default), env (NAME=value) or json")
        ->check(CLI::IsMember({"raw", "env", "json"}));
    cmd_export
        ->add_option("--name", export_opt->name,
                     "Variable name for --format env (default WEBHOOK_SECRET)")
        ->type_name("NAME");
    cmd_export->add_flag("--reveal", export_opt->reveal, "Confirm that the secret may be printed");
    cmd_export->add_flag("--public", export_opt->public_only,
                         "Print the ed25519 public key (whpk_) instead; needs no --reveal");
    bind(cmd_export, export_opt, context, run_export);

    auto import_opt = std::make_shared<SecretOptions>();
    auto* cmd_import = secret->add_subcommand(
        "import", "Add an existing secret (text, or a 'secret export --format json' document) "
                  "to a keyring, creating it if absent");
    add_keyring_option(*cmd_import, *import_opt,
                       "The keyring to add to (created mode 0600 if absent)");
    add_given_secret_options(*cmd_import, *import_opt);
    cmd_import
        ->add_option("--state", import_opt->state,
                     "verify-only (default when the keyring has a primary) or primary "
                     "(only into a keyring without one)")
        ->check(CLI::IsMember({"primary", "verify-only"}));
    cmd_import
        ->add_option("--not-after", import_opt->not_after,
                     "A verify-only secret stops verifying after TIME (Unix seconds or "
                     "YYYY-MM-DDTHH:MM:SSZ)")
        ->type_name("TIME");
    cmd_import
        ->add_option("--window", import_opt->window,
                     "A verify-only secret stops verifying after now + DURATION (24h, 7d)")
        ->type_name("DURATION");
    cmd_import->add_flag("--reveal", import_opt->reveal, "Print the secret too");
    bind(cmd_import, import_opt, context, run_import);
}

} // namespace hookctl::cli
