// hookctl probe: a conformance battery against a live webhook endpoint (signature checks,
// replay window, idempotency, malformed and oversized input, latency).
#include <chrono>
#include <iostream>
#include <memory>

#include <hookctl/http/target.hpp>
#include <hookctl/probe/probe.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/units.hpp>

#include "common.hpp"

namespace hookctl::cli {

void add_tls_client_options(CLI::App& cmd, http::TlsClientSpec& tls,
                            bool client_certificate); // send.cpp
http::DeliveryAdvice delivery_advice();               // send.cpp

namespace {

struct ProbeFlags {
    std::string url;
    std::string target;
    std::string scheme;
    SecretFlags secrets;
    std::string max_body = "26MiB";
    std::string latency_budget = "200ms";
    std::chrono::milliseconds timeout{10000};
    std::vector<std::string> only;
    std::vector<std::string> skip;
    std::string junit;
    bool insecure = false;
    bool yes = false;
    http::TlsClientSpec tls;
    bool expect_mtls = false;
};

Result<ExitCode> run_probe(const ProbeFlags& flags, Context& context) {
    if (!flags.url.empty() && !flags.target.empty()) {
        return fail(ExitCode::usage, "give either a URL or --target NAME, not both");
    }
    if (flags.url.empty() && flags.target.empty()) {
        return fail(ExitCode::usage, "no endpoint: give its URL or --target NAME (a target "
                                     "from the config file, see hookctl(1))");
    }
    if (auto ok = probe::validate_selection(flags.only, flags.skip); !ok) {
        return std::unexpected(ok.error());
    }
    http::DeliverySpec spec;
    spec.config_path = context.global.config;
    spec.to = flags.url;
    spec.target = flags.target;
    spec.scheme = flags.scheme;
    spec.secrets = flags.secrets.sources();
    spec.yes = flags.yes;
    spec.insecure = flags.insecure;
    spec.tls = flags.tls;
    spec.timeout = flags.timeout;
    spec.advice = delivery_advice();
    spec.advice.unknown_target = "pass --config FILE, or the endpoint's URL instead of --target";
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto prompt = tty_prompt();
    auto delivery = http::resolve_delivery(spec, prompt, *now);
    HOOKCTL_RETURN_IF_ERROR(delivery);

    probe::ProbeOptions options;
    options.url = delivery->endpoint.url;
    options.scheme = delivery->endpoint.scheme;
    options.keys = delivery->endpoint.keys;
    options.only = flags.only;
    options.skip = flags.skip;
    options.expect_mtls = flags.expect_mtls;
    options.timeout = delivery->client.total_timeout;
    auto max_body = util::parse_size(flags.max_body);
    if (!max_body) {
        return fail(ExitCode::usage, "--max-body: " + max_body.error().message);
    }
    options.max_body = *max_body;
    auto budget = util::parse_duration(flags.latency_budget);
    if (!budget) {
        return fail(ExitCode::usage, "--latency-budget: " + budget.error().message);
    }
    options.latency_budget = *budget;
    if (!context.global.quiet && is_tty(2)) {
        options.started = [](std::string_view check) {
            std::cerr << "\r\033[Kprobe: " << check << "..." << std::flush;
        };
    }

    auto transport = probe::make_http_transport(delivery->client);
    HOOKCTL_RETURN_IF_ERROR(transport);
    auto report = probe::run(options, **transport);
    if (options.started) {
        std::cerr << "\r\033[K" << std::flush;
    }
    HOOKCTL_RETURN_IF_ERROR(report);
    if (!flags.junit.empty()) {
        auto written = util::write_file_atomic(flags.junit, probe::to_junit(*report), 0644);
        if (!written) {
            return fail(ExitCode::usage, "--junit: " + written.error().message);
        }
    }
    if (context.global.json) {
        print_json(probe::to_json(*report));
    } else {
        std::cout << probe::to_table(*report);
    }
    return report->ok() ? ExitCode::ok : ExitCode::check_failed;
}

} // namespace

void register_probe(CLI::App& app, Context& context) {
    auto flags = std::make_shared<ProbeFlags>();
    auto* cmd = app.add_subcommand(
        "probe", "Conformance test of a live webhook endpoint: signatures, replay window, "
                 "idempotency, bad input, latency");
    cmd->add_option("URL", flags->url, "The endpoint to probe (or --target NAME)")
        ->type_name("URL");
    cmd->add_option("--target", flags->target,
                    "A target from the config file (url, scheme, secret)")
        ->type_name("NAME");
    cmd->add_option("--scheme", flags->scheme,
                    "Signature scheme of the endpoint (default: the target's, or mailparse)")
        ->check(CLI::IsMember(scheme_names()));
    add_secret_options(*cmd, flags->secrets);
    cmd->add_option("--only", flags->only, "Run only these checks (repeat, or comma-separated)")
        ->type_name("CHECK")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->check(CLI::IsMember(probe::check_names()));
    cmd->add_option("--skip", flags->skip, "Leave out these checks (repeat, or comma-separated)")
        ->type_name("CHECK")
        ->delimiter(',')
        ->allow_extra_args(false)
        ->check(CLI::IsMember(probe::check_names()));
    cmd->add_option("--max-body", flags->max_body,
                    "The endpoint's body limit; oversized-body sends one byte more (default 26MiB)")
        ->type_name("SIZE");
    cmd->add_option("--latency-budget", flags->latency_budget,
                    "Longest acceptable answer time of the valid event (default 200ms)")
        ->type_name("DURATION");
    add_duration_option(*cmd, "--timeout", flags->timeout,
                        "Give up on one request after this long (default 10s)", true);
    cmd->add_option("--junit", flags->junit, "Also write the results as JUnit XML to FILE")
        ->type_name("FILE");
    cmd->add_flag("--insecure", flags->insecure, "Do not verify TLS certificates");
    add_tls_client_options(*cmd, flags->tls, true);
    cmd->add_flag("--expect-mtls", flags->expect_mtls,
                  "The endpoint requires client certificates: check that a request without one "
                  "is refused (mtls-required)")
        ->group("TLS");
    cmd->add_flag("--yes", flags->yes, "Confirm probing a target marked production");
    set_run(*cmd, flags, context, run_probe);
}

} // namespace hookctl::cli
