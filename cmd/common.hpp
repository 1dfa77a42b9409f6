#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/http/config.hpp>
#include <hookctl/keys/secret.hpp>
#include <hookctl/util/error.hpp>
#include <hookctl/util/file.hpp>

#include "app.hpp"

namespace hookctl::cli {

// The secret flags every signing or verifying command shares (DESIGN.md §4).
struct SecretFlags {
    std::vector<std::string> env;      // --secret-env NAME
    std::vector<std::string> files;    // --secret-file PATH
    std::vector<std::string> keyrings; // --keyring FILE: its secrets valid now (hookctl-rotate(1))

    // Sources in order: every --secret-env, then every --secret-file, then every --keyring.
    std::vector<keys::SecretSource> sources() const;
};

// The one answer to a secret given on argv (--secret VALUE): exit 2, the value never echoed.
Error refuse_secret_on_argv();

// Adds the hidden --secret to `cmd`: the parser refuses it with refuse_secret_on_argv()'s
// message (exit 2) before the command runs, whatever the value.
void add_refused_secret_option(CLI::App& cmd);

// Adds --secret-env, --secret-file, --keyring and the refused --secret to `cmd`.
void add_secret_options(CLI::App& cmd, SecretFlags& flags);

// Loads the secrets `flags` name; fails (exit 2) when none is given. Keyring entries are chosen
// by their validity at `now_s` (Unix seconds: the invocation's clock, Context::clock).
Result<std::vector<keys::SecretText>> load_secret_flags(const SecretFlags& flags,
                                                        std::int64_t now_s);

// A check for an integer flag: its value must be a whole number from `min` to `max`, else it is
// refused with "must be a whole number ≥ 1" (or "from 1 to 256") and the value given, in place
// of CLI11's conversion error and its range of 300 digits.
CLI::Validator whole_number(std::int64_t min,
                            std::int64_t max = std::numeric_limits<std::int64_t>::max());

// A DURATION flag (util::parse_duration's forms: 300, 250ms, 30s, 5m, 24h, 7d) whose value goes
// to `into`. A value that is not a duration, or is zero when `above_zero`, is refused before the
// command runs (exit 2), the message naming the flag, the value and what is expected.
CLI::Option* add_duration_option(CLI::App& cmd, const std::string& name,
                                 std::chrono::milliseconds& into, const std::string& description,
                                 bool above_zero = false);
// The same for a limit that may be absent: an empty value leaves `into` empty (no limit).
CLI::Option* add_duration_option(CLI::App& cmd, const std::string& name,
                                 std::optional<std::chrono::milliseconds>& into,
                                 const std::string& description);

// A check for a HOST:PORT flag: an IPv4 address, an IPv6 address in brackets or `localhost`,
// a colon and a port from 0 to 65535; anything else is refused before the command runs.
CLI::Validator host_port();

// Gives every flag of `app`'s tree the check its value name promises, unless it has one of its
// own: N (a count) a whole number ≥ 0, CODE (an HTTP status) one from 100 to 599, HOST:PORT an
// address to bind or reach. Commands narrow a range with their own whole_number check.
void check_value_names(CLI::App& app);

// True when `option` carries a whole_number check.
bool has_whole_number_check(const CLI::Option& option);

// Prints a warning on stderr (`hookctl: warning: ...`, or a JSON object with --json, or a JSON
// log line with --log-format json), once per message for the life of the process.
void report_warning(const Context& context, const std::string& message);

// Prints `error` on stderr (`hookctl: error: ...`, or a JSON object with --json) and returns
// its exit code.
int report_error(const Context& context, const Error& error);

// The exit status of a command's result: its exit code, or its error printed (report_error) and
// the error's code.
int exit_status(const Context& context, const Result<ExitCode>& result);

// The one way a command is wired into CLI11: when `cmd` is chosen, `run(*options, context)` runs
// and its exit status (exit_status) becomes the process's.
template <class Options>
void set_run(CLI::App& cmd, std::shared_ptr<Options> options, Context& context,
             Result<ExitCode> (*run)(const Options&, Context&)) {
    cmd.callback([options, &context, run] {
        context.exit_code = exit_status(context, run(*options, context));
    });
}

// Writes `doc` on stdout as one line.
void print_json(const nlohmann::json& doc);

// True when file descriptor `fd` is a terminal.
bool is_tty(int fd);

// Asks a question at the terminal (stderr) and reads the answer from stdin; empty (no prompt)
// when stdin is not a terminal.
http::Prompt tty_prompt();

// A share given as 0.2 or 20% (`flag` names it in errors): above 0 and at most 1, or from 0
// when `zero_allowed`. Exit 2 otherwise.
Result<double> parse_share(const std::string& flag, const std::string& given_text,
                           bool zero_allowed);

// The names --scheme accepts, in sig::all_schemes() order; with `with_auto`, "auto" first (the
// receiving commands detect the scheme from the headers).
std::vector<std::string> scheme_names(bool with_auto = false);

// Log lines on stderr: `hookctl: message` text on a TTY, JSON lines otherwise or as
// --log-format says ({"ts", "level", "msg"} plus the fields given). -q keeps warnings only.
// Thread-safe; a progress bar drawn through bar() is cleared before each line.
class LogSink {
public:
    explicit LogSink(const Context& context);
    void write(bool warning, const std::string& message, const nlohmann::json& fields = nullptr);
    void bar(const std::string& line);
    void end_bar();
    bool json() const { return m_json; }

private:
    bool m_json;
    bool m_quiet;
    bool m_drew = false;
    std::mutex m_mutex;
};

} // namespace hookctl::cli

namespace hookctl::cli {

// Opens the body argument: a file, or stdin for `-`. Refuses stdin when it is a terminal
// (nothing would arrive) and when a secret is also read from stdin.
Result<util::FileSource> open_body(const std::string& path, const SecretFlags& secrets);

} // namespace hookctl::cli
