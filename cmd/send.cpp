// hookctl send: sign and POST one payload (JSON, or .eml parsed to the event JSON) with retries.
#include <cstdio>
#include <iostream>
#include <memory>
#include <unistd.h>

#include <hookctl/archive/har.hpp>
#include <hookctl/http/payload.hpp>
#include <hookctl/http/target.hpp>

#include "common.hpp"

namespace hookctl::cli {

// The command line names one destination: exactly one of --to and --target, and --to an
// http:// or https:// URL. Fails (exit 2) naming the flags.
Result<void> check_destination(const http::DeliverySpec& spec) {
    if (spec.to.empty() == spec.target.empty()) {
        return fail(ExitCode::usage, spec.to.empty()
                                         ? "no destination: pass --to URL or --target NAME"
                                         : "--to and --target both given: pass one of them");
    }
    if (!spec.to.empty() && !spec.to.starts_with("http://") && !spec.to.starts_with("https://")) {
        return fail(ExitCode::usage, "--to " + spec.to + ": not an http:// or https:// URL");
    }
    return {};
}

namespace {

struct SendOptions {
    std::string body = "-";
    http::DeliverySpec spec;
    SecretFlags secrets;
    std::vector<std::string> headers;
    std::string event_id;
    std::string content_type = "application/json";
    std::string org_id;
    std::string from_har; // --from-har FILE
    int entry = 1;        // --entry N
    bool content_type_given = false;
};

// The payload of entry `opt.entry` of the HAR file `opt.from_har`: its body, and (unless given)
// its event id and content type; its headers that are not signatures or connection headers go
// into `extra`.
Result<std::string> har_payload(SendOptions& opt, util::HeaderList& extra) {
    if (opt.body != "-") {
        return fail(ExitCode::usage, "--from-har and a payload FILE both given: pass one of them");
    }
    auto request = archive::read_har_entry(opt.from_har, opt.entry);
    HOOKCTL_RETURN_IF_ERROR(request);
    if (opt.event_id.empty()) {
        opt.event_id = request->event_id;
    }
    if (!opt.content_type_given) {
        opt.content_type = request->content_type;
    }
    const auto carried = archive::carried_headers(request->headers);
    for (const auto& [name, value] : carried.entries()) {
        extra.add(name, value);
    }
    return std::move(request->body);
}

std::string excerpt(std::string_view body, std::size_t limit) {
    std::string out;
    for (char c : body.substr(0, limit)) {
        out += (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f)) ? c : '.';
    }
    if (body.size() > limit) {
        out += "...";
    }
    return out;
}

Result<ExitCode> run_send(const SendOptions& options, Context& context) {
    SendOptions opt = options; // the payload and the delivery spec are settled in place
    opt.spec.config_path = context.global.config;
    opt.spec.secrets = opt.secrets.sources();
    util::HeaderList extra;
    for (const auto& h : opt.headers) {
        auto entry = util::parse_header_line(h, "-H");
        HOOKCTL_RETURN_IF_ERROR(entry);
        extra.add(entry->first, entry->second);
    }

    std::optional<std::string> har;
    if (!opt.from_har.empty()) {
        auto payload = har_payload(opt, extra);
        HOOKCTL_RETURN_IF_ERROR(payload);
        har = std::move(*payload);
    }

    // The payload: JSON as given, or an .eml parsed to the event JSON.
    if (!har && opt.body == "-" && is_tty(STDIN_FILENO)) {
        return fail(ExitCode::usage, "no payload: give a FILE argument or pipe it on stdin");
    }
    auto raw = har ? Result<std::string>(std::move(*har)) : util::read_file(opt.body);
    HOOKCTL_RETURN_IF_ERROR(raw);
    http::PayloadInput input;
    input.raw = std::move(*raw);
    input.is_eml = opt.body.size() > 4 && opt.body.ends_with(".eml");
    input.org_id = opt.org_id;
    input.content_type = opt.content_type;
    input.event_id = opt.event_id;
    auto payload = http::build_payload(std::move(input));
    if (!payload) {
        if (payload.error().kind == http::PayloadFailure::not_json) {
            return fail(ExitCode::usage, (opt.from_har.empty() ? opt.body : opt.from_har) +
                                             ": not valid JSON (pass --content-type TYPE "
                                             "to send other bytes)");
        }
        return std::unexpected(payload.error().error);
    }
    const std::string& body = payload->body;
    const std::string& event_id = payload->event_id;
    extra.add("traceparent", http::make_traceparent(payload->trace_id));

    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto destination = check_destination(opt.spec);
    HOOKCTL_RETURN_IF_ERROR(destination);
    auto resolved = http::resolve_delivery(opt.spec, tty_prompt(), *now);
    HOOKCTL_RETURN_IF_ERROR(resolved);
    resolved->endpoint.content_type = opt.content_type;
    auto client = http::Client::create(resolved->client);
    HOOKCTL_RETURN_IF_ERROR(client);
    LogSink logs(context);
    auto result = http::deliver(
        *client, resolved->endpoint, event_id, body, extra, resolved->policy,
        [&](const http::Attempt& a) {
            if (context.global.json || a.decision.verdict == http::Verdict::delivered) {
                return;
            }
            std::string line = "attempt " + std::to_string(a.number) + ": " +
                               (a.response.status ? "HTTP " + std::to_string(a.response.status)
                                                  : a.response.transport_error);
            if (a.wait_before_next.count() > 0 || a.decision.verdict == http::Verdict::retry) {
                if (a.wait_before_next.count() > 0 || a.number <= resolved->policy.retries) {
                    line += "; retrying in " + std::to_string(a.wait_before_next.count()) + " ms" +
                            (a.decision.retry_after ? " (Retry-After)" : "");
                }
            }
            logs.write(false, line,
                       {{"event_id", event_id},
                        {"attempt", a.number},
                        {"status", a.response.status},
                        {"reason", a.decision.reason},
                        {"detail", a.response.status ? excerpt(a.response.body, 512)
                                                     : a.response.transport_error}});
        });
    HOOKCTL_RETURN_IF_ERROR(result);
    const http::Attempt& last = result->attempts.back();
    double latency_ms = static_cast<double>(last.response.latency.count()) / 1000.0;
    if (context.global.json) {
        nlohmann::json attempts = nlohmann::json::array();
        for (const auto& a : result->attempts) {
            attempts.push_back(
                {{"attempt", a.number},
                 {"status", a.response.status},
                 {"latency_ms", static_cast<double>(a.response.latency.count()) / 1000.0},
                 {"reason", a.decision.reason},
                 {"error", a.response.transport_error}});
        }
        print_json({{"delivered", result->delivered},
                    {"event_id", event_id},
                    {"target", resolved->target_label},
                    {"status", last.response.status},
                    {"latency_ms", latency_ms},
                    {"http_version", last.response.http_version},
                    {"attempts", attempts},
                    {"reason", result->delivered ? "" : result->reason},
                    {"body", excerpt(last.response.body, 2048)}});
    } else {
        char latency[32];
        std::snprintf(latency, sizeof latency, "%.1f ms", latency_ms);
        std::string status = last.response.status ? "HTTP " + std::to_string(last.response.status)
                                                  : last.response.transport_error;
        std::cout << (result->delivered ? "delivered: " : "not delivered: ") << status << " in "
                  << latency << " (" << result->attempts.size()
                  << (result->attempts.size() == 1 ? " attempt" : " attempts") << ", event "
                  << event_id << ")\n";
        if (!last.response.body.empty() && !context.global.quiet) {
            std::cout << excerpt(last.response.body, 512) << '\n';
        }
        if (!result->delivered) {
            logs.write(true,
                       "not delivered to " + resolved->target_label + ": " + result->reason +
                           (last.decision.verdict == http::Verdict::permanent
                                ? " (permanent: not retried)"
                                : " (retries exhausted)"),
                       {{"event_id", event_id},
                        {"attempt", last.number},
                        {"status", last.response.status},
                        {"reason", result->reason}});
        }
    }
    return result->delivered ? ExitCode::ok : ExitCode::check_failed;
}

} // namespace

