#include <cstdio>
#include <exception>
#include <iostream>

#include "app.hpp"
#include "common.hpp"

int main(int argc, char** argv) {
    using namespace hookctl;
    CLI::App app{"", "hookctl"};
    cli::Context context;
    cli::build_app(app, context);
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
        std::string where = "hookctl";
        for (auto* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
             sub != nullptr;
             sub = sub->get_subcommands().empty() ? nullptr : sub->get_subcommands().front()) {
            where += " " + sub->get_name();
        }
        std::string message = e.what();
        if (message.starts_with(": ")) {
            message.erase(0, 2); // CLI11 leaves an empty option name before some validators
        }
        return cli::report_error(context,
                                 Error{ExitCode::usage, message + " (see '" + where + " --help')"});
    } catch (const std::exception& e) {
        return cli::report_error(
            context, Error{ExitCode::environment, std::string("internal error: ") + e.what()});
    }
    std::fflush(stdout);
    return context.exit_code;
}
