#include "app.hpp"

#include <cstdlib>
#include <string_view>

#include "common.hpp"

namespace hookctl::cli {

namespace {

// The first word of argv that is neither a flag nor the value of a global flag that takes one
// (`--config FILE`, `--log-format F`); empty when there is none.
std::string_view command_word(int argc, char** argv) {
    for (int i = 1; i < argc && argv != nullptr; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--config" || arg == "--log-format") {
            ++i;
        } else if (!arg.starts_with('-')) {
            return arg;
        }
    }
    return {};
}

} // namespace

void build_app(CLI::App& app, Context& context, int argc, char** argv) {
    app.description("hookctl: sign, verify, receive, parse and replay webhooks that carry "
                    "inbound email.\nExit codes: 0 success, 1 check failed, 2 usage or input "
                    "error, 3 aborted, 4 environment error. See hookctl(1).");
    app.set_version_flag("--version", std::string("hookctl ") + HOOKCTL_VERSION);
    // Subcommands inherit fallthrough: global flags work after the command name too.
    app.fallthrough();
    app.require_subcommand(1);

    auto& g = context.global;
    app.add_option("--config", g.config,
                   "Config file (TOML; default $XDG_CONFIG_HOME/hookctl/config.toml)")
        ->type_name("FILE");
    app.add_flag("--json", g.json, "Machine output on stdout: one JSON document or NDJSON");
    app.add_flag("-q,--quiet", g.quiet, "Print only data and errors");
    app.add_flag("-v,--verbose", g.verbose, "More detail on stderr (repeat for more)");
    app.add_flag("--no-color", g.no_color, "No colour on stderr (also NO_COLOR)");
    app.add_option("--log-format", g.log_format,
                   "Log lines on stderr: text or json (default: text on a TTY, json otherwise)")
        ->check(CLI::IsMember({"text", "json"}));
    if (std::getenv("NO_COLOR") != nullptr) {
        g.no_color = true;
    }

    struct Command {
        std::string_view name;
        void (*add)(CLI::App&, Context&);
    };
    static constexpr Command k_commands[] = {
        {"sign", register_sign},
        {"verify", register_verify},
        {"send", register_send},
        {"replay", register_replay},
        {"parse", register_parse},
        {"probe", register_probe},
        {"completion", register_completion},
        {"secret", register_secret},
        {"rotate", register_rotate},
        {"listen", register_listen},
        {"events", register_events},
        {"trigger", register_trigger},
    };
    std::string_view named = command_word(argc, argv);
    const Command* only = nullptr;
    for (const auto& c : k_commands) {
        // `completion` writes scripts from the whole tree.
        if (c.name == named && named != "completion") {
            only = &c;
        }
    }
    for (const auto& c : k_commands) {
        if (only == nullptr || only == &c) {
            c.add(app, context);
        }
    }

    // Values are checked as their names say (N, CODE, HOST:PORT) before any command runs, so
    // integer flags say "must be a whole number ≥ 0" rather than CLI11's conversion errors.
    check_value_names(app);
}

} // namespace hookctl::cli
