#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include <hookctl/util/error.hpp>

namespace hookctl::cli {

// Flags every command understands, before or after the command name.
struct GlobalOptions {
    std::string config;     // --config FILE
    bool json = false;      // --json: machine output on stdout
    bool quiet = false;     // -q
    int verbose = 0;        // -v (repeatable)
    bool no_color = false;  // --no-color or NO_COLOR
    std::string log_format; // --log-format text|json (default: text on a TTY, json otherwise)
};

// What the command tree shares: the global flags and the exit code the command set.
struct Context {
    GlobalOptions global;
    int exit_code = 0;
};

// Builds the whole command tree on `app` (app.cpp: reads like a table of contents).
void build_app(CLI::App& app, Context& context);

// One per subcommand, each in cmd/<name>.cpp.
void register_sign(CLI::App& app, Context& context);
void register_verify(CLI::App& app, Context& context);
void register_send(CLI::App& app, Context& context);
void register_replay(CLI::App& app, Context& context);
void register_parse(CLI::App& app, Context& context);
void register_probe(CLI::App& app, Context& context);
void register_completion(CLI::App& app, Context& context);
void register_secret(CLI::App& app, Context& context);
void register_rotate(CLI::App& app, Context& context);
void register_listen(CLI::App& app, Context& context);
void register_events(CLI::App& app, Context& context);
void register_events_tail(CLI::App& events, Context& context); // events_tail.cpp
void register_events_copy(CLI::App& events, Context& context); // events_copy.cpp
void register_trigger(CLI::App& app, Context& context);

} // namespace hookctl::cli
