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
    HOOKCTL_RETURN_IF_ERROR(source);
    auto body = util::read_all(*source);
    HOOKCTL_RETURN_IF_ERROR(body);
    auto past = sig::keys_outside_window(flags.keyrings, request.now);
    HOOKCTL_RETURN_IF_ERROR(past);
    auto explained = sig::explain(request, headers, secrets, *past, *body);
    HOOKCTL_RETURN_IF_ERROR(explained);
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
