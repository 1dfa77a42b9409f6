// hookctl replay: re-deliver archived (or foreign, or raw-MIME) events at a set rate,
// resumably. Flags in, a Plan (or the changes of a resume) to replay::start_run or
// replay::resume_run, a summary out.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <unistd.h>

#include <hookctl/replay/replay.hpp>
#include <hookctl/util/clock.hpp>
#include <hookctl/util/time.hpp>

#include "archive_key.hpp"
#include "common.hpp"

namespace hookctl::cli {

void add_delivery_options(CLI::App& cmd, http::DeliverySpec& spec); // send.cpp
Result<void> check_destination(const http::DeliverySpec& spec);     // send.cpp

namespace {

namespace fs = std::filesystem;

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
    int systemic_failures = 10;
    std::string archive;
    std::string archive_key; // --archive-key FILE: reads an encrypted archive's bodies
    std::string resume;
    std::string join; // --join RUN_ID: another worker of a shared run
    bool dry_run = false;
    bool no_progress = false;
    http::DeliverySpec spec;
    SecretFlags secrets;
    CLI::App* command = nullptr; // to tell which flags were given
};

bool given(const ReplayFlags& f, const char* flag) {
    return f.command->get_option(flag)->count() > 0;
}

std::atomic<int> g_stop{0};
std::string g_stop_hint; // printed by a second Ctrl-C (set before the run starts)

void on_sigint(int) {
    if (g_stop.load() != 0) {
        // Second Ctrl-C: leave now. The run stays resumable (attempts are already recorded).
        static const char message[] = "\nhookctl: interrupted again: exiting now; ";
        (void)!::write(STDERR_FILENO, message, sizeof message - 1);
        (void)!::write(STDERR_FILENO, g_stop_hint.data(), g_stop_hint.size());
        ::_exit(static_cast<int>(ExitCode::aborted));
    }
    g_stop.store(1);
}

// The flags that choose the events of a run: fixed for its life, refused on --resume.
constexpr const char* k_selection_flags[] = {
    "--from",  "--query",   "--status",   "--since",   "--until", "--org",    "--event",
    "--limit", "--reparse", "--mime-org", "--ordered", "--to",    "--target", "--scheme"};

// Pacing, retry and breaker flags: checked the same for a new run and a resume.
Result<void> check_pacing(const ReplayFlags& f) {
    if (f.concurrency < 0 || f.concurrency > 4096 ||
        (given(f, "--concurrency") && f.concurrency == 0)) {
        return fail(ExitCode::usage, "--concurrency must be a whole number from 1 to 4096");
    }
    if (f.burst < 0 || (given(f, "--burst") && f.burst == 0)) {
        return fail(ExitCode::usage, "--burst must be a whole number, 1 or more");
    }
    if (f.max_failures < 0 || (given(f, "--max-failures") && f.max_failures == 0)) {
        return fail(ExitCode::usage, "--max-failures must be a whole number, 1 or more");
    }
    if (f.systemic_failures < 0) {
        return fail(ExitCode::usage, "--systemic-failures must be a whole number, 0 (off) or more");
    }
    return {};
}

Result<replay::Plan> build_plan(ReplayFlags& f) {
    if (f.from.empty()) {
        return fail(ExitCode::usage, "no source: pass --from ARCHIVE|SQLITE|DIR|MBOX|HAR (or "
                                     "--resume RUN_ID)");
    }
    if (auto ok = check_pacing(f); !ok) {
        return std::unexpected(ok.error());
    }
    replay::Plan plan;
    auto kind = replay::detect_source_kind(f.from, !f.query.empty());
    HOOKCTL_RETURN_IF_ERROR(kind);
    std::error_code ec;
    plan.source.kind = *kind;
    plan.source.path = archive::is_server_uri(f.from)
                           ? f.from
                           : fs::absolute(f.from, ec).lexically_normal().string();
    plan.source.query = f.query;
    plan.source.reparse = f.reparse;
    plan.source.org_id = f.mime_org;
    plan.source.ordered = f.ordered;
    auto& filter = plan.source.filter;
    for (const auto& s : f.statuses) {
        auto status = archive::parse_event_status(s);
        if (!status) {
            return fail(ExitCode::usage, "--status: " + status.error().message);
        }
        filter.statuses.push_back(*status);
    }
    // Relative times (yesterday, 24h) are resolved once and stored resolved, so --resume
    // finishes the same selection however much later it runs.
    auto now = util::SystemClock().unix_ms();
    if (!f.since.empty()) {
        auto t = util::parse_when_ms(f.since, now);
        if (!t) {
            return fail(ExitCode::usage, "--since: " + t.error().message);
        }
        filter.since_ms = *t;
    }
    if (!f.until.empty()) {
        auto t = util::parse_when_ms(f.until, now);
        if (!t) {
            return fail(ExitCode::usage, "--until: " + t.error().message);
        }
        filter.until_ms = *t;
    }
    filter.org_ids = f.orgs;
    filter.event_ids = f.event_ids;
    if (f.limit < 0 || (given(f, "--limit") && f.limit == 0)) {
        return fail(ExitCode::usage, "--limit must be a whole number, 1 or more");
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
    plan.delivery = f.spec;
    plan.delivery.secrets = f.secrets.sources();
    plan.delivery.config_path.clear();
    plan.delivery.yes = false;
    if (!f.rate.empty()) {
        auto rate = util::parse_rate(f.rate);
        if (!rate) {
            return fail(ExitCode::usage, "--rate: " + rate.error().message);
        }
        plan.rate = *rate;
    }
    plan.burst = f.burst;
    plan.concurrency = f.concurrency;
    if (f.max_failures > 0) {
        plan.breaker.max_failures = f.max_failures;
    }
    if (!f.max_error_rate.empty()) {
        auto share = parse_share("--max-error-rate", f.max_error_rate, false);
        HOOKCTL_RETURN_IF_ERROR(share);
        plan.breaker.max_error_rate = *share;
    }
    plan.breaker.systemic_failures = f.systemic_failures;
    auto destination = check_destination(f.spec);
    HOOKCTL_RETURN_IF_ERROR(destination);
    return plan;
}

// A resume: selection flags are refused; pacing, retry and breaker flags change the run.
Result<replay::PlanChanges> build_changes(const ReplayFlags& f) {
    for (const char* flag : k_selection_flags) {
        if (given(f, flag)) {
            return fail(ExitCode::usage, std::string(flag) +
                                             " cannot be given with --resume: a resumed run "
                                             "finishes the selection and target it was started "
                                             "with (start a new replay to choose others)");
        }
    }
    if (auto ok = check_pacing(f); !ok) {
        return std::unexpected(ok.error());
    }
    replay::PlanChanges c;
    if (given(f, "--rate")) {
        auto rate = util::parse_rate(f.rate);
        if (!rate) {
            return fail(ExitCode::usage, "--rate: " + rate.error().message);
        }
        c.rate = *rate;
    }
    if (given(f, "--burst")) {
        c.burst = f.burst;
    }
    if (given(f, "--concurrency")) {
        c.concurrency = f.concurrency;
    }
    // The retry and timeout flags given (parsed and checked as the command line was read).
    auto take = [&](const char* flag, auto& into, const auto& value) {
        if (given(f, flag)) {
            into = value;
        }
    };
    take("--retries", c.retries, f.spec.retries);
    take("--backoff-base", c.backoff_base, f.spec.backoff_base);
    take("--backoff-max", c.backoff_max, f.spec.backoff_max);
    take("--max-elapsed", c.max_elapsed, f.spec.max_elapsed);
    take("--timeout", c.timeout, f.spec.timeout);
    take("--connect-timeout", c.connect_timeout, f.spec.connect_timeout);
    if (given(f, "--insecure")) {
        c.insecure = f.spec.insecure;
    }
    if (given(f, "--max-failures")) {
        c.max_failures = f.max_failures;
    }
    if (given(f, "--max-error-rate")) {
        auto share = parse_share("--max-error-rate", f.max_error_rate, false);
        HOOKCTL_RETURN_IF_ERROR(share);
        c.max_error_rate = *share;
    }
    if (given(f, "--systemic-failures")) {
        c.systemic_failures = f.systemic_failures;
    }
    c.secrets = f.secrets.sources();
    return c;
}

// The run's archive, opened once: the source archive itself for an archive source, else
// --archive or hookctl's own archive of runs. A resume finds it through the run index.
Result<std::unique_ptr<archive::Store>>
open_run_archive(const ReplayFlags& f, const replay::Plan* plan,
                 std::shared_ptr<const archive::BodyCipher> cipher) {
    archive::OpenOptions options;
    options.mode = archive::Mode::read_write;
    options.cipher = std::move(cipher);
    std::error_code ec;
    if (auto checked = archive::check_location(f.archive); !checked) {
        return std::unexpected(checked.error());
    }
    if (plan == nullptr) {
        std::string path = f.archive;
        if (path.empty()) {
            auto indexed = replay::indexed_archive(f.resume);
            if (!indexed) {
                return fail(ExitCode::usage, "cannot find run " + f.resume +
                                                 ": pass --archive FILE (the archive the run "
                                                 "was recorded in; `hookctl events runs` lists "
                                                 "the runs this user started)");
            }
            path = *indexed;
        }
        return archive::open(path, options);
    }
    if (plan->source.kind == replay::SourceKind::archive) {
        const bool same =
            archive::is_server_uri(f.archive) || archive::is_server_uri(f.from)
                ? f.archive == f.from
                : fs::weakly_canonical(f.archive, ec) == fs::weakly_canonical(f.from, ec);
        if (!f.archive.empty() && !same) {
            return fail(ExitCode::usage, "--archive " + f.archive +
                                             ": a replay from a hookctl archive is "
                                             "recorded in that archive (its events' "
                                             "statuses follow the run); drop --archive");
        }
        return replay::open_source_archive(plan->source); // with the keys of --archive-key
    }
    // Never the foreign file itself: runs of foreign sources go to an archive of hookctl's.
    std::string path = f.archive.empty() ? replay::default_run_archive() : f.archive;
    if (f.archive.empty()) {
        fs::create_directories(fs::path(path).parent_path(), ec);
    }
    options.mode = archive::Mode::create;
    return archive::open(path, options);
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

// How the selection reads for a person: the source, and the window and statuses when set.
std::string describe_selection(const replay::SourceSpec& s) {
    std::string out = s.describe();
    if (s.kind != replay::SourceKind::archive) {
        return out;
    }
    std::string statuses;
    for (auto status : s.filter.statuses) {
        statuses += (statuses.empty() ? "" : "|") + std::string(archive::to_string(status));
    }
    if (statuses.empty() && s.filter.event_ids.empty()) {
        statuses = "failed|dead";
    }
    if (!statuses.empty()) {
        out += ", status " + statuses;
    }
    if (s.filter.since_ms || s.filter.until_ms) {
        out += ", received " +
               (s.filter.since_ms ? util::format_time_ms(*s.filter.since_ms) : "(any)") + " to " +
               (s.filter.until_ms ? util::format_time_ms(*s.filter.until_ms) : "now");
    }
    if (!s.filter.org_ids.empty()) {
        out += ", " + std::to_string(s.filter.org_ids.size()) + " org(s)";
    }
    if (!s.filter.event_ids.empty()) {
        out += ", " + std::to_string(s.filter.event_ids.size()) + " event id(s)";
    }
    if (s.filter.limit) {
        out += ", at most " + std::to_string(*s.filter.limit);
    }
    return out;
}

nlohmann::json selection_json(const replay::SourceSpec& s) {
    return {{"source", s.describe()},
            {"since", s.filter.since_ms ? nlohmann::json(util::format_time_ms(*s.filter.since_ms))
                                        : nlohmann::json(nullptr)},
            {"until", s.filter.until_ms ? nlohmann::json(util::format_time_ms(*s.filter.until_ms))
                                        : nlohmann::json(nullptr)}};
}

// A replay's log record as a line: the run and, for an event, its attempt and answer.
void write_log(LogSink& logs, const replay::LogRecord& r, const std::string& run_id,
               const nlohmann::json& extra = nullptr) {
    nlohmann::json fields = {
        {"run_id", run_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(run_id)}};
    if (!r.event_id.empty()) {
        fields["event_id"] = r.event_id;
        fields["attempt"] = r.attempt;
        fields["status"] = r.status;
        fields["reason"] = r.reason;
        if (!r.detail.empty()) {
            fields["detail"] = r.detail;
        }
    }
    if (extra.is_object()) {
        fields.update(extra);
    }
    logs.write(r.warning, r.message, fields);
}

std::string progress_line(const replay::ReplayProgress& p) {
    std::int64_t total = std::max<std::int64_t>(p.selected, 1);
    std::int64_t settled = p.run_delivered + p.run_dead;
    double share = std::min(1.0, static_cast<double>(settled) / static_cast<double>(total));
    constexpr int width = 24;
    int filled = static_cast<int>(share * width);
    std::string bar(static_cast<std::size_t>(filled), '=');
    if (filled < width) {
        bar += '>';
        bar += std::string(static_cast<std::size_t>(width - filled - 1), ' ');
    }
    std::int64_t done_here = p.delivered + p.dead;
    double per_event = done_here > 0 ? p.elapsed_s / static_cast<double>(done_here) : -1;
    double eta = per_event >= 0 ? per_event * static_cast<double>(p.pending) : -1;
    char line[320];
    std::snprintf(line, sizeof line,
                  "\r%s [%s] %lld/%lld  %.1f/s  delivered %lld  dead %lld  pending %lld  ETA %s%s "
                  "\x1b[K",
                  p.run_id.c_str(), bar.c_str(), static_cast<long long>(settled),
                  static_cast<long long>(p.selected), p.achieved_rate,
                  static_cast<long long>(p.run_delivered), static_cast<long long>(p.run_dead),
                  static_cast<long long>(p.pending), format_seconds(eta).c_str(),
                  p.paused ? "  (paused: Retry-After)" : "");
    return line;
}

std::string_view end_name(replay::RunEnd end) {
    switch (end) {
    case replay::RunEnd::completed:
        return "completed";
    case replay::RunEnd::interrupted:
        return "interrupted";
    case replay::RunEnd::tripped:
        return "tripped";
    case replay::RunEnd::failed:
        return "failed";
    }
    return "failed";
}

nlohmann::json summary_json(const replay::RunResult& r) {
    const auto& p = r.progress;
    nlohmann::json dead = nlohmann::json::object();
    for (const auto& [reason, n] : p.dead_reasons) {
        dead[reason] = n;
    }
    nlohmann::json doc = {
        {"run_id", p.run_id},
        {"state", end_name(r.end)},
        {"reason", r.reason},
        {"resumed", r.resumed},
        {"source", r.plan.source.describe()},
        {"target", r.target_label},
        {"url", r.url},
        {"archive", r.archive_path},
        // The run's ledger, every invocation: selected = delivered + dead + pending.
        {"selected", p.selected},
        {"run_delivered", p.run_delivered},
        {"run_dead", p.run_dead},
        {"pending", p.pending},
        // This invocation.
        {"to_send", p.to_send},
        {"sent", p.sent},
        {"delivered", p.delivered},
        {"retried", p.retried},
        {"dead", p.dead},
        {"held", p.held},
        {"dead_reasons", dead},
        {"elapsed_s", p.elapsed_s},
        {"achieved_rate", p.achieved_rate},
        {"latency_ms",
         {{"p50", p.p50_ms}, {"p95", p.p95_ms}, {"p99", p.p99_ms}, {"max", p.max_ms}}},
        // How late paced sends left against their schedule slots; null with --rate max.
        {"schedule_lag_ms", r.rate.unlimited() ? nlohmann::json(nullptr)
                                               : nlohmann::json{{"p50", p.lag_p50_ms},
                                                                {"p99", p.lag_p99_ms},
                                                                {"max", p.lag_max_ms}}}};
    doc.update(selection_json(r.plan.source));
    if (r.end != replay::RunEnd::completed) {
        doc["resume"] = replay::resume_command(p.run_id, r.archive_path);
    }
    return doc;
}

void print_summary(const replay::RunResult& r) {
    const auto& p = r.progress;
    char line[512];
    std::snprintf(
        line, sizeof line,
        "run %s %s: sent %lld, delivered %lld, retried %lld, dead %lld in %.1fs (%.1f/s); "
        "latency p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n",
        p.run_id.c_str(), std::string(end_name(r.end)).c_str(), static_cast<long long>(p.sent),
        static_cast<long long>(p.delivered), static_cast<long long>(p.retried),
        static_cast<long long>(p.dead), p.elapsed_s, p.achieved_rate, p.p50_ms, p.p95_ms, p.p99_ms);
    std::cout << line;
    if (!r.rate.unlimited() && p.sent > 0) {
        std::snprintf(line, sizeof line,
                      "  schedule: sends left p50 %.2f ms, p99 %.2f ms, max %.1f ms after their "
                      "slot\n",
                      p.lag_p50_ms, p.lag_p99_ms, p.lag_max_ms);
        std::cout << line;
    }
    for (const auto& [reason, n] : p.dead_reasons) {
        std::cout << "  dead: " << n << " x " << reason << '\n';
    }
    std::cout << "  ledger: selected " << p.selected << " = delivered " << p.run_delivered
              << " + dead " << p.run_dead << " + pending " << p.pending
              << (p.held > 0 ? " (" + std::to_string(p.held) + " held by the breaker)" : "")
              << '\n';
}

Result<ExitCode> run_dry(const ReplayFlags& f, const replay::Plan& plan, Context& context,
                         const replay::Invocation& how) {
    std::unique_ptr<archive::Store> source; // an archive source, opened once for the dry run
    if (plan.source.kind == replay::SourceKind::archive) {
        auto opened = replay::open_source_archive(plan.source);
        HOOKCTL_RETURN_IF_ERROR(opened);
        source = std::move(*opened);
    }
    auto dry = replay::dry_run(plan, how, source.get());
    HOOKCTL_RETURN_IF_ERROR(dry);
    const std::string rate = replay::format_rate(dry->rate);
    (void)f;
    if (context.global.json) {
        nlohmann::json first = nlohmann::json::array();
        for (const auto& e : dry->first) {
            first.push_back({{"event_id", e.event_id},
                             {"org_id", e.org_id},
                             {"received_at_ms", e.received_at_ms},
                             {"bytes", e.body.size()}});
        }
        nlohmann::json doc = {{"dry_run", true},
                              {"count", dry->count},
                              {"target", dry->target_label},
                              {"url", dry->url},
                              {"rate", rate},
                              {"concurrency", dry->concurrency},
                              {"estimated_seconds", dry->estimated_seconds},
                              {"first", first}};
        doc.update(selection_json(plan.source));
        print_json(doc);
        return ExitCode::ok;
    }
    std::cout << "dry run: " << dry->count << " events matched: " << describe_selection(plan.source)
              << "\n"
              << "would send them to " << dry->target_label << " (" << dry->url << ") at rate "
              << rate << ", concurrency " << dry->concurrency << ", estimated duration "
              << (dry->rate.unlimited() ? "as fast as the target answers"
                                        : format_seconds(dry->estimated_seconds))
              << "\n";
    for (const auto& e : dry->first) {
        std::cout << "  " << e.event_id << "  org=" << (e.org_id.empty() ? "-" : e.org_id) << "  "
                  << e.body.size() << " bytes\n";
    }
    if (dry->count > dry->first.size()) {
        std::cout << "  ... and " << dry->count - dry->first.size() << " more\n";
    }
    std::cout << "nothing was sent\n";
    return ExitCode::ok;
}

// The hooks that show a run's start and log its notable moments.
replay::RunHooks run_hooks(const ReplayFlags& f, Context& context, LogSink& logs,
                           std::string& run_id) {
    replay::RunHooks hooks;
    bool bar = is_tty(STDERR_FILENO) && !context.global.quiet && !f.no_progress && !logs.json();
    if (bar) {
        hooks.observer.progress = [&logs](const replay::ReplayProgress& p) {
            logs.bar(progress_line(p));
        };
    }
    hooks.observer.log = [&logs, &run_id](const replay::LogRecord& r) {
        write_log(logs, r, run_id);
    };
    hooks.started = [&logs, &run_id](const replay::RunResult& r) {
        run_id = r.progress.run_id;
        g_stop_hint = "resume with: " + replay::resume_command(run_id, r.archive_path) + "\n";
        std::string what =
            r.joined ? "joined run " + run_id + " as worker " + r.worker + ": " +
                           std::to_string(r.progress.to_send) + " of " +
                           std::to_string(r.progress.selected) + " selected events pending"
            : r.resumed
                ? "run " + run_id + " resumed: " + std::to_string(r.progress.to_send) + " of " +
                      std::to_string(r.progress.selected) + " selected events pending"
                : "run " + run_id + " started: " + std::to_string(r.progress.selected) +
                      " events selected from " + describe_selection(r.plan.source);
        if (!r.worker.empty() && !r.joined) {
            what += "; worker " + r.worker + " (add more with `hookctl replay --join " + run_id +
                    " --archive URI`)";
        }
        write_log(logs,
                  replay::LogRecord::note(what + "; to " + r.target_label +
                                          (r.target_label == r.url ? "" : " (" + r.url + ")") +
                                          " at " + replay::format_rate(r.rate) +
                                          (r.worker.empty() ? "" : " for the whole run") +
                                          ", concurrency " + std::to_string(r.concurrency) +
                                          "; recorded in " + r.archive_path +
                                          (r.changes > 0 ? "; " + std::to_string(r.changes) +
                                                               " setting(s) changed for this resume"
                                                         : "")),
                  run_id,
                  {{"selected", r.progress.selected},
                   {"pending", r.progress.to_send},
                   {"archive", r.archive_path},
                   {"target", r.target_label}});
    };
    return hooks;
}

void catch_stop_signals() {
    struct sigaction action = {};
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
}

// How a finished invocation exits, after its summary.
ExitCode finish_run(const replay::RunResult& result, Context& context, LogSink& logs) {
    if (context.global.json) {
        print_json(summary_json(result));
    } else {
        print_summary(result);
    }
    const auto& p = result.progress;
    if (result.end != replay::RunEnd::completed) {
        write_log(logs,
                  replay::LogRecord::note(
                      "run " + p.run_id + " " + std::string(end_name(result.end)) +
                          (result.end == replay::RunEnd::interrupted ? "" : ": " + result.reason) +
                          "; " + std::to_string(p.pending) + " events pending; resume with: " +
                          replay::resume_command(p.run_id, result.archive_path) +
                          " (and the same secret flags when they changed)",
                      true),
                  p.run_id, {{"pending", p.pending}});
        return result.end == replay::RunEnd::failed ? ExitCode::environment : ExitCode::aborted;
    }
    if (result.run_state == archive::RunState::running) {
        write_log(logs,
                  replay::LogRecord::note("worker " + result.worker +
                                          " done: nothing left to "
                                          "claim; the other workers finish run " +
                                          p.run_id + " (" + std::to_string(p.pending) +
                                          " events pending)"),
                  p.run_id, {{"pending", p.pending}});
    }
    // Exit 0 only when every event the run selected was delivered, earlier invocations included.
    return p.run_dead == 0 ? ExitCode::ok : ExitCode::check_failed;
}

// replay --join RUN_ID: this process becomes one more worker of a running shared run.
Result<ExitCode> run_join(const ReplayFlags& f, Context& context, const replay::Invocation& how,
                          std::shared_ptr<const archive::BodyCipher> cipher) {
    if (!f.resume.empty() || f.dry_run) {
        return fail(ExitCode::usage, "--join cannot be given with --resume or --dry-run");
    }
    auto changes = build_changes(f);
    HOOKCTL_RETURN_IF_ERROR(changes);
    for (const char* flag : {"--rate", "--burst"}) {
        if (given(f, flag)) {
            return fail(ExitCode::usage, std::string(flag) +
                                             " cannot be given with --join: the run's rate is the "
                                             "total of all its workers; change it for every worker "
                                             "with --resume after stopping them");
        }
    }
    const std::string where = !f.archive.empty() ? f.archive : f.from;
    if (where.empty()) {
        return fail(ExitCode::usage, "--join " + f.join +
                                         ": pass --archive URI, the PostgreSQL archive the run is "
                                         "recorded in (postgres://...)");
    }
    if (auto checked = archive::check_location(where); !checked) {
        return std::unexpected(checked.error());
    }
    archive::OpenOptions options;
    options.mode = archive::Mode::read_write;
    options.cipher = std::move(cipher);
    auto opened = archive::open(where, options);
    HOOKCTL_RETURN_IF_ERROR(opened);
    LogSink logs(context);
    std::string run_id;
    auto hooks = run_hooks(f, context, logs, run_id);
    catch_stop_signals();
    auto result = replay::join_run(f.join, *changes, **opened, how, hooks, g_stop);
    logs.end_bar();
    HOOKCTL_RETURN_IF_ERROR(result);
    return finish_run(*result, context, logs);
}

Result<ExitCode> run_replay(const ReplayFlags& flags, Context& context) {
    ReplayFlags f = flags; // build_plan settles the flags' defaults in place
    replay::Invocation how;
    how.config_path = context.global.config;
    how.yes = f.spec.yes;
    how.advice = f.spec.advice; // a resumed run's stored plan does not keep it
    how.prompt = tty_prompt();
    how.log_retries = context.global.verbose > 0;
    auto now = context.clock.now_s();
    HOOKCTL_RETURN_IF_ERROR(now);
    how.keyring_time_s = *now;

    auto cipher = load_archive_cipher(f.archive_key);
    HOOKCTL_RETURN_IF_ERROR(cipher);
    std::optional<replay::Plan> plan;
    replay::PlanChanges changes;
    if (!f.join.empty()) {
        return run_join(f, context, how, *cipher);
    }
    if (f.resume.empty()) {
        auto built = build_plan(f);
        HOOKCTL_RETURN_IF_ERROR(built);
        plan = std::move(*built);
        plan->source.cipher = *cipher;
        if (f.dry_run) {
            return run_dry(f, *plan, context, how);
        }
    } else {
        auto built = build_changes(f);
        HOOKCTL_RETURN_IF_ERROR(built);
        changes = std::move(*built);
    }
    auto opened = open_run_archive(f, plan ? &*plan : nullptr, *cipher);
    HOOKCTL_RETURN_IF_ERROR(opened);
    archive::Store& store = **opened; // the one handle of this replay
    if (!plan && f.dry_run) {
        auto run = store.get_run(f.resume);
        auto counts = store.count_run_items(f.resume);
        if (!run || !counts) {
            return std::unexpected(!run ? run.error() : counts.error());
        }
        if (!*run) {
            return fail(ExitCode::usage, "no run " + f.resume + " in " + store.path());
        }
        std::cout << "dry run: resuming run " << f.resume << " would send its " << counts->pending
                  << " pending events (of " << counts->total() << " selected; " << counts->delivered
                  << " delivered, " << counts->dead << " dead) to " << (*run)->target
                  << "\nnothing was sent\n";
        return ExitCode::ok;
    }

    LogSink logs(context);
    std::string run_id;
    auto hooks = run_hooks(f, context, logs, run_id);
    catch_stop_signals();

    auto result = plan ? replay::start_run(*plan, store, how, hooks, g_stop)
                       : replay::resume_run(f.resume, changes, store, how, hooks, g_stop);
    logs.end_bar();
    if (!result) {
        if (!run_id.empty()) {
            write_log(logs,
                      replay::LogRecord::note("run " + run_id + " failed; resume with: " +
                                                  replay::resume_command(run_id, store.path()),
                                              true),
                      run_id);
        }
        return std::unexpected(result.error());
    }
    if (!result->recorded) {
        std::string message = "0 events matched: " + describe_selection(plan->source) +
                              ": nothing to replay, no run recorded";
        if (context.global.json) {
            nlohmann::json doc = {{"run_id", nullptr}, {"state", "empty"}, {"selected", 0}};
            doc.update(selection_json(plan->source));
            print_json(doc);
        }
        write_log(logs, replay::LogRecord::note(message), "");
        return ExitCode::ok;
    }
    return finish_run(*result, context, logs);
}

} // namespace

void register_replay(CLI::App& app, Context& context) {
    auto f = std::make_shared<ReplayFlags>();
    auto* cmd = app.add_subcommand(
        "replay", "Re-deliver archived events at a set rate to a target, resumably");
    f->command = cmd;
    cmd->add_option("--from", f->from,
                    "Source: a hookctl archive (file or postgres:// URI), an SQLite file or "
                    "postgres:// URI (with --query), a .eml file, a directory of .eml files, a "
                    "Maildir, an mbox file or "
                    "a HAR file")
        ->type_name("SOURCE");
    cmd->add_option("--query", f->query,
                    "SQL over the --from SQLite file or postgres:// database; columns "
                    "event_id, payload (optional headers, org_id, received_at)")
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
    cmd->add_option("--systemic-failures", f->systemic_failures,
                    "Stop the run (exit 3, resumable, nothing dead-lettered) when N attempts in "
                    "a row fail with the same 401/403/404/405/410/TLS/DNS error; 3 before the "
                    "first delivery; 0: off (default 10)")
        ->type_name("N")
        ->group("Circuit breaker");
    cmd->add_option("--archive", f->archive,
                    "Archive (file or postgres:// URI) recording the run of a foreign or MIME "
                    "source (default: "
                    "$XDG_STATE_HOME/hookctl/runs.db); with --resume, the run's archive")
        ->type_name("FILE");
    add_archive_key_option(*cmd, f->archive_key);
    cmd->add_option("--resume", f->resume,
                    "Finish a run's pending events (its selection and target as recorded; "
                    "pacing, retry and breaker flags may change)")
        ->type_name("RUN_ID");
    cmd->add_option("--join", f->join,
                    "Add this process as a worker to a running run of a PostgreSQL --archive: it "
                    "claims pending events under a lease and shares the run's rate, pauses and "
                    "breaker with the other workers")
        ->type_name("RUN_ID");
    cmd->add_flag("--dry-run", f->dry_run,
                  "Check every option, list what would be sent (count, first events, target, "
                  "rate, duration) and send nothing");
    cmd->add_flag("--no-progress", f->no_progress, "No progress bar on a TTY");
    add_secret_options(*cmd, f->secrets);
    set_run(*cmd, f, context, run_replay);
}

} // namespace hookctl::cli
