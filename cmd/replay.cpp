// hookctl replay: re-deliver archived (or foreign, or raw-MIME) events at a set rate,
// resumably. Flags in, one call to replay::run_replay, a summary out.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <unistd.h>

#include <hookctl/http/target.hpp>
#include <hookctl/replay/replay.hpp>
#include <hookctl/util/file.hpp>

#include "common.hpp"

namespace hookctl::cli {

void add_delivery_options(CLI::App& cmd, http::DeliverySpec& spec); // send.cpp

namespace {

struct ReplayFlags {
    std::string from;
    std::string query;
    std::vector<std::string> statuses;
    std::string since;
    std::string until;
    std::vector<std::string> orgs;
    std::vector<std::string> event_ids;
    std::int64_t limit = 0;
    bool reparse = false;
    std::string mime_org;
    std::string rate;
    int burst = 0;
    int concurrency = 0;
    bool ordered = false;
    std::int64_t max_failures = 0;
    std::string max_error_rate;
    std::string archive;
    std::string resume;
    bool dry_run = false;
    bool no_progress = false;
    http::DeliverySpec spec;
    SecretFlags secrets;
};

std::atomic<int> g_stop{0};

void on_sigint(int) {
    if (g_stop.load() != 0) {
        // Second Ctrl-C: leave now. The run stays resumable (attempts are already recorded).
        static const char message[] = "\nhookctl: interrupted again: exiting now\n";
        (void)!::write(STDERR_FILENO, message, sizeof message - 1);
        ::_exit(static_cast<int>(ExitCode::aborted));
    }
    g_stop.store(1);
}

// The options that define a run, stored in its row so --resume repeats them exactly.
nlohmann::json to_json(const ReplayFlags& f) {
    return {{"from", f.from},
            {"query", f.query},
            {"status", f.statuses},
            {"since", f.since},
            {"until", f.until},
            {"org", f.orgs},
            {"event", f.event_ids},
            {"limit", f.limit},
            {"reparse", f.reparse},
            {"mime_org", f.mime_org},
            {"rate", f.rate},
            {"burst", f.burst},
            {"concurrency", f.concurrency},
            {"ordered", f.ordered},
            {"max_failures", f.max_failures},
            {"max_error_rate", f.max_error_rate},
            {"to", f.spec.to},
            {"target", f.spec.target},
            {"scheme", f.spec.scheme},
            {"insecure", f.spec.insecure},
            {"retries", f.spec.retries},
            {"backoff_base", f.spec.backoff_base},
            {"backoff_max", f.spec.backoff_max},
            {"max_elapsed", f.spec.max_elapsed},
            {"timeout", f.spec.timeout},
            {"connect_timeout", f.spec.connect_timeout}};
}

Result<void> from_json(const nlohmann::json& j, ReplayFlags& f) {
    try {
        f.from = j.at("from").get<std::string>();
        f.query = j.at("query").get<std::string>();
        f.statuses = j.at("status").get<std::vector<std::string>>();
        f.since = j.at("since").get<std::string>();
        f.until = j.at("until").get<std::string>();
        f.orgs = j.at("org").get<std::vector<std::string>>();
        f.event_ids = j.at("event").get<std::vector<std::string>>();
        f.limit = j.at("limit").get<std::int64_t>();
        f.reparse = j.at("reparse").get<bool>();
        f.mime_org = j.at("mime_org").get<std::string>();
        f.rate = j.at("rate").get<std::string>();
        f.burst = j.at("burst").get<int>();
        f.concurrency = j.at("concurrency").get<int>();
        f.ordered = j.at("ordered").get<bool>();
        f.max_failures = j.at("max_failures").get<std::int64_t>();
        f.max_error_rate = j.at("max_error_rate").get<std::string>();
        f.spec.to = j.at("to").get<std::string>();
        f.spec.target = j.at("target").get<std::string>();
        f.spec.scheme = j.at("scheme").get<std::string>();
        f.spec.insecure = j.at("insecure").get<bool>();
        f.spec.retries = j.at("retries").get<std::string>();
        f.spec.backoff_base = j.at("backoff_base").get<std::string>();
        f.spec.backoff_max = j.at("backoff_max").get<std::string>();
        f.spec.max_elapsed = j.at("max_elapsed").get<std::string>();
        f.spec.timeout = j.at("timeout").get<std::string>();
        f.spec.connect_timeout = j.at("connect_timeout").get<std::string>();
    } catch (const nlohmann::json::exception& e) {
        return fail(ExitCode::usage,
                    std::string("the stored options of this run are not readable: ") + e.what());
    }
    return {};
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

// Finds the archive that holds run `run_id`: --archive, else the run index.
Result<std::string> locate_run(const ReplayFlags& f) {
    if (!f.archive.empty()) {
        return f.archive;
    }
    auto index = util::read_file(replay::run_index_path(f.resume));
    if (!index) {
        return fail(ExitCode::usage, "cannot find run " + f.resume +
                                         ": pass --archive FILE (the archive the run was "
                                         "recorded in)");
    }
    std::string path = *index;
    while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) {
        path.pop_back();
    }
    return path;
}

Result<replay::ReplayOptions> build_options(ReplayFlags& f, const Context& context) {
    replay::ReplayOptions o;
    if (!f.secrets.refused.empty()) {
        auto refused = load_secret_flags(f.secrets);
        return std::unexpected(refused.error());
    }
    if (!f.resume.empty()) {
        auto archive_path = locate_run(f);
        if (!archive_path) {
            return std::unexpected(archive_path.error());
        }
        archive::OpenOptions open_options;
        open_options.mode = archive::Mode::read_write;
        auto db = archive::Archive::open(*archive_path, open_options);
        if (!db) {
            return std::unexpected(db.error());
        }
        auto run = db->get_run(f.resume);
        if (!run) {
            return std::unexpected(run.error());
        }
        if (!*run) {
            return fail(ExitCode::usage, "no run " + f.resume + " in " + *archive_path);
        }
        auto stored = nlohmann::json::parse((*run)->options_json, nullptr, false);
        if (stored.is_discarded()) {
            return fail(ExitCode::usage, "run " + f.resume + " has unreadable options");
        }
        bool yes = f.spec.yes;
        std::string resume = f.resume;
        auto loaded = from_json(stored, f);
        if (!loaded) {
            return std::unexpected(loaded.error());
        }
        f.spec.yes = yes;
        f.resume = resume;
        f.archive = *archive_path;
        o.resume_run_id = f.resume;
    }
    if (f.from.empty()) {
        return fail(ExitCode::usage, "no source: pass --from ARCHIVE|SQLITE|DIR|MBOX (or "
                                     "--resume RUN_ID)");
    }
    auto kind = replay::detect_source_kind(f.from, !f.query.empty());
    if (!kind) {
        return std::unexpected(kind.error());
    }
    o.source.kind = *kind;
    o.source.path = f.from;
    o.source.query = f.query;
    o.source.reparse = f.reparse;
    o.source.org_id = f.mime_org;
    o.source.ordered = f.ordered;
    auto& filter = o.source.filter;
    for (const auto& s : f.statuses) {
        auto status = archive::parse_status(s);
        if (!status) {
            return fail(ExitCode::usage, "--status: " + status.error().message);
        }
        filter.statuses.push_back(*status);
    }
    // Relative times (yesterday, 24h) are resolved once and stored resolved, so --resume
    // selects the same window however much later it runs.
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    if (!f.since.empty()) {
        auto t = archive::parse_when_ms(f.since, now);
        if (!t) {
            return fail(ExitCode::usage, "--since: " + t.error().message);
        }
        filter.since_ms = *t;
        f.since = archive::format_time_ms(*t);
    }
    if (!f.until.empty()) {
        auto t = archive::parse_when_ms(f.until, now);
        if (!t) {
            return fail(ExitCode::usage, "--until: " + t.error().message);
        }
        filter.until_ms = *t;
        f.until = archive::format_time_ms(*t);
    }
    filter.org_ids = f.orgs;
    filter.event_ids = f.event_ids;
    if (f.limit < 0) {
        return fail(ExitCode::usage, "--limit must be 1 or more");
    }
    if (f.limit > 0) {
        filter.limit = static_cast<std::uint64_t>(f.limit);
    }
    bool archive_filters = !f.statuses.empty() || !f.since.empty() || !f.until.empty() ||
                           !f.orgs.empty() || !f.event_ids.empty() || f.reparse;
    if (*kind != replay::SourceKind::archive && archive_filters) {
        return fail(ExitCode::usage, "--status, --since, --until, --org, --event and --reparse "
                                     "select from a hookctl archive; " +
                                         f.from + " is not one");
    }

    // Delivery: target, secrets, production guard, retry policy.
    f.spec.config_path = context.global.config;
    f.spec.secrets = f.secrets.sources();
    std::optional<util::Rate> rate;
    if (!f.rate.empty()) {
        auto parsed = util::parse_rate(f.rate);
        if (!parsed) {
            return fail(ExitCode::usage, "--rate: " + parsed.error().message);
        }
        rate = *parsed;
    }
    if (f.concurrency < 0 || f.concurrency > 4096) {
        return fail(ExitCode::usage, "--concurrency must be from 1 to 4096");
    }
    if (f.burst < 0) {
        return fail(ExitCode::usage, "--burst must be 1 or more");
    }
    if (f.max_failures < 0) {
        return fail(ExitCode::usage, "--max-failures must be 1 or more");
    }
    if (!f.max_error_rate.empty()) {
        std::string text = f.max_error_rate;
        bool percent = text.ends_with("%");
        if (percent) {
            text.pop_back();
        }
        char* end = nullptr;
        double value = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value)) {
            return fail(ExitCode::usage, "--max-error-rate " + f.max_error_rate +
                                             ": expected a share such as 0.2 or 20%");
        }
        if (percent) {
            value /= 100.0;
        }
        if (value <= 0 || value > 1) {
            return fail(ExitCode::usage,
                        "--max-error-rate " + f.max_error_rate + ": must be above 0 and at most 1");
        }
        o.max_error_rate = value;
    }
    if (f.max_failures > 0) {
        o.max_failures = f.max_failures;
    }
    if (f.dry_run) {
        // A dry run sends nothing: secrets and the production guard are not needed.
        o.delivery.target_label = f.spec.to.empty() ? f.spec.target : f.spec.to;
        if (f.spec.to.empty() == f.spec.target.empty()) {
            return fail(ExitCode::usage, "pass one of --to URL or --target NAME");
        }
        if (!f.spec.target.empty()) {
            auto config = http::load_config_or_default(f.spec.config_path);
            if (!config) {
                return std::unexpected(config.error());
            }
            auto target = config->find_target(f.spec.target);
            if (!target) {
                return std::unexpected(target.error());
            }
            o.delivery.target = **target;
            o.delivery.endpoint.url = (*target)->url;
        } else {
            o.delivery.endpoint.url = f.spec.to;
        }
    } else {
        auto resolved = http::resolve_delivery(f.spec, tty_prompt());
        if (!resolved) {
            return std::unexpected(resolved.error());
        }
        o.delivery = std::move(*resolved);
    }
    const auto& target = o.delivery.target;
    o.rate = rate ? *rate : (target && target->rate) ? *target->rate : util::Rate{50.0};
    o.concurrency = f.concurrency > 0                 ? f.concurrency
                    : (target && target->concurrency) ? *target->concurrency
                                                      : 8;
    o.burst = f.burst;

