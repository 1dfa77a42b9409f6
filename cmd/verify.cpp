// hookctl verify: check a payload against its signature headers.
#include <iostream>
#include <memory>

#include <hookctl/sig/sign.hpp>
#include <hookctl/sig/verify.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/units.hpp>

#include "common.hpp"
#include "verify_explain.hpp"

namespace hookctl::cli {
namespace {

struct VerifyOptions {
    std::string body = "-";
    std::string scheme = "auto";
    std::vector<std::string> headers;
    std::vector<std::string> header_files;
    std::string tolerance = "5m";
    std::string now;
    SecretFlags secrets;
    bool explain = false;
};

Result<util::HeaderList> collect_headers(const VerifyOptions& opt) {
    util::HeaderList headers;
    for (const auto& path : opt.header_files) {
        auto text = util::read_file(path);
        if (!text) {
            return fail(ExitCode::usage, "--headers-file: " + text.error().message);
        }
        auto block = util::parse_header_block(*text, "--headers-file " + path);
        HOOKCTL_RETURN_IF_ERROR(block);
        for (const auto& [name, value] : block->entries()) {
            headers.add(name, value);
        }
    }
    for (const auto& line : opt.headers) {
        auto entry = util::parse_header_line(line, "-H");
        HOOKCTL_RETURN_IF_ERROR(entry);
        headers.add(std::move(entry->first), std::move(entry->second));
    }
    if (headers.empty()) {
        return fail(ExitCode::usage, "no headers given: pass -H 'Name: value' (repeat) or "
                                     "--headers-file FILE");
    }
    return headers;
}

// Runs the check; returns the exit code (0 valid, 1 invalid) or an input error.
Result<ExitCode> run_verify(const VerifyOptions& opt, Context& context) {
    auto headers = collect_headers(opt);
    HOOKCTL_RETURN_IF_ERROR(headers);
    sig::VerifyRequest request;
    if (opt.scheme == "auto") {
        auto detected = sig::detect_scheme(*headers);
        if (!detected) {
            return fail(ExitCode::check_failed,
                        "missing header: no signature header of a known scheme (X-Signature, "
                        "webhook-signature, svix-signature, Stripe-Signature, "
                        "X-Hub-Signature-256, X-Slack-Signature, X-Shopify-Hmac-Sha256)");
        }
        request.scheme = *detected;
    } else {
        auto scheme = sig::parse_scheme(opt.scheme);
        HOOKCTL_RETURN_IF_ERROR(scheme);
        request.scheme = *scheme;
    }
    auto tolerance = util::parse_duration(opt.tolerance);
    if (!tolerance) {
        return fail(ExitCode::usage, "--tolerance: " + tolerance.error().message);
    }
    request.tolerance = std::chrono::duration_cast<std::chrono::seconds>(*tolerance);
    request.now = util::unix_now_s();
    request.match_when_stale = true;          // to say "genuine, but outside the tolerance"
    std::optional<std::int64_t> keyring_time; // keyrings follow --now; else the context's clock
    if (!opt.now.empty()) {
        auto now = sig::parse_timestamp(opt.now);
        if (!now) {
            return fail(ExitCode::usage, "--now: " + now.error().message);
        }
        request.now = *now;
        keyring_time = *now;
    }
    if (!keyring_time) {
        auto now = context.clock.now_s();
        HOOKCTL_RETURN_IF_ERROR(now);
        keyring_time = *now;
    }
    auto texts = load_secret_flags(opt.secrets, *keyring_time);
    HOOKCTL_RETURN_IF_ERROR(texts);
    if (opt.explain) {
        return explain_verify(request, *headers, *texts, opt.body, opt.secrets, context);
    }
    auto keys = keys::decode_keys(*texts, sig::info(request.scheme).encoding);
    HOOKCTL_RETURN_IF_ERROR(keys);
    auto body = open_body(opt.body, opt.secrets);
    HOOKCTL_RETURN_IF_ERROR(body);
    auto verdict = sig::verify(request, *headers, *keys, *body);
    HOOKCTL_RETURN_IF_ERROR(verdict);
    // A header that cannot be read is an input error: reported on stderr, exit 2.
    if (verdict->outcome == sig::Outcome::malformed_header) {
        return fail(ExitCode::usage, verdict->reason);
    }
    std::string_view scheme_name = sig::info(verdict->scheme).name;
    std::string reason = verdict->reason;
    if (verdict->outcome == sig::Outcome::stale_timestamp && verdict->fingerprint) {
        // Genuine but outside the tolerance: a capture from an old incident, or a skewed clock.
        reason += "; to check it as of then, pass --now " + std::to_string(*verdict->timestamp);
    }
    if (context.global.json) {
        nlohmann::json doc = {{"valid", verdict->ok()},
                              {"scheme", scheme_name},
                              {"outcome", sig::to_string(verdict->outcome)},
                              {"reason", reason},
                              {"signatures", verdict->signatures},
                              {"secrets", verdict->keys},
                              {"fingerprint", nullptr},
                              {"signature_matches", nullptr}};
        if (verdict->fingerprint) {
            doc["fingerprint"] = *verdict->fingerprint;
        }
        if (verdict->signature_matches) {
            doc["signature_matches"] = *verdict->signature_matches;
        }
        if (verdict->timestamp) {
            doc["timestamp"] = *verdict->timestamp;
            doc["skew"] = *verdict->skew;
        }
        if (verdict->id) {
            doc["id"] = *verdict->id;
        }
        print_json(doc);
    } else if (verdict->ok()) {
        std::cout << "valid (scheme " << scheme_name << ", secret " << *verdict->fingerprint
                  << ")\n";
    } else {
        std::cout << "invalid: " << reason << " (scheme " << scheme_name << ")\n";
    }
    return verdict->ok() ? ExitCode::ok : ExitCode::check_failed;
}

} // namespace

void register_verify(CLI::App& app, Context& context) {
    auto opt = std::make_shared<VerifyOptions>();
    auto* cmd = app.add_subcommand(
        "verify", "Verify a payload against its headers; the exit code says valid or why not");
    cmd->add_option("FILE", opt->body, "Body as received, byte for byte ('-' or absent: stdin)")
        ->type_name("FILE");
    cmd->add_option("-H,--header", opt->headers, "A received header, 'Name: value' (repeat)")
        ->type_name("HEADER")
        ->allow_extra_args(false);
    cmd->add_option("--headers-file", opt->header_files,
                    "A raw header block, as copied from a log or a curl -D dump")
        ->type_name("FILE")
        ->allow_extra_args(false);
    cmd->add_option("--scheme", opt->scheme, "Signature scheme, or auto (from the headers)")
        ->check(CLI::IsMember(scheme_names(true)))
        ->default_str("auto");
    cmd->add_option("--tolerance", opt->tolerance,
                    "Allowed timestamp skew, both directions: 300, 300s, 5m (default 5m)")
        ->type_name("DURATION");
    cmd->add_option("--now", opt->now, "Check as if now were these Unix seconds")
        ->type_name("SECONDS");
    cmd->add_flag("--explain", opt->explain,
                  "When the signature does not match, say which usual mistake explains it");
    add_secret_options(*cmd, opt->secrets);
    set_run(*cmd, opt, context, run_verify);
}

} // namespace hookctl::cli