void add_tls_client_options(CLI::App& cmd, http::TlsClientSpec& tls, bool client_certificate) {
    // The library's TLS messages name the settings by these flags ("--cacert ca.pem: ...").
    tls.names = {
        "--cacert", "--capath", "--cert", "--key", "--key-passphrase-env", "--key-passphrase-file"};
    const char* group = "TLS";
    cmd.add_option("--cacert", tls.ca_file,
                   "Trust the CA certificates in this PEM FILE (instead of the system store)")
        ->type_name("FILE")
        ->group(group);
    cmd.add_option("--capath", tls.ca_path,
                   "Trust the CA certificates in DIR (prepared with 'openssl rehash DIR')")
        ->type_name("DIR")
        ->group(group);
    if (!client_certificate) {
        return;
    }
    cmd.add_option("--cert", tls.cert, "Present this PEM client certificate (mutual TLS)")
        ->type_name("FILE")
        ->group(group);
    cmd.add_option("--key", tls.key,
                   "The PEM private key of --cert, mode 0600 (default: in the --cert file)")
        ->type_name("FILE")
        ->group(group);
    cmd.add_option("--key-passphrase-env", tls.key_passphrase_env,
                   "Read the passphrase of an encrypted --key from environment variable NAME")
        ->type_name("NAME")
        ->group(group);
    cmd.add_option("--key-passphrase-file", tls.key_passphrase_file,
                   "Read the passphrase of an encrypted --key from FILE (mode 0600)")
        ->type_name("FILE")
        ->group(group);
    // Accepted only to be refused with advice: a passphrase on argv leaks to `ps` and history.
    cmd.add_option("--key-passphrase,--pass")
        ->group("")
        ->check(CLI::Validator(
            [](const std::string&) {
                return std::string(
                    "refusing a key passphrase on the command line: it leaks through process "
                    "lists and shell history; put it in a variable and pass "
                    "--key-passphrase-env NAME, or in a file and pass --key-passphrase-file "
                    "PATH");
            },
            ""));
}