    if (f.archive.empty()) {
        if (*kind == replay::SourceKind::archive) {
            f.archive = f.from;
        } else {
            return fail(ExitCode::usage,
                        "--from " + f.from +
                            " is not a hookctl archive: pass --archive FILE to record the "
                            "run and its attempts (created if missing)");
        }
    }
    o.archive_path = f.archive;
    o.options_json = to_json(f);
    return o;
}

std::string format_seconds(double s) {
    if (s < 0 || !std::isfinite(s)) {
        return "?";
    }
    auto whole = static_cast<std::int64_t>(s + 0.5);
    char out[32];
    if (whole >= 3600) {
        std::snprintf(out, sizeof out, "%lldh%02lldm", static_cast<long long>(whole / 3600),
                      static_cast<long long>(whole % 3600 / 60));
    } else if (whole >= 60) {
        std::snprintf(out, sizeof out, "%lldm%02llds", static_cast<long long>(whole / 60),
                      static_cast<long long>(whole % 60));
    } else {
        std::snprintf(out, sizeof out, "%llds", static_cast<long long>(whole));
    }
    return out;
}

void draw_progress(const replay::ReplayProgress& p) {
    std::int64_t total = std::max<std::int64_t>(p.total, 1);
    double share = std::min(1.0, static_cast<double>(p.done + p.skipped) /
                                     static_cast<double>(total + p.skipped));
    constexpr int width = 28;
    int filled = static_cast<int>(share * width);
    std::string bar(static_cast<std::size_t>(filled), '=');
    if (filled < width) {
        bar += '>';
        bar += std::string(static_cast<std::size_t>(width - filled - 1), ' ');
    }
    double per_event = p.done > 0 ? p.elapsed_s / static_cast<double>(p.done) : -1;
    double eta = per_event >= 0 ? per_event * static_cast<double>(p.total - p.done) : -1;
    char line[256];
    std::snprintf(line, sizeof line,
                  "\r[%s] %lld/%lld  %.1f/s  delivered %lld  dead %lld  failures %lld  ETA %s%s "
                  "\x1b[K",
                  bar.c_str(), static_cast<long long>(p.done + p.skipped),
                  static_cast<long long>(p.total + p.skipped), p.achieved_rate,
                  static_cast<long long>(p.delivered), static_cast<long long>(p.dead),
                  static_cast<long long>(p.failed_attempts), format_seconds(eta).c_str(),
                  p.paused ? "  (paused: Retry-After)" : "");
    std::cerr << line << std::flush;
}

