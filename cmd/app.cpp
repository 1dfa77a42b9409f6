#include "app.hpp"

#include <cstdlib>

#include "common.hpp"

namespace hookctl::cli {

void build_app(CLI::App& app, Context& context) {
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

    register_sign(app, context);
    register_verify(app, context);
    register_send(app, context);
    register_replay(app, context);
    register_parse(app, context);
    register_probe(app, context);
    register_completion(app, context);
    register_secret(app, context);
    register_rotate(app, context);
    register_listen(app, context);
    register_events(app, context);

    // Values are checked as their names say (N, CODE, HOST:PORT) before any command runs, so
    // integer flags say "must be a whole number ≥ 0" rather than CLI11's conversion errors.
    check_value_names(app);
}

} // namespace hookctl::cli
