#include "common.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <unistd.h>

#include <hookctl/archive/archive.hpp>
#include <hookctl/util/clock.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::cli {

std::vector<keys::SecretSource> SecretFlags::sources() const {
    std::vector<keys::SecretSource> out;
    for (const auto& name : env) {
        out.push_back({keys::SecretSource::Kind::env, name});
    }
    for (const auto& path : files) {
        out.push_back({keys::SecretSource::Kind::file, path});
    }
    for (const auto& path : keyrings) {
        out.push_back({keys::SecretSource::Kind::keyring, path});
    }
    return out;
}

void add_secret_options(CLI::App& cmd, SecretFlags& flags) {
    cmd.add_option("--secret-env", flags.env,
                   "Read a secret from environment variable NAME (repeat for several)")
        ->type_name("NAME")
        ->allow_extra_args(false)
        ->group("Secrets");
    cmd.add_option("--secret-file", flags.files,
                   "Read a secret from FILE ('-' for stdin; repeat for several)")
        ->type_name("FILE")
        ->allow_extra_args(false)
        ->group("Secrets");
    cmd.add_option("--keyring", flags.keyrings,
                   "Use the secrets of keyring FILE valid now: primary first, then verify-only "
                   "ones in their window (repeat for several)")
        ->type_name("FILE")
        ->allow_extra_args(false)
        ->group("Secrets");
    // Accepted only to be refused with advice: a secret on argv leaks to `ps` and history.
    cmd.add_option("--secret", flags.refused)
        ->group("")
        ->check(CLI::Validator(
            [](const std::string&) {
                return std::string(
                    "refusing a secret on the command line: it leaks through process lists "
                    "and shell history; put it in a variable and pass --secret-env NAME, or in "
                    "a file and pass --secret-file PATH");
            },
            ""));
}

Result<std::vector<keys::SecretText>> load_secret_flags(const SecretFlags& flags,
                                                        std::optional<std::int64_t> now) {
    if (!flags.refused.empty()) {
        return fail(ExitCode::usage,
                    "refusing --secret: a secret on the command line leaks through process "
                    "lists and shell history; put it in a variable and pass --secret-env NAME, "
                    "or in a file and pass --secret-file PATH");
    }
    auto sources = flags.sources();
    if (sources.empty()) {
        return fail(ExitCode::usage,
                    "no secret given: pass --secret-env NAME, --secret-file PATH ('-' reads "
                    "stdin) or --keyring FILE");
    }
    if (!now) {
        auto clock = keyring_now();
        if (!clock) {
            return std::unexpected(clock.error());
        }
        now = *clock;
    }
    return keys::load_secrets(sources, *now);
}

int report_error(const Context& context, const Error& error) {
    std::fflush(stdout);
    if (context.global.json) {
        nlohmann::json doc = {
            {"error", {{"code", static_cast<int>(error.code)}, {"message", error.message}}}};
        std::cerr << doc.dump() << '\n';
    } else {
        std::cerr << "hookctl: error: " << error.message << '\n';
    }
    return static_cast<int>(error.code);
}

void print_json(const nlohmann::json& doc) {
    std::cout << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Result<std::int64_t> keyring_now() {
    const char* fixed = std::getenv("HOOKCTL_NOW");
    if (fixed == nullptr || *fixed == '\0') {
        return unix_now();
    }
    auto t = util::parse_unix_seconds(fixed);
    if (!t) {
        return fail(ExitCode::usage, "HOOKCTL_NOW: " + t.error().message +
                                         " (it is a testing aid: unset it to use the clock)");
    }
    return *t;
}

bool is_tty(int fd) {
    return ::isatty(fd) == 1;
}

} // namespace hookctl::cli

namespace hookctl::cli {

Result<util::FileSource> open_body(const std::string& path, const SecretFlags& secrets) {
    if (path == "-") {
        for (const auto& f : secrets.files) {
            if (f == "-") {
                return fail(ExitCode::usage, "the body and --secret-file both read stdin: give "
                                             "the body as a FILE argument");
            }
        }
        if (is_tty(STDIN_FILENO)) {
            return fail(ExitCode::usage, "no body: give a FILE argument or pipe the body on stdin");
        }
    }
    return util::FileSource::open(path);
}

http::Prompt tty_prompt() {
    if (!is_tty(STDIN_FILENO)) {
        return {};
    }
    return [](const std::string& question) -> std::optional<std::string> {
        std::cerr << "hookctl: " << question << std::flush;
        std::string line;
        if (!std::getline(std::cin, line)) {
            return std::nullopt;
        }
        return line;
    };
}

LogSink::LogSink(const Context& context)
    : m_json(context.global.log_format == "json" ||
             (context.global.log_format.empty() && !is_tty(STDERR_FILENO)))
    , m_quiet(context.global.quiet) {}

void LogSink::write(bool warning, const std::string& message, const nlohmann::json& fields) {
    if (m_quiet && !warning) {
        return;
    }
    std::lock_guard lock(m_mutex);
    if (m_drew) {
        std::cerr << "\r\x1b[K";
    }
    if (m_json) {
        nlohmann::json doc = {{"ts", archive::format_time_ms(util::SystemClock().unix_ms())},
                              {"level", warning ? "warn" : "info"},
                              {"msg", message}};
        if (fields.is_object()) {
            doc.update(fields);
        }
        std::cerr << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    } else {
        std::cerr << (warning ? "hookctl: warning: " : "hookctl: ") << message << '\n';
    }
    std::cerr << std::flush;
}

void LogSink::bar(const std::string& line) {
    std::lock_guard lock(m_mutex);
    std::cerr << line << std::flush;
    m_drew = true;
}

void LogSink::end_bar() {
    std::lock_guard lock(m_mutex);
    if (m_drew) {
        std::cerr << '\n';
        m_drew = false;
    }
}

} // namespace hookctl::cli