nlohmann::json summary_json(const replay::ReplayResult& r, const replay::ReplayOptions& o) {
    const auto& p = r.progress;
    nlohmann::json dead = nlohmann::json::object();
    for (const auto& [reason, n] : p.dead_reasons) {
        dead[reason] = n;
    }
    return {{"run_id", p.run_id},
            {"state", r.end == replay::RunEnd::completed     ? "completed"
                      : r.end == replay::RunEnd::interrupted ? "interrupted"
                                                             : "tripped"},
            {"reason", r.reason},
            {"source", o.source.describe()},
            {"target", o.delivery.target_label},
            {"archive", o.archive_path},
            {"selected", p.total},
            {"skipped", p.skipped},
            {"sent", p.sent},
            {"delivered", p.delivered},
            {"retried", p.retried},
            {"dead", p.dead},
            {"dead_reasons", dead},
            {"run_delivered", p.earlier_delivered + p.delivered},
            {"run_dead", p.earlier_dead + p.dead},
            {"elapsed_s", p.elapsed_s},
            {"achieved_rate", p.achieved_rate},
            {"latency_ms",
             {{"p50", p.p50_ms}, {"p95", p.p95_ms}, {"p99", p.p99_ms}, {"max", p.max_ms}}},
            // How late paced sends left against their schedule slots; null with --rate max.
            {"schedule_lag_ms", o.rate.unlimited() ? nlohmann::json(nullptr)
                                                   : nlohmann::json{{"p50", p.lag_p50_ms},
                                                                    {"p99", p.lag_p99_ms},
                                                                    {"max", p.lag_max_ms}}}};
}