// What the library's delivery messages tell a person to pass: the delivery flags.
http::DeliveryAdvice delivery_advice() {
    http::DeliveryAdvice advice;
    advice.missing_config = "pass --config FILE";
    advice.unknown_target = "pass --config FILE or --to URL";
    advice.confirm = "pass --yes to confirm";
    advice.add_secret = "pass --secret-env NAME, --secret-file PATH or --keyring FILE";
    return advice;
}

void add_delivery_options(CLI::App& cmd, http::DeliverySpec& spec) {
    spec.advice = delivery_advice();
    cmd.add_option("--to", spec.to, "Deliver to this URL")->type_name("URL");
    cmd.add_option("--target", spec.target, "Deliver to a target named in the config file")
        ->type_name("NAME");
    cmd.add_option("--scheme", spec.scheme,
                   "Signature scheme (default: the target's, or mailparse)")
        ->check(CLI::IsMember(scheme_names()));
    cmd.add_flag("--yes", spec.yes, "Confirm delivery to a production target");
    cmd.add_flag("--insecure", spec.insecure, "Do not verify TLS certificates");
    cmd.add_option("--retries", spec.retries, "Retries after the first attempt (default 5)")
        ->type_name("N")
        ->check(whole_number(0, 1000))
        ->group("Retry");
    add_duration_option(cmd, "--backoff-base", spec.backoff_base,
                        "First backoff ceiling; doubles per retry, full jitter (default 500ms)")
        ->group("Retry");
    add_duration_option(cmd, "--backoff-max", spec.backoff_max,
                        "Cap of one backoff delay (default 30s)")
        ->group("Retry");
    add_duration_option(cmd, "--max-elapsed", spec.max_elapsed,
                        "Give up on an event after this long (default: no limit)")
        ->group("Retry");
    add_duration_option(cmd, "--timeout", spec.timeout, "Whole-request timeout (default 30s)",
                        true);
    add_duration_option(cmd, "--connect-timeout", spec.connect_timeout,
                        "Connect timeout (default 10s)", true);
    add_tls_client_options(cmd, spec.tls, true);
}

void register_send(CLI::App& app, Context& context) {
    auto opt = std::make_shared<SendOptions>();
    auto* cmd = app.add_subcommand("send", "Sign and POST one payload (JSON or .eml) with retries");
    cmd->add_option("FILE", opt->body, "Payload: JSON, or a .eml message ('-': stdin)")
        ->type_name("FILE");
    add_delivery_options(*cmd, opt->spec);
    cmd->add_option("-H,--header", opt->headers, "Extra header 'Name: value' (repeatable)")
        ->allow_extra_args(false);
    cmd->add_option("--event-id", opt->event_id,
                    "Idempotency-Key (default: the payload's event_id, else from its SHA-256)");
    cmd->add_option("--content-type", opt->content_type,
                    "Content-Type (default application/json; other types skip the JSON check)")
        ->each([opt](const std::string&) { opt->content_type_given = true; });
    cmd->add_option("--org", opt->org_id, "org_id for an .eml parsed to the event JSON");
    auto* from_har =
        cmd->add_option(
               "--from-har", opt->from_har,
               "Send the request body of a HAR file's entry (with its event id and headers)")
            ->type_name("FILE");
    cmd->add_option("--entry", opt->entry, "Which entry of --from-har, from 1 (default 1)")
        ->type_name("N")
        ->check(CLI::PositiveNumber)
        ->needs(from_har);
    add_secret_options(*cmd, opt->secrets);
    set_run(*cmd, opt, context, run_send);
}

} // namespace hookctl::cli
