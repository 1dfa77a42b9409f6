// hookctl rotate: begin, status, finish and abort a secret rotation with a dual-verify window.
#include <iostream>
#include <memory>

#include <hookctl/keys/keyring.hpp>
#include <hookctl/keys/keyring_file.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/units.hpp>

#include "common.hpp"

namespace hookctl::cli {
namespace {

struct RotateOptions {
    std::string keyring;
    std::string window = "24h";
    bool force = false;
    std::string secret_env;
    std::string secret_file;
    std::string family;
    std::string format;
};

std::string time_left(std::int64_t seconds) {
    return util::format_duration(std::chrono::seconds(std::max<std::int64_t>(0, seconds)));
}

// The rotation state of `keyring` at `now`: as JSON, or as lines for a person.
nlohmann::json status_json(const std::string& path, const keys::Keyring& keyring,
                           std::int64_t now) {
    nlohmann::json verify_only = nlohmann::json::array();
    nlohmann::json signing = nlohmann::json::array();
    for (const auto& e : keyring.keys) {
        if (e.state == keys::KeyState::verify_only) {
            verify_only.push_back(keys::describe_entry(e, now, false, false));
        }
    }
    for (const auto* e : keyring.valid_at(now)) {
        signing.push_back(e->fingerprint);
    }
    const auto* primary = keyring.primary();
    nlohmann::json doc = {{"keyring", path},
                          {"now", util::format_time_s(now)},
                          {"in_progress", keyring.rotation_in_progress(now)},
                          {"primary", nullptr},
                          {"verify_only", verify_only},
                          {"signing_order", signing},
                          {"retired", 0}};
    if (primary != nullptr) {
        doc["primary"] = keys::describe_entry(*primary, now, false, false);
    }
    int retired = 0;
    for (const auto& e : keyring.keys) {
        retired += e.state == keys::KeyState::retired ? 1 : 0;
    }
    doc["retired"] = retired;
    if (auto next = keyring.next_change_after(now)) {
        doc["window_ends"] = util::format_time_s(*next - 1);
        doc["seconds_left"] = *next - 1 - now;
    }
    return doc;
}

void print_status(const std::string& path, const keys::Keyring& keyring, std::int64_t now) {
    const auto* primary = keyring.primary();
    std::cout << "keyring " << path << ": "
              << (keyring.rotation_in_progress(now) ? "rotation in progress"
                                                    : "no rotation in progress")
              << '\n';
    if (primary != nullptr) {
        std::cout << "  signs:     " << primary->id << " " << primary->fingerprint
                  << " (primary since " << util::format_time_s(primary->created_at) << ")\n";
    } else {
        std::cout << "  signs:     nothing (no primary secret)\n";
    }
    for (const auto& e : keyring.keys) {
        if (e.state != keys::KeyState::verify_only) {
            continue;
        }
        std::cout << "  verifies:  " << e.id << " " << e.fingerprint;
        if (!e.not_after) {
            std::cout << " (verify-only, no end)\n";
        } else if (e.valid_at(now)) {
            std::cout << " until " << util::format_time_s(*e.not_after) << " ("
                      << time_left(*e.not_after - now) << " left)\n";
        } else {
            std::cout << " NO LONGER: its window ended " << util::format_time_s(*e.not_after)
                      << " (run 'hookctl rotate finish' to record it)\n";
        }
    }
    std::cout << "  signers emit:";
    for (const auto* e : keyring.valid_at(now)) {
        std::cout << " " << e->id << " (" << e->fingerprint << ")";
    }
    std::cout << '\n';
}

Result<keys::NewSecret> successor(const RotateOptions& opt, const keys::Keyring& keyring,
                                  std::int64_t now) {
    if (!opt.secret_env.empty() && !opt.secret_file.empty()) {
        return fail(ExitCode::usage, "give the new secret with one of --secret-env or "
                                     "--secret-file, not both");
    }
    if (!opt.secret_env.empty() || !opt.secret_file.empty()) {
        keys::SecretSource source =
            opt.secret_env.empty()
                ? keys::SecretSource{keys::SecretSource::Kind::file, opt.secret_file}
                : keys::SecretSource{keys::SecretSource::Kind::env, opt.secret_env};
        auto texts = keys::load_secrets({source}, now);
        HOOKCTL_RETURN_IF_ERROR(texts);
        return keys::describe_secret(texts->front().text, source.describe());
    }
    // A fresh secret like the current primary, unless told otherwise.
    const auto* primary = keyring.primary();
    auto family = primary != nullptr ? primary->family : keys::KeyFamily::hmac;
    auto format = primary != nullptr ? keys::format_of(*primary) : keys::SecretFormat::whsec;
    if (!opt.family.empty()) {
        family = opt.family == "ed25519" ? keys::KeyFamily::ed25519 : keys::KeyFamily::hmac;
    }
    if (!opt.format.empty()) {
        format = opt.format == "hex" ? keys::SecretFormat::hex : keys::SecretFormat::whsec;
    }
    return keys::generate_secret(family, format);
}

Result<ExitCode> run_begin(const RotateOptions& opt, Context& context) {
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto window = util::parse_duration(opt.window);
    if (!window) {
        return fail(ExitCode::usage, "--window: " + window.error().message);
    }
    std::int64_t window_seconds = std::chrono::duration_cast<std::chrono::seconds>(*window).count();
    std::string new_id;
    auto keyring = keys::update_keyring(opt.keyring, false, [&](keys::Keyring& k) -> Result<void> {
        auto secret = successor(opt, k, *now);
        HOOKCTL_RETURN_IF_ERROR(secret);
        auto id = keys::begin_rotation(k, *secret, window_seconds, opt.force, *now,
                                       keys::current_actor());
        HOOKCTL_RETURN_IF_ERROR(id);
        new_id = *id;
        return {};
    });
    HOOKCTL_RETURN_IF_ERROR(keyring);
    if (context.global.json) {
        print_json(status_json(opt.keyring, *keyring, *now));
        return ExitCode::ok;
    }
    print_status(opt.keyring, *keyring, *now);
    if (!context.global.quiet) {
        std::cerr << "hookctl: rotation begun: " << new_id
                  << " is the new primary; signers now send both signatures. Give the new "
                     "secret to every receiver ('hookctl secret export --keyring "
                  << opt.keyring << " --id " << new_id
                  << " --reveal'), then run 'hookctl rotate finish' before the window ends\n";
    }
    return ExitCode::ok;
}

Result<ExitCode> run_status(const RotateOptions& opt, Context& context) {
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto keyring = keys::read_keyring(opt.keyring);
    HOOKCTL_RETURN_IF_ERROR(keyring);
    if (context.global.json) {
        print_json(status_json(opt.keyring, *keyring, *now));
    } else {
        print_status(opt.keyring, *keyring, *now);
    }
    return ExitCode::ok;
}

Result<ExitCode> run_finish(const RotateOptions& opt, Context& context) {
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    std::vector<std::string> retired;
    auto keyring = keys::update_keyring(opt.keyring, false, [&](keys::Keyring& k) -> Result<void> {
        retired = keys::finish_rotation(k, *now, keys::current_actor());
        return {};
    });
    HOOKCTL_RETURN_IF_ERROR(keyring);
    if (context.global.json) {
        auto doc = status_json(opt.keyring, *keyring, *now);
        doc["retired_now"] = retired;
        print_json(doc);
        return ExitCode::ok;
    }
    print_status(opt.keyring, *keyring, *now);
    if (!context.global.quiet) {
        if (retired.empty()) {
            std::cerr << "hookctl: nothing to finish: no verify-only secret in " << opt.keyring
                      << '\n';
        } else {
            std::cerr << "hookctl: rotation finished: retired";
            for (const auto& id : retired) {
                std::cerr << " " << id;
            }
            std::cerr << "; only the primary signs and verifies now\n";
        }
    }
    return ExitCode::ok;
}

Result<ExitCode> run_abort(const RotateOptions& opt, Context& context) {
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    std::string restored;
    auto keyring = keys::update_keyring(opt.keyring, false, [&](keys::Keyring& k) -> Result<void> {
        auto id = keys::abort_rotation(k, *now, keys::current_actor());
        HOOKCTL_RETURN_IF_ERROR(id);
        restored = *id;
        return {};
    });
    HOOKCTL_RETURN_IF_ERROR(keyring);
    if (context.global.json) {
        auto doc = status_json(opt.keyring, *keyring, *now);
        doc["restored"] = restored;
        print_json(doc);
        return ExitCode::ok;
    }
    print_status(opt.keyring, *keyring, *now);
    if (!context.global.quiet) {
        std::cerr << "hookctl: rotation aborted: " << restored
                  << " is the primary again; the new secret is retired\n";
    }
    return ExitCode::ok;
}

CLI::App* add(CLI::App& rotate, const char* name, const char* help, Context& context,
              Result<ExitCode> (*run)(const RotateOptions&, Context&),
              std::shared_ptr<RotateOptions>& opt) {
    opt = std::make_shared<RotateOptions>();
    auto* cmd = rotate.add_subcommand(name, help);
    cmd->add_option("--keyring", opt->keyring, "The keyring file (see hookctl-secret(1))")
        ->type_name("FILE")
        ->required();
    set_run(*cmd, opt, context, run);
    return cmd;
}

} // namespace

void register_rotate(CLI::App& app, Context& context) {
    auto* rotate = app.add_subcommand(
        "rotate", "Begin, check, finish or abort a secret rotation with a dual-verify window "
                  "(runbook: hookctl-rotate(1))");
    rotate->require_subcommand(1);

    std::shared_ptr<RotateOptions> opt;
    auto* begin = add(*rotate, "begin",
                      "Make a new primary secret; the old one keeps verifying until the window "
                      "ends",
                      context, run_begin, opt);
    begin
        ->add_option("--window", opt->window,
                     "How long the old secret keeps verifying: 24h (default), 90m, 7d")
        ->type_name("DURATION");
    begin->add_flag("--force", opt->force, "Begin even though a rotation window is open");
    begin
        ->add_option("--secret-env", opt->secret_env,
                     "Use the new secret from environment variable NAME (default: generate one)")
        ->type_name("NAME");
    begin
        ->add_option("--secret-file", opt->secret_file,
                     "Use the new secret from FILE ('-' for stdin; default: generate one)")
        ->type_name("FILE");
    add_refused_secret_option(*begin);
    begin
        ->add_option("--family", opt->family,
                     "Family of a generated secret: hmac or ed25519 (default: as the primary)")
        ->check(CLI::IsMember({"hmac", "ed25519"}));
    begin
        ->add_option("--format", opt->format,
                     "Format of a generated HMAC secret: whsec or hex (default: as the primary)")
        ->check(CLI::IsMember({"whsec", "hex"}));

    add(*rotate, "status", "Show which secret signs, which verify and how long the window has left",
        context, run_status, opt);
    add(*rotate, "finish", "Retire the verify-only secrets now: only the primary is valid", context,
        run_finish, opt);
    add(*rotate, "abort",
        "Undo 'rotate begin': the previous primary signs again, the new secret is retired", context,
        run_abort, opt);
}

} // namespace hookctl::cli
