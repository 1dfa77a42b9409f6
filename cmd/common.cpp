#include "common.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <mutex>
#include <netinet/in.h>
#include <set>
#include <unistd.h>

#include <hookctl/archive/archive.hpp>
#include <hookctl/sig/scheme.hpp>
#include <hookctl/util/clock.hpp>
#include <hookctl/util/headers.hpp>
#include <hookctl/util/time.hpp>
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
    add_refused_secret_option(cmd);
}

Error refuse_secret_on_argv() {
    return Error{ExitCode::usage,
                 "refusing --secret: a secret on the command line leaks through process lists "
                 "and shell history; put it in a variable and pass --secret-env NAME, or in a "
                 "file and pass --secret-file PATH"};
}

void add_refused_secret_option(CLI::App& cmd) {
    // Accepted by the parser only to be refused there, before the command runs.
    cmd.add_option("--secret")
        ->group("")
        ->check(
            CLI::Validator([](const std::string&) { return refuse_secret_on_argv().message; }, ""));
}

Result<std::vector<keys::SecretText>> load_secret_flags(const SecretFlags& flags,
                                                        std::int64_t now_s) {
    auto sources = flags.sources();
    if (sources.empty()) {
        return fail(ExitCode::usage,
                    "no secret given: pass --secret-env NAME, --secret-file PATH ('-' reads "
                    "stdin) or --keyring FILE");
    }
    return keys::load_secrets(sources, now_s);
}

namespace {

constexpr const char* k_whole_number = "whole-number";

// "≥ 1", "from 1 to 256": the range a whole_number check states.
std::string range_text(std::int64_t min, std::int64_t max) {
    if (max == std::numeric_limits<std::int64_t>::max()) {
        return "≥ " + std::to_string(min);
    }
    return "from " + std::to_string(min) + " to " + std::to_string(max);
}

} // namespace

CLI::Validator whole_number(std::int64_t min, std::int64_t max) {
    return CLI::Validator(
        [min, max](std::string& value) -> std::string {
            std::string_view text = util::trim(value);
            std::int64_t n = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            bool whole = !text.empty() && end == text.data() + text.size() &&
                         ec != std::errc::invalid_argument;
            if (whole && ec == std::errc() && n >= min && n <= max) {
                value = std::string(text);
                return {};
            }
            return "must be a whole number " + range_text(min, max) + ", not '" + value + "'";
        },
        "", k_whole_number);
}

namespace {

// CLI11 2.3 shows an option's validators to no one: get_validator(name) throws for an option
// without that validator, which check_value_names asked of every option of every command at each
// start (hundreds of exceptions, thrown and caught: 4% of a `hookctl verify`). The
// using-declaration names the protected member publicly, so a pointer to it can be taken.
struct OptionValidators : CLI::Option {
    using CLI::Option::validators_;
};

} // namespace

bool has_whole_number_check(const CLI::Option& option) {
    const std::vector<CLI::Validator>& validators = option.*(&OptionValidators::validators_);
    return std::any_of(validators.begin(), validators.end(),
                       [](const CLI::Validator& v) { return v.get_name() == k_whole_number; });
}

CLI::Validator host_port() {
    return CLI::Validator(
        [](std::string& value) -> std::string {
            std::string host;
            std::string_view port;
            if (value.starts_with('[')) {
                auto close = value.find("]:");
                if (close != std::string::npos) {
                    host = value.substr(1, close - 1);
                    port = std::string_view(value).substr(close + 2);
                }
            } else if (auto colon = value.rfind(':'); colon != std::string::npos) {
                host = value.substr(0, colon);
                port = std::string_view(value).substr(colon + 1);
            }
            unsigned char address[sizeof(in6_addr)];
            bool ip = host == "localhost" || ::inet_pton(AF_INET, host.c_str(), address) == 1 ||
                      ::inet_pton(AF_INET6, host.c_str(), address) == 1;
            unsigned number = 0;
            auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
            if (ip && !port.empty() && ec == std::errc() && end == port.data() + port.size() &&
                number <= 65535) {
                return {};
            }
            return "must be HOST:PORT with an IP address and a port up to 65535 "
                   "(127.0.0.1:8080, [::1]:8080; port 0 picks a free one), not '" +
                   value + "'";
        },
        "", "host-port");
}

namespace {

// The check of a DURATION flag: a duration (the empty text too when `empty_ok`), above zero when
// `above_zero`.
CLI::Validator duration_check(bool above_zero, bool empty_ok) {
    return CLI::Validator(
        [above_zero, empty_ok](std::string& value) -> std::string {
            if (value.empty() && empty_ok) {
                return {};
            }
            auto d = util::parse_duration(value);
            if (!d) {
                return d.error().message;
            }
            if (above_zero && d->count() <= 0) {
                return "must be a duration above zero, not '" + value + "'";
            }
            return {};
        },
        "", "duration");
}

} // namespace

