#pragma once

#include <cstdint>
#include <optional>
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

// The time one invocation judges by (keyring windows, rotation history): HOOKCTL_NOW (Unix
// seconds; a testing aid documented in hookctl-rotate(1)) when it is set, read once when the
// clock is made; else the wall clock at each reading. Signature timestamps, log lines and
// listen's per-request judgement read the wall clock itself (util/time.hpp), not this one.
class InvocationClock {
public:
    // Reads HOOKCTL_NOW from the environment.
    InvocationClock();
    // `fixed_text`: HOOKCTL_NOW's value; nothing or empty for the wall clock.
    explicit InvocationClock(std::optional<std::string> fixed_text);

    // Now, in Unix seconds. Fails (exit 2, naming HOOKCTL_NOW and how to fix it) when
    // HOOKCTL_NOW is set but not Unix seconds; only commands that judge time report it.
    Result<std::int64_t> now_s() const;

private:
    std::optional<Result<std::int64_t>> m_fixed; // empty: the wall clock
};

// What the command tree shares: the global flags, the clock and the exit code the command set.
struct Context {
    GlobalOptions global;
    InvocationClock clock;
    int exit_code = 0;
};

// Builds the command tree on `app` (app.cpp: reads like a table of contents): the global flags
// and every command, or, when `argv` names a command (its first word that is neither a flag nor
// a global flag's value), that command alone. Building the ~300 options of all twelve commands
// is a third of a short command's start-up (`hookctl verify`, issue 16); the help, the
// completion scripts and an unknown command's suggestions still see the whole tree.
void build_app(CLI::App& app, Context& context, int argc = 0, char** argv = nullptr);

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
