// hookctl trigger: send a built-in inbound-email scenario, signed and delivered as `send` does,
// and say whether the receiver answered as a conformant one should.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include <hookctl/http/target.hpp>
#include <hookctl/trigger/deliver.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/units.hpp>

#include "common.hpp"

namespace hookctl::cli {

void add_delivery_options(CLI::App& cmd, http::DeliverySpec& spec); // send.cpp
Result<void> check_destination(const http::DeliverySpec& spec);     // send.cpp

namespace {

struct TriggerOptions {
    std::string scenario;
    bool list = false;
    bool dry_run = false;
    std::vector<std::string> sets;
    int count = 20;
    std::string size = "10MiB";
    std::string org = "org_trigger";
    http::DeliverySpec spec;
    SecretFlags secrets;
};

void print_list(const Context& context) {
    if (context.global.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& s : trigger::scenarios()) {
            list.push_back({{"name", s.name},
                            {"sends", s.summary},
                            {"expected", s.expect.text()},
                            {"answer", s.answer}});
        }
        print_json(list);
        return;
    }
    for (const auto& s : trigger::scenarios()) {
        std::printf("%-17s %-18s %s\n%-36s conformant answer: %s\n", std::string(s.name).c_str(),
                    s.expect.text().c_str(), std::string(s.summary).c_str(), "",
                    std::string(s.answer).c_str());
    }
}

Result<ExitCode> run_trigger(const TriggerOptions& options, Context& context) {
    TriggerOptions opt = options; // the delivery spec is settled in place
    if (opt.list) {
        print_list(context);
        return ExitCode::ok;
    }
    if (opt.scenario.empty()) {
        return std::unexpected(trigger::find_scenario("").error());
    }
    auto scenario = trigger::find_scenario(opt.scenario);
    HOOKCTL_RETURN_IF_ERROR(scenario);
    util::SystemClock clock;
    trigger::Options build;
    build.org_id = opt.org;
    build.now_ms = clock.unix_ms();
    build.nonce = util::hex_encode(util::random_bytes(6));
    build.count = opt.count;
    auto size = util::parse_size(opt.size);
    if (!size) {
        return fail(ExitCode::usage, "--size: " + size.error().message);
    }
    build.attachment_size = *size;
    for (const auto& text : opt.sets) {
        auto override = trigger::parse_override(text);
        HOOKCTL_RETURN_IF_ERROR(override);
        build.overrides.push_back(std::move(*override));
    }
    auto deliveries = trigger::build(**scenario, build);
    HOOKCTL_RETURN_IF_ERROR(deliveries);

    opt.spec.config_path = context.global.config;
    opt.spec.secrets = opt.secrets.sources();
    opt.spec.yes = opt.spec.yes || opt.dry_run; // nothing is sent: no production guard
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    auto destination = check_destination(opt.spec);
    HOOKCTL_RETURN_IF_ERROR(destination);
    auto resolved = http::resolve_delivery(opt.spec, tty_prompt(), *now);
    HOOKCTL_RETURN_IF_ERROR(resolved);

    if (opt.dry_run) {
        nlohmann::json requests = nlohmann::json::array();
        for (const auto& d : *deliveries) {
            auto request = trigger::request_for(resolved->endpoint, d, clock);
            HOOKCTL_RETURN_IF_ERROR(request);
            if (context.global.json) {
                nlohmann::json headers = nlohmann::json::array();
                for (const auto& [name, value] : request->headers.entries()) {
                    headers.push_back({name, value});
                }
                requests.push_back({{"label", d.label},
                                    {"expected", d.expect.text()},
                                    {"method", request->method},
                                    {"url", request->url},
                                    {"headers", headers},
                                    {"body", request->body}});
                continue;
            }
            std::cout << request->method << ' ' << request->url << '\n';
            for (const auto& [name, value] : request->headers.entries()) {
                std::cout << name << ": " << value << '\n';
            }
            std::cout << '\n' << request->body << "\n\n";
        }
        if (context.global.json) {
            print_json({{"scenario", (*scenario)->name}, {"requests", requests}});
        }
        return ExitCode::ok;
    }

    auto client = http::Client::create(resolved->client);
    HOOKCTL_RETURN_IF_ERROR(client);
    const std::string name((*scenario)->name);
    auto sent = trigger::deliver_all(
        *client, resolved->endpoint, resolved->policy, *deliveries, clock,
        [&](const trigger::Sent& s) {
            if (context.global.json) {
                return;
            }
            const auto& last = s.result.attempts.back().response;
            char latency[32];
            std::snprintf(latency, sizeof latency, "%.1f ms",
                          static_cast<double>(last.latency.count()) / 1000.0);
            std::string answer =
                s.status ? "HTTP " + std::to_string(s.status) : last.transport_error;
            std::cout << name << (s.delivery.label.empty() ? "" : " " + s.delivery.label) << ": "
                      << answer << " in " << latency << ", event " << s.delivery.event_id << ": "
                      << (s.as_documented ? "as documented (" + s.delivery.expect.text() + ")"
                                          : "NOT as documented: a conformant receiver answers " +
                                                s.delivery.expect.text())
                      << '\n'
                      << std::flush;
        });
    HOOKCTL_RETURN_IF_ERROR(sent);
    bool all = std::all_of(sent->begin(), sent->end(),
                           [](const trigger::Sent& s) { return s.as_documented; });
    if (context.global.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& s : *sent) {
            const auto& last = s.result.attempts.back();
            list.push_back(
                {{"label", s.delivery.label},
                 {"event_id", s.delivery.event_id},
                 {"status", s.status},
                 {"latency_ms", static_cast<double>(last.response.latency.count()) / 1000.0},
                 {"attempts", s.result.attempts.size()},
                 {"reason", last.decision.reason},
                 {"error", last.response.transport_error},
                 {"as_documented", s.as_documented}});
        }
        print_json({{"scenario", name},
                    {"target", resolved->target_label},
                    {"expected", (*scenario)->expect.text()},
                    {"answer", (*scenario)->answer},
                    {"as_documented", all},
                    {"deliveries", list}});
    }
    return all ? ExitCode::ok : ExitCode::check_failed;
}

} // namespace

void register_trigger(CLI::App& app, Context& context) {
    auto opt = std::make_shared<TriggerOptions>();
    auto* cmd = app.add_subcommand(
        "trigger", "Send a built-in inbound-email scenario (bounce, auto-reply, malformed MIME, "
                   "stale timestamp, ...) and check the receiver's answer");
    cmd->add_option("SCENARIO", opt->scenario, "Scenario to send (--list shows them)")
        ->type_name("SCENARIO");
    cmd->add_flag("--list", opt->list, "List the scenarios and what a conformant receiver answers");
    cmd->add_option("--set", opt->sets,
                    "Override a field of the event JSON: PATH=VALUE (JSON, else a string; repeat)")
        ->type_name("PATH=VALUE")
        ->allow_extra_args(false);
    cmd->add_option("--count", opt->count, "Events in the burst scenario (default 20)")
        ->type_name("N")
        ->check(CLI::Range(1, 10000));
    cmd->add_option("--size", opt->size, "Attachment of large-attachment (default 10MiB)")
        ->type_name("SIZE");
    cmd->add_option("--org", opt->org, "org_id of the events (default org_trigger)")
        ->type_name("ID");
    cmd->add_flag("--dry-run", opt->dry_run, "Print the signed request(s) instead of sending");
    add_delivery_options(*cmd, opt->spec);
    add_secret_options(*cmd, opt->secrets);
    set_run(*cmd, opt, context, run_trigger);
}

} // namespace hookctl::cli