Result<int> run_replay_command(ReplayFlags& f, const Context& context) {
    auto options = build_options(f, context);
    if (!options) {
        return std::unexpected(options.error());
    }
    const auto& o = *options;
    if (f.dry_run) {
        auto dry = replay::dry_run(o);
        if (!dry) {
            return std::unexpected(dry.error());
        }
        std::string rate = "max";
        if (!o.rate.unlimited()) {
            char text[32];
            std::snprintf(text, sizeof text, "%g/s", *o.rate.per_second);
            rate = text;
        }
        if (context.global.json) {
            nlohmann::json first = nlohmann::json::array();
            for (const auto& e : dry->first) {
                first.push_back({{"event_id", e.event_id},
                                 {"org_id", e.org_id},
                                 {"received_at_ms", e.received_at_ms},
                                 {"bytes", e.body.size()}});
            }
            print_json({{"dry_run", true},
                        {"count", dry->count},
                        {"source", o.source.describe()},
                        {"target", o.delivery.target_label},
                        {"url", o.delivery.endpoint.url},
                        {"rate", rate},
                        {"concurrency", o.concurrency},
                        {"estimated_seconds", dry->estimated_seconds},
                        {"first", first}});
        } else {
            std::cout << "dry run: would send " << dry->count << " events from "
                      << o.source.describe() << " to " << o.delivery.target_label << " ("
                      << o.delivery.endpoint.url << ")\n"
                      << "rate " << rate << ", concurrency " << o.concurrency
                      << ", estimated duration "
                      << (o.rate.unlimited() ? "as fast as the target answers"
                                             : format_seconds(dry->estimated_seconds))
                      << "\n";
            for (const auto& e : dry->first) {
                std::cout << "  " << e.event_id << "  org=" << (e.org_id.empty() ? "-" : e.org_id)
                          << "  " << e.body.size() << " bytes\n";
            }
            if (dry->count > dry->first.size()) {
                std::cout << "  ... and " << dry->count - dry->first.size() << " more\n";
            }
            std::cout << "nothing was sent\n";
        }
        return 0;
    }

    struct sigaction action = {};
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);

    bool tty = is_tty(STDERR_FILENO) && !context.global.quiet && !f.no_progress;
    bool drew = false;
    replay::ReplayObserver observer;
    if (tty) {
        observer.progress = [&](const replay::ReplayProgress& p) {
            draw_progress(p);
            drew = true;
        };
    }
    observer.log = [&](const std::string& line) {
        if (context.global.quiet) {
            return;
        }
        if (drew) {
            std::cerr << "\r\x1b[K";
        }
        std::cerr << "hookctl: " << line << '\n';
    };
    auto result = replay::run_replay(o, observer, g_stop);
    if (drew) {
        std::cerr << '\n';
    }
    if (!result) {
        return std::unexpected(result.error());
    }
    const auto& p = result->progress;
    if (context.global.json) {
        print_json(summary_json(*result, o));
    } else {
        char line[512];
        std::snprintf(
            line, sizeof line,
            "run %s: sent %lld, delivered %lld, retried %lld, dead %lld%s in %.1fs "
            "(%.1f/s); latency p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n",
            p.run_id.c_str(), static_cast<long long>(p.sent), static_cast<long long>(p.delivered),
            static_cast<long long>(p.retried), static_cast<long long>(p.dead),
            p.skipped > 0 ? (", " + std::to_string(p.skipped) + " already done").c_str() : "",
            p.elapsed_s, p.achieved_rate, p.p50_ms, p.p95_ms, p.p99_ms);
        std::cout << line;
        if (!o.rate.unlimited()) {
            std::snprintf(line, sizeof line,
                          "  schedule: sends left p50 %.2f ms, p99 %.2f ms, max %.1f ms after "
                          "their slot\n",
                          p.lag_p50_ms, p.lag_p99_ms, p.lag_max_ms);
            std::cout << line;
        }
        for (const auto& [reason, n] : p.dead_reasons) {
            std::cout << "  dead: " << n << " x " << reason << '\n';
        }
        if (p.earlier_delivered + p.earlier_dead > 0) {
            std::cout << "  whole run: delivered " << p.earlier_delivered + p.delivered << ", dead "
                      << p.earlier_dead + p.dead << '\n';
        }
    }
    if (result->end != replay::RunEnd::completed) {
        std::cerr << "hookctl: run " << p.run_id << " "
                  << (result->end == replay::RunEnd::interrupted
                          ? "interrupted"
                          : "stopped by the circuit breaker: " + result->reason)
                  << "; resume with: hookctl replay --resume " << p.run_id << " --archive "
                  << o.archive_path << " (and the same secret flags)\n";
        return static_cast<int>(ExitCode::aborted);
    }
    // Exit 0 only when every event the run selected was delivered, earlier invocations included.
    return p.dead + p.earlier_dead == 0 ? 0 : 1;
}

} // namespace

