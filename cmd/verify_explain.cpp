// hookctl verify --explain: the check re-run under the usual mistakes (sig::explain).
#include "verify_explain.hpp"

#include <iostream>

#include <hookctl/sig/explain.hpp>

namespace hookctl::cli {

Result<ExitCode> explain_verify(const sig::VerifyRequest& request, const util::HeaderList& headers,
                                const std::vector<keys::SecretText>& secrets,
                                const std::string& body_path, const SecretFlags& flags,
                                const Context& context) {
    auto source = open_body(body_path, flags);
    if (!source) {
        return std::unexpected(source.error());
    }
    auto body = util::read_all(*source);
    if (!body) {
        return std::unexpected(body.error());
    }
    auto past = sig::keys_outside_window(flags.keyrings, request.now);
    if (!past) {
        return std::unexpected(past.error());
    }
    auto explained = sig::explain(request, headers, secrets, *past, *body);
    if (!explained) {
        return std::unexpected(explained.error());
    }
    if (context.global.json) {
        print_json(sig::to_json(*explained));
    } else {
        std::cout << sig::to_text(*explained) << std::flush;
    }
    if (explained->exit_code == ExitCode::usage && !context.global.json) {
        report_error(context,
                     {ExitCode::usage, explained->secret_error.empty() ? explained->verdict.reason
                                                                       : explained->secret_error});
    }
    return explained->exit_code;
}

} // namespace hookctl::cli
