#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <string_view>

#include <hookctl/keys/secret.hpp>
#include <hookctl/util/spelling.hpp>

#include "app.hpp"
#include "common.hpp"

namespace {

using namespace hookctl;

std::vector<CLI::App*> named_subcommands(CLI::App& app) {
    std::function<bool(CLI::App*)> named = [](CLI::App* sub) {
        return !sub->get_name().empty() && !sub->get_disabled();
    };
    return app.get_subcommands(named);
}

// The option `name` (`--config`, `-q`) of `command` or of a command above it (global flags fall
// through), or null.
const CLI::Option* find_option(CLI::App* command, const std::string& name) {
    for (CLI::App* c = command; c != nullptr; c = c->get_parent()) {
        if (const CLI::Option* opt = c->get_option_no_throw(name)) {
            return opt;
        }
    }
    return nullptr;
}

// Where the command line names a command that does not exist: the command it was given to
// (`hookctl`, `hookctl secret`), the word, and that command's subcommands.
struct UnknownCommand {
    std::string parent;
    std::string word;
    std::vector<std::string> known;
};

// Follows argv down the command tree, skipping options and their values; finds the first word
// given where a command needs a subcommand and none has that name.
std::optional<UnknownCommand> find_unknown_command(CLI::App& app, int argc, char** argv) {
    CLI::App* command = &app;
    std::string path = "hookctl";
    for (int i = 1; i < argc; ++i) {
        std::string word = argv[i];
        if (word == "--") {
            return std::nullopt;
        }
        if (word.size() > 1 && word.front() == '-') {
            std::string name = word.substr(0, word.find('='));
            const CLI::Option* opt = find_option(command, name);
            if (opt != nullptr && opt->get_items_expected_max() > 0 &&
                word.find('=') == std::string::npos) {
                ++i; // its value
            }
            continue;
        }
        auto subs = named_subcommands(*command);
        auto next =
            std::ranges::find_if(subs, [&](CLI::App* sub) { return sub->check_name(word); });
        if (next != subs.end()) {
            command = *next;
            path += " " + word;
            continue;
        }
        if (subs.empty() || command->get_require_subcommand_min() == 0) {
            return std::nullopt; // a positional argument: the command is found
        }
        std::vector<std::string> known;
        for (CLI::App* sub : subs) {
            known.push_back(sub->get_name());
        }
        return UnknownCommand{path, word, known};
    }
    return std::nullopt;
}

std::string unknown_command_message(const UnknownCommand& unknown) {
    std::string prefix = unknown.parent == "hookctl" ? "" : unknown.parent.substr(8) + " ";
    std::string message = "unknown command '" + prefix + unknown.word + "'";
    if (unknown.word == "help" || unknown.word == "version") {
        return message + ": hookctl has the flag instead: '" + unknown.parent + " --" +
               unknown.word + "'";
    }
    if (auto closest = util::closest_word(unknown.word, unknown.known)) {
        message += closest->likely ? "; did you mean '" + prefix + closest->word + "'?"
                                   : "; the closest is '" + prefix + closest->word + "'";
    }
    return message + " (see '" + unknown.parent + " --help' for every command)";
}

// The deepest command the parser reached, for naming the help to read.
CLI::App* deepest_command(CLI::App& app) {
    CLI::App* command = &app;
    while (!command->get_subcommands().empty()) {
        command = command->get_subcommands().front();
    }
    return command;
}

std::string command_path(CLI::App* command) {
    std::string path;
    for (CLI::App* c = command; c != nullptr; c = c->get_parent()) {
        path = c->get_name() + (path.empty() ? "" : " " + path);
    }
    return path;
}

// CLI11's message for `error`, in the words hookctl uses.
std::string usage_message(const CLI::ParseError& error, CLI::App* command) {
    std::string message = error.what();
    if (message.starts_with(": ")) {
        message.erase(0, 2); // CLI11 leaves an empty option name before some validators
    }
    // A value the option's type cannot hold ("Could not convert: --threads = 99999999999"):
    // after a whole_number check, only one too large.
    constexpr std::string_view k_conversion = "Could not convert: ";
    auto equals = message.find(" = ");
    if (dynamic_cast<const CLI::ConversionError*>(&error) != nullptr &&
        message.starts_with(k_conversion) && equals != std::string::npos) {
        std::string name = message.substr(k_conversion.size(), equals - k_conversion.size());
        std::string value = message.substr(equals + 3);
        const CLI::Option* opt = find_option(command, name);
        message = name + ": '" + value + "' " +
                  (opt != nullptr && cli::has_whole_number_check(*opt)
                       ? "is too large for this flag"
                       : "is not a value this flag accepts");
    }
    if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr &&
        message == "A subcommand is required") {
        std::string names;
        auto subs = named_subcommands(*command);
        for (std::size_t i = 0; i < subs.size(); ++i) {
            names += (i == 0 ? "" : i + 1 == subs.size() ? " or " : ", ") + subs[i]->get_name();
        }
        message = "'" + command_path(command) + "' needs a command: " + names;
    }
    return message;
}

} // namespace

int main(int argc, char** argv) {
    using namespace hookctl;
    CLI::App app{"", "hookctl"};
    cli::Context context;
    cli::build_app(app, context, argc, argv);
    keys::set_warning_sink(
        [&context](const std::string& message) { cli::report_warning(context, message); });
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion&) {
        std::cout << "hookctl " << HOOKCTL_VERSION << '\n';
        return 0;
    } catch (const CLI::ParseError& e) {
        if (argc == 1) {
            std::cerr << app.help();
            return static_cast<int>(ExitCode::usage);
        }
        if (auto unknown = find_unknown_command(app, argc, argv)) {
            return cli::report_error(context,
                                     Error{ExitCode::usage, unknown_command_message(*unknown)});
        }
        CLI::App* command = deepest_command(app);
        return cli::report_error(context,
                                 Error{ExitCode::usage, usage_message(e, command) + " (see '" +
                                                            command_path(command) + " --help')"});
    } catch (const std::exception& e) {
        return cli::report_error(
            context, Error{ExitCode::environment, std::string("internal error: ") + e.what()});
    }
    std::fflush(stdout);
    return context.exit_code;
}