void register_replay(CLI::App& app, Context& context) {
    auto f = std::make_shared<ReplayFlags>();
    auto* cmd = app.add_subcommand(
        "replay", "Re-deliver archived events at a set rate to a target, resumably");
    cmd->add_option("--from", f->from,
                    "Source: a hookctl archive, an SQLite file (with --query), a .eml file, a "
                    "directory of .eml files, a Maildir or an mbox file")
        ->type_name("SOURCE");
    cmd->add_option("--query", f->query,
                    "SQL over the --from SQLite file; columns event_id, payload (optional "
                    "headers, org_id, received_at)")
        ->type_name("SQL");
    cmd->add_option("--status", f->statuses,
                    "Archive: events with this status (repeatable; default failed and dead)")
        ->allow_extra_args(false)
        ->group("Selection");
    cmd->add_option("--since", f->since, "Archive: received at or after TIME")
        ->type_name("TIME")
        ->group("Selection");
    cmd->add_option("--until", f->until, "Archive: received before TIME")
        ->type_name("TIME")
        ->group("Selection");
    cmd->add_option("--org", f->orgs, "Archive: events of this org_id (repeatable)")
        ->allow_extra_args(false)
        ->group("Selection");
    cmd->add_option("--event", f->event_ids, "Archive: this event id (repeatable)")
        ->type_name("ID")
        ->allow_extra_args(false)
        ->group("Selection");
    cmd->add_option("--limit", f->limit, "At most N events")->type_name("N")->group("Selection");
    cmd->add_flag("--reparse", f->reparse,
                  "Archive: re-parse the stored raw MIME with today's parser")
        ->group("Selection");
    cmd->add_option("--mime-org", f->mime_org, "org_id of events parsed from raw MIME")
        ->type_name("ORG")
        ->group("Selection");
    add_delivery_options(*cmd, f->spec);
    cmd->add_option("--rate", f->rate,
                    "Requests per second (50/s, 300/m, 10/h) or max (default: the target's, "
                    "else 50/s)")
        ->type_name("RATE")
        ->group("Pacing");
    cmd->add_option("--burst", f->burst,
                    "At most N overdue requests sent back to back after a stall (default "
                    "rate/50)")
        ->type_name("N")
        ->group("Pacing");
    cmd->add_option("--concurrency", f->concurrency,
                    "Requests in flight at most (default: the target's, else 8)")
        ->type_name("N")
        ->group("Pacing");
    cmd->add_flag("--ordered", f->ordered,
                  "Per org_id, one request in flight at a time, in received_at order")
        ->group("Pacing");
    cmd->add_option("--max-failures", f->max_failures,
                    "Stop the run (exit 3, resumable) after N dead events")
        ->type_name("N")
        ->group("Circuit breaker");
    cmd->add_option("--max-error-rate", f->max_error_rate,
                    "Stop the run (exit 3, resumable) when more than P of the last 10 s of "
                    "attempts failed (0.5 or 50%)")
        ->type_name("P")
        ->group("Circuit breaker");
    cmd->add_option("--archive", f->archive,
                    "Archive recording the run and its attempts (default: the --from archive)")
        ->type_name("FILE");
    cmd->add_option("--resume", f->resume, "Continue an interrupted run")->type_name("RUN_ID");
    cmd->add_flag("--dry-run", f->dry_run,
                  "List what would be sent (count, first events, target, rate, duration)");
    cmd->add_flag("--no-progress", f->no_progress, "No progress bar on a TTY");
    add_secret_options(*cmd, f->secrets);
    cmd->callback([f, &context] {
        auto done = run_replay_command(*f, context);
        context.exit_code = done ? *done : report_error(context, done.error());
    });
}

} // namespace hookctl::cli