CLI::Option* add_duration_option(CLI::App& cmd, const std::string& name,
                                 std::chrono::milliseconds& into, const std::string& description,
                                 bool above_zero) {
    return cmd
        .add_option_function<std::string>(
            name,
            [&into](const std::string& value) {
                into = util::parse_duration(value).value(); // checked by duration_check
            },
            description)
        ->type_name("DURATION")
        ->check(duration_check(above_zero, false));
}

CLI::Option* add_duration_option(CLI::App& cmd, const std::string& name,
                                 std::optional<std::chrono::milliseconds>& into,
                                 const std::string& description) {
    return cmd
        .add_option_function<std::string>(
            name,
            [&into](const std::string& value) {
                into = value.empty() ? std::nullopt
                                     : std::optional(util::parse_duration(value).value());
            },
            description)
        ->type_name("DURATION")
        ->check(duration_check(false, true));
}

void check_value_names(CLI::App& app) {
    for (CLI::Option* option : app.get_options()) {
        if (option->get_items_expected_max() == 0) {
            continue;
        }
        std::string type_name = option->get_type_name();
        if (has_whole_number_check(*option)) {
            continue;
        }
        if (type_name == "N") {
            option->check(whole_number(0));
        } else if (type_name == "CODE") {
            option->check(whole_number(100, 599));
        } else if (type_name == "HOST:PORT") {
            option->check(host_port());
        }
    }
    std::function<bool(CLI::App*)> every = [](CLI::App*) { return true; };
    for (CLI::App* sub : app.get_subcommands(every)) {
        check_value_names(*sub); // option groups are unnamed subcommands: walked too
    }
}

void report_warning(const Context& context, const std::string& message) {
    static std::mutex mutex;
    static std::set<std::string> printed;
    std::lock_guard lock(mutex);
    if (!printed.insert(message).second) {
        return;
    }
    std::string line;
    if (context.global.json) {
        line = nlohmann::json{{"warning", {{"message", message}}}}.dump();
    } else if (context.global.log_format == "json") {
        line = nlohmann::json{{"level", "warn"}, {"msg", message}}.dump();
    } else {
        line = "hookctl: warning: " + message;
    }
    std::cerr << line << '\n';
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

int exit_status(const Context& context, const Result<ExitCode>& result) {
    return result ? static_cast<int>(*result) : report_error(context, result.error());
}

void print_json(const nlohmann::json& doc) {
    std::cout << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

namespace {

std::optional<std::string> fixed_now_from_environment() {
    const char* fixed = std::getenv("HOOKCTL_NOW");
    if (fixed == nullptr) {
        return std::nullopt;
    }
    return std::string(fixed);
}

} // namespace

InvocationClock::InvocationClock()
    : InvocationClock(fixed_now_from_environment()) {}

InvocationClock::InvocationClock(std::optional<std::string> fixed_text) {
    if (!fixed_text || fixed_text->empty()) {
        return;
    }
    auto t = util::parse_unix_seconds(*fixed_text);
    if (t) {
        m_fixed = *t;
    } else {
        m_fixed = fail(ExitCode::usage, "HOOKCTL_NOW: " + t.error().message +
                                            " (it is a testing aid: unset it to use the clock)");
    }
}

Result<std::int64_t> InvocationClock::now_s() const {
    return m_fixed ? *m_fixed : util::unix_now_s();
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

Result<double> parse_share(const std::string& flag, const std::string& given_text,
                           bool zero_allowed) {
    std::string text = given_text;
    bool percent = text.ends_with("%");
    if (percent) {
        text.pop_back();
    }
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value)) {
        return fail(ExitCode::usage,
                    flag + " " + given_text + ": expected a share such as 0.2 or 20%");
    }
    if (percent) {
        value /= 100.0;
    }
    if (zero_allowed ? (value < 0 || value > 1) : (value <= 0 || value > 1)) {
        return fail(ExitCode::usage, flag + " " + given_text +
                                         (zero_allowed ? ": must be from 0 to 1 (0%-100%)"
                                                       : ": must be above 0 and at most 1"));
    }
    return value;
}

std::vector<std::string> scheme_names(bool with_auto) {
    std::vector<std::string> names;
    if (with_auto) {
        names.emplace_back("auto");
    }
    for (const auto& info : sig::all_schemes()) {
        names.emplace_back(info.name);
    }
    return names;
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
        nlohmann::json doc = {{"ts", util::format_time_ms(util::SystemClock().unix_ms())},
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
