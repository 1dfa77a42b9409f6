// hookctl sign: sign a payload and print the headers, a JSON object or a curl command.
#include <iostream>
#include <memory>

#include <hookctl/sig/sign.hpp>
#include <hookctl/util/shell.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/units.hpp>

#include "common.hpp"

namespace hookctl::cli {
namespace {

struct SignOptions {
    std::string body = "-";
    std::string scheme = "mailparse";
    std::string timestamp;
    std::string id;
    std::string format = "headers";
    std::string url;
    std::string content_type = "application/json";
    SecretFlags secrets;
};

Result<ExitCode> run_sign(const SignOptions& opt, Context& context) {
    auto scheme = sig::parse_scheme(opt.scheme);
    HOOKCTL_RETURN_IF_ERROR(scheme);
    std::string format = context.global.json ? "json" : opt.format;
    if (format == "curl" && opt.url.empty()) {
        return fail(ExitCode::usage, "--format curl needs --url URL (where to POST)");
    }
    sig::SignRequest request;
    request.scheme = *scheme;
    request.timestamp = util::unix_now_s();
    if (!opt.timestamp.empty()) {
        auto ts = sig::parse_timestamp(opt.timestamp);
        if (!ts) {
            return fail(ExitCode::usage, "--timestamp: " + ts.error().message);
        }
        request.timestamp = *ts;
    }
    const auto& info = sig::info(*scheme);
    if (!info.id_header.empty()) {
        request.id = opt.id.empty() ? sig::new_message_id() : opt.id;
    }
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto texts = load_secret_flags(opt.secrets, *now);
    HOOKCTL_RETURN_IF_ERROR(texts);
    auto keys = keys::decode_keys(*texts, info.encoding);
    HOOKCTL_RETURN_IF_ERROR(keys);
    auto body = open_body(opt.body, opt.secrets);
    HOOKCTL_RETURN_IF_ERROR(body);
    auto signed_ = sig::sign(request, *keys, *body);
    HOOKCTL_RETURN_IF_ERROR(signed_);

    if (format == "json") {
        nlohmann::json headers = nlohmann::json::object();
        for (const auto& [name, value] : signed_->headers.entries()) {
            headers[name] = value;
        }
        nlohmann::json doc = {{"scheme", info.name},
                              {"timestamp", request.timestamp},
                              {"headers", headers},
                              {"fingerprints", signed_->fingerprints}};
        if (!request.id.empty()) {
            doc["id"] = request.id;
        }
        print_json(doc);
    } else if (format == "curl") {
        std::string cmd = "curl -sS -X POST " + util::shell_quote(opt.url) + " \\\n  -H " +
                          util::shell_quote("Content-Type: " + opt.content_type);
        for (const auto& [name, value] : signed_->headers.entries()) {
            cmd += " \\\n  -H " + util::shell_quote(name + ": " + value);
        }
        cmd += " \\\n  --data-binary " + util::shell_quote("@" + opt.body);
        std::cout << cmd << '\n';
        if (opt.body == "-" && !context.global.quiet) {
            std::cerr << "hookctl: note: the body came from stdin; pipe the same bytes into "
                         "this curl command\n";
        }
    } else {
        for (const auto& [name, value] : signed_->headers.entries()) {
            std::cout << name << ": " << value << '\n';
        }
    }
    return ExitCode::ok;
}

} // namespace

void register_sign(CLI::App& app, Context& context) {
    auto opt = std::make_shared<SignOptions>();
    auto* cmd =
        app.add_subcommand("sign", "Sign a payload: print headers, JSON, or a curl command");
    cmd->add_option("FILE", opt->body, "Body to sign, byte for byte ('-' or absent: stdin)")
        ->type_name("FILE");
    cmd->add_option("--scheme", opt->scheme, "Signature scheme")
        ->check(CLI::IsMember(scheme_names()))
        ->default_str("mailparse");
    cmd->add_option("--timestamp", opt->timestamp, "Unix seconds to sign (default: now)")
        ->type_name("SECONDS");
    cmd->add_option("--id", opt->id, "Message id for standard/svix (default: a fresh msg_... id)");
    cmd->add_option("--format", opt->format, "Output: headers, json or curl")
        ->check(CLI::IsMember({"headers", "json", "curl"}))
        ->default_str("headers");
    cmd->add_option("--url", opt->url, "Target URL for --format curl");
    cmd->add_option("--content-type", opt->content_type,
                    "Content-Type in --format curl (default application/json)");
    add_secret_options(*cmd, opt->secrets);
    set_run(*cmd, opt, context, run_sign);
}

} // namespace hookctl::cli
