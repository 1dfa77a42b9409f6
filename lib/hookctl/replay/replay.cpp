#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <pwd.h>
#include <unistd.h>

#include <hookctl/http/client.hpp>
#include <hookctl/replay/recorder.hpp>
#include <hookctl/replay/replay.hpp>
#include <hookctl/replay/shared.hpp>
#include <hookctl/util/clock.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/sched.hpp>

namespace hookctl::replay {
namespace {

namespace fs = std::filesystem;

fs::path state_dir() {
    if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && state[0] != '\0') {
        return fs::path(state) / "hookctl";
    }
    if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
        return fs::path(home) / ".local" / "state" / "hookctl";
    }
    return fs::temp_directory_path() / "hookctl";
}

// How the run is sent: the delivery resolved (secrets loaded unless only checking), the
// pacing with the target's defaults.
struct Resolved {
    http::ResolvedDelivery delivery;
    util::Rate rate;
    int concurrency = 8;
};

Result<Resolved> resolve(const Plan& plan, const Invocation& how, http::Resolve mode) {
    http::DeliverySpec spec = plan.delivery;
    spec.config_path = how.config_path;
    spec.yes = how.yes;
    spec.advice = how.advice;
    auto delivery = http::resolve_delivery(spec, how.prompt, how.keyring_time_s, mode);
    HOOKCTL_RETURN_IF_ERROR(delivery);
    Resolved out;
    const auto& target = delivery->target;
    out.rate = plan.rate ? *plan.rate : (target && target->rate) ? *target->rate : util::Rate{50.0};
    out.concurrency = plan.concurrency > 0              ? plan.concurrency
                      : (target && target->concurrency) ? *target->concurrency
                                                        : 8;
    out.delivery = std::move(*delivery);
    return out;
}

// Remembers where the run lives, so `--resume RUN_ID` alone finds it (best effort).
void index_run(const std::string& run_id, const std::string& archive_path) {
    std::error_code ec;
    fs::path index = run_index_path(run_id);
    fs::create_directories(index.parent_path(), ec);
    if (!ec) {
        (void)util::write_file_atomic(index.string(),
                                      fs::absolute(archive_path, ec).string() + "\n", 0600);
    }
}

// A run's ledger as its items count it (`paused_until_ms`: a pause the run waits out).
archive::RunProgress ledger_of(const archive::ItemCounts& counts,
                               std::int64_t paused_until_ms = 0) {
    archive::RunProgress p;
    p.total = counts.total();
    p.delivered = counts.delivered;
    p.dead = counts.dead;
    p.done = counts.delivered + counts.dead;
    p.paused_until_ms = paused_until_ms;
    return p;
}

// Whether a run of `plan` recorded in `store` is shared by workers: its archive can share it
// (PostgreSQL) and is its source (the workers read the items' events from it).
bool is_shared(const Plan& plan, const archive::Store& store) {
    return store.shares_runs() && plan.source.kind == SourceKind::archive;
}

// This process's lease on a shared run's items: it outlasts a request (the timeout) by a margin
// of 5 s, renewed every quarter of it while the process lives.
archive::WorkerLease worker_lease(const Resolved& resolved) {
    archive::WorkerLease lease;
    lease.token = util::hex_encode(util::random_bytes(8));
    lease.worker = operator_identity() + ":" + std::to_string(::getpid());
    lease.length = std::chrono::duration_cast<std::chrono::milliseconds>(
                       resolved.delivery.client.total_timeout) +
                   std::chrono::seconds(5);
    return lease;
}

// Sends the pending items of `run_id` with `plan`; the run row exists.
Result<RunResult> send(const std::string& run_id, const Plan& plan, const Resolved& resolved,
                       const archive::RunProgress& earlier, archive::Store& store,
                       const Invocation& how, const RunHooks& hooks, const std::atomic<int>& stop,
                       RunResult result) {
    result.recorded = true;
    result.archive_path = store.path();
    result.target_label = resolved.delivery.target_label;
    result.url = resolved.delivery.endpoint.url;
    result.rate = resolved.rate;
    result.concurrency = resolved.concurrency;
    result.progress.run_id = run_id;
    result.progress.selected = earlier.total;
    result.progress.run_delivered = earlier.delivered;
    result.progress.run_dead = earlier.dead;
    result.progress.pending = earlier.pending();
    result.progress.to_send = earlier.pending();
    index_run(run_id, store.path());

    auto client = http::Client::create([&] {
        auto c = resolved.delivery.client;
        c.max_connections = static_cast<std::size_t>(std::max(1, resolved.concurrency));
        return c;
    }());
    HOOKCTL_RETURN_IF_ERROR(client);
    auto sender = client_sender(*client);

    archive::OpenOptions writer;
    writer.mode = archive::Mode::read_write;
    writer.synchronous_full = false; // survives a crash (kill -9), fast enough per batch
    auto recorder_store = store.another(writer);
    HOOKCTL_RETURN_IF_ERROR(recorder_store);
    // A run over a PostgreSQL archive is shared: this process is one of its workers, and any
    // host can add more with `replay --join RUN_ID` (hookctl-replay(1), WORKERS).
    std::optional<archive::WorkerLease> lease;
    if (is_shared(plan, store)) {
        lease = worker_lease(resolved);
    }
    // A quarter of the concurrency per commit, or 5 ms: the events waiting for their commit
    // count against the concurrency, so waiting for more would hold up sends.
    Recorder recorder(
        std::move(*recorder_store), run_id, [s = sender.get()] { s->wakeup(); },
        static_cast<std::size_t>(std::max(1, resolved.concurrency / 4)),
        std::chrono::milliseconds(5), lease);

    EngineOptions options;
    options.run_id = run_id;
    options.target_label = resolved.delivery.target_label;
    options.endpoint = resolved.delivery.endpoint;
    options.retry = resolved.delivery.policy;
    options.rate = resolved.rate;
    options.burst = plan.burst;
    options.concurrency = resolved.concurrency;
    options.ordered = plan.source.ordered;
    options.set_event_status = plan.source.kind == SourceKind::archive;
    options.breaker = plan.breaker;
    options.earlier = earlier;
    options.log_retries = how.log_retries;
    for (const auto& key : resolved.delivery.endpoint.keys) {
        options.redact.emplace_back(key.bytes.view());
    }
    const std::size_t lookahead =
        std::max<std::size_t>(1024, static_cast<std::size_t>(resolved.concurrency) * 4);
    std::unique_ptr<Feed> feed;
    SharedRun* shared = nullptr;
    if (lease) {
        archive::OpenOptions own;
        own.mode = archive::Mode::read_write;
        auto claims = store.another(own);
        HOOKCTL_RETURN_IF_ERROR(claims);
        auto slots = store.another(own);
        HOOKCTL_RETURN_IF_ERROR(slots);
        SharedRunOptions so;
        so.run_id = run_id;
        so.lease = *lease;
        so.source = plan.source;
        so.rate = resolved.rate;
        so.claim_batch =
            std::clamp<std::size_t>(static_cast<std::size_t>(resolved.concurrency) * 4, 16, 256);
        so.max_queued = so.claim_batch * 4;
        auto run = std::make_unique<SharedRun>(std::move(so), std::move(*claims), std::move(*slots),
                                               [s = sender.get()] { s->wakeup(); });
        shared = run.get();
        feed = std::move(run);
        options.crew = shared;
        options.crew_pending = earlier.pending();
        options.earlier = archive::RunProgress{}; // this worker's ledger: what it claims
        options.earlier.paused_until_ms = earlier.paused_until_ms;
        result.worker = lease->worker;
    } else {
        archive::OpenOptions reader;
        reader.mode = archive::Mode::read_only;
        auto reader_store = store.another(reader);
        HOOKCTL_RETURN_IF_ERROR(reader_store);
        feed =
            std::make_unique<Prefetch>(plan.source, std::move(*reader_store), run_id, lookahead,
                                       std::size_t{64} << 20, [s = sender.get()] { s->wakeup(); });
    }
    util::SystemClock clock;
    Engine engine(std::move(options), *sender, clock, recorder, hooks.observer);
    if (hooks.started) {
        hooks.started(result);
    }
    if (!resolved.rate.unlimited()) {
        // The sending thread sleeps to each slot and works briefly: short slices let it
        // run soon after it wakes (Linux 6.12+; a hint, ignored elsewhere).
        (void)util::request_short_slice(std::chrono::microseconds(100));
    }
    Result<void> ran = engine.run(*feed, stop);
    std::optional<archive::RunState> shared_state;
    if (shared) {
        auto finished = shared->finish(engine.state(), engine.end_reason());
        if (!finished && ran) {
            ran = std::unexpected(finished.error());
        }
        if (finished) {
            shared_state = *finished;
        }
    }
    feed.reset();
    result.progress = engine.progress();
    result.end = engine.end();
    result.reason = engine.end_reason();
    // The ledger as committed decides, not the engine's count of it.
    auto counts = store.count_run_items(run_id);
    if (counts && shared_state) {
        // A worker of a shared run: its part is done when it ran out of items; the run is done
        // when the last worker settles the last item.
        result.progress.selected = counts->total();
        result.progress.run_delivered = counts->delivered;
        result.progress.run_dead = counts->dead;
        result.progress.pending = counts->pending;
        result.run_state = *shared_state;
        if (result.end == RunEnd::completed && counts->pending > 0 &&
            *shared_state != archive::RunState::running) {
            result.end = RunEnd::failed;
            result.reason = std::to_string(counts->pending) + " selected events are still pending";
        }
    } else if (counts) {
        result.progress.selected = counts->total();
        result.progress.run_delivered = counts->delivered;
        result.progress.run_dead = counts->dead;
        result.progress.pending = counts->pending;
        if (result.end == RunEnd::completed && counts->pending > 0) {
            result.end = RunEnd::failed;
            result.reason = std::to_string(counts->pending) + " selected events are still pending";
            archive::RunProgress ledger = ledger_of(*counts);
            (void)store.update_run(run_id, ledger, archive::RunState::failed, result.reason);
        }
    }
    HOOKCTL_RETURN_IF_ERROR(ran);
    return result;
}

} // namespace

Result<RunResult> start_run(const Plan& plan, archive::Store& store, const Invocation& how,
                            const RunHooks& hooks, const std::atomic<int>& stop) {
    auto resolved = resolve(plan, how, http::Resolve::to_send);
    HOOKCTL_RETURN_IF_ERROR(resolved);
    // The run and its selection in one transaction: a run exists with all its items or not
    // at all.
    archive::NewRun run;
    run.kind = "replay";
    run.source = plan.source.describe();
    run.target = resolved->delivery.target_label;
    run.options_json = to_json(plan).dump();
    run.started_by = how.started_by.empty() ? operator_identity() : how.started_by;
    if (auto begun = store.begin(); !begun) {
        return std::unexpected(begun.error());
    }
    auto created = store.create_run(run);
    if (!created) {
        store.rollback();
        return std::unexpected(created.error());
    }
    auto selected = select_items(plan.source, store, created->run_id);
    if (!selected) {
        store.rollback();
        return std::unexpected(selected.error());
    }
    RunResult result;
    result.plan = plan;
    if (*selected == 0) {
        store.rollback(); // nothing to do: no run is recorded
        result.target_label = resolved->delivery.target_label;
        result.url = resolved->delivery.endpoint.url;
        result.rate = resolved->rate;
        result.concurrency = resolved->concurrency;
        result.archive_path = store.path();
        return result;
    }
    archive::RunProgress earlier;
    earlier.total = *selected;
    if (auto saved = store.update_run(created->run_id, earlier, archive::RunState::running);
        !saved) {
        store.rollback();
        return std::unexpected(saved.error());
    }
    if (auto committed = store.commit(); !committed) {
        return std::unexpected(committed.error());
    }
    return send(created->run_id, plan, *resolved, earlier, store, how, hooks, stop,
                std::move(result));
}

Result<RunResult> resume_run(const std::string& run_id, const PlanChanges& changes,
                             archive::Store& store, const Invocation& how, const RunHooks& hooks,
                             const std::atomic<int>& stop) {
    auto run = store.get_run(run_id);
    HOOKCTL_RETURN_IF_ERROR(run);
    if (!*run) {
        return fail(ExitCode::usage, "no run " + run_id + " in " + store.path() +
                                         " (list runs with `hookctl events runs`)");
    }
    if ((*run)->state == archive::RunState::completed) {
        return fail(ExitCode::usage, "run " + run_id +
                                         " already completed: nothing to resume "
                                         "(see `hookctl events runs show " +
                                         run_id + "`)");
    }
    auto stored = nlohmann::json::parse((*run)->options_json, nullptr, false);
    auto plan = plan_from_json(stored);
    if (!plan) {
        return fail(ExitCode::usage, "run " + run_id + ": " + plan.error().message);
    }
    auto counts = store.count_run_items(run_id);
    HOOKCTL_RETURN_IF_ERROR(counts);
    if (counts->total() == 0) {
        return fail(ExitCode::usage, "run " + run_id +
                                         " has no recorded selection (recorded by "
                                         "an older hookctl): start a new replay");
    }
    RunResult result;
    result.resumed = true;
    const std::string by = how.started_by.empty() ? operator_identity() : how.started_by;
    result.changes = apply_changes(*plan, changes, by, util::SystemClock().unix_ms());
    auto resolved = resolve(*plan, how, http::Resolve::to_send);
    HOOKCTL_RETURN_IF_ERROR(resolved);
    if (result.changes > 0) {
        if (auto saved = store.set_run_options(run_id, to_json(*plan).dump()); !saved) {
            return std::unexpected(saved.error());
        }
    }
    result.plan = *plan;
    if (is_shared(*plan, store)) {
        // The operator resumes the run for every worker: a breaker's stop no longer holds.
        archive::RunProgress now = ledger_of(*counts);
        if (auto saved = store.update_run(run_id, now, archive::RunState::running); !saved) {
            return std::unexpected(saved.error());
        }
    }
    archive::RunProgress earlier = ledger_of(*counts, (*run)->progress.paused_until_ms);
    return send(run_id, *plan, *resolved, earlier, store, how, hooks, stop, std::move(result));
}

Result<RunResult> join_run(const std::string& run_id, const PlanChanges& changes,
                           archive::Store& store, const Invocation& how, const RunHooks& hooks,
                           const std::atomic<int>& stop) {
    if (!store.shares_runs()) {
        return fail(ExitCode::usage, "--join " + run_id + ": archive " + store.path() +
                                         " is an SQLite file, and a run in one has a single "
                                         "worker; resume it with `hookctl replay --resume " +
                                         run_id + "` instead, or keep the archive in PostgreSQL");
    }
    auto run = store.get_run(run_id);
    HOOKCTL_RETURN_IF_ERROR(run);
    if (!*run) {
        return fail(ExitCode::usage, "--join: no run " + run_id + " in " + store.path() +
                                         " (list runs with `hookctl events runs --archive URI`)");
    }
    if ((*run)->state != archive::RunState::running) {
        return fail(ExitCode::usage, "--join: run " + run_id + " is " +
                                         std::string(archive::to_string((*run)->state)) +
                                         ((*run)->state == archive::RunState::completed
                                              ? ": nothing is left to send"
                                              : ", not running: resume it with `" +
                                                    resume_command(run_id, store.path()) +
                                                    "`, then add workers with --join"));
    }
    auto stored = nlohmann::json::parse((*run)->options_json, nullptr, false);
    auto plan = plan_from_json(stored);
    if (!plan) {
        return fail(ExitCode::usage, "run " + run_id + ": " + plan.error().message);
    }
    if (!is_shared(*plan, store)) {
        return fail(ExitCode::usage, "--join: run " + run_id + " reads its events from " +
                                         plan->source.describe() +
                                         ", not from its archive; only a replay of the "
                                         "archive's own events can be spread over workers");
    }
    PlanChanges local = changes; // this worker's: never recorded in the run
    local.rate.reset();
    local.burst.reset();
    const std::string by = how.started_by.empty() ? operator_identity() : how.started_by;
    apply_changes(*plan, local, by, util::SystemClock().unix_ms());
    auto counts = store.count_run_items(run_id);
    HOOKCTL_RETURN_IF_ERROR(counts);
    auto resolved = resolve(*plan, how, http::Resolve::to_send);
    HOOKCTL_RETURN_IF_ERROR(resolved);
    RunResult result;
    result.joined = true;
    result.plan = *plan;
    archive::RunProgress earlier = ledger_of(*counts, (*run)->progress.paused_until_ms);
    return send(run_id, *plan, *resolved, earlier, store, how, hooks, stop, std::move(result));
}

Result<DryRun> dry_run(const Plan& plan, const Invocation& how, archive::Store* source,
                       std::size_t show) {
    auto resolved = resolve(plan, how, http::Resolve::to_check);
    HOOKCTL_RETURN_IF_ERROR(resolved);
    DryRun out;
    out.target_label = resolved->delivery.target_label;
    out.url = resolved->delivery.endpoint.url;
    out.rate = resolved->rate;
    out.concurrency = resolved->concurrency;
    auto count = count_events(plan.source, source);
    HOOKCTL_RETURN_IF_ERROR(count);
    out.count = *count;
    auto walked = for_each_event(plan.source, source, [&](ReplayEvent&& e) -> Result<bool> {
        if (out.first.size() >= show) {
            return false;
        }
        out.first.push_back(std::move(e));
        return true;
    });
    HOOKCTL_RETURN_IF_ERROR(walked);
    if (!out.rate.unlimited()) {
        out.estimated_seconds = static_cast<double>(out.count) / *out.rate.per_second;
    }
    return out;
}

std::string operator_identity() {
    std::string user;
    if (const auto* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_name != nullptr) {
        user = pw->pw_name;
    } else if (const char* env = std::getenv("USER"); env != nullptr) {
        user = env;
    } else {
        user = std::to_string(::geteuid());
    }
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) {
        host[0] = '\0';
    }
    return user + "@" + (host[0] != '\0' ? host : "localhost");
}

std::string default_run_archive() {
    return (state_dir() / "runs.db").string();
}

std::string run_index_path(const std::string& run_id) {
    return (state_dir() / "runs" / run_id).string();
}

std::optional<std::string> indexed_archive(const std::string& run_id) {
    auto text = util::read_file(run_index_path(run_id));
    if (!text) {
        return std::nullopt;
    }
    std::string path = *text;
    while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) {
        path.pop_back();
    }
    if (path.empty()) {
        return std::nullopt;
    }
    return path;
}

std::vector<std::pair<std::string, std::string>> indexed_runs() {
    std::vector<std::pair<std::string, std::string>> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(state_dir() / "runs", ec)) {
        auto id = entry.path().filename().string();
        if (auto archive = indexed_archive(id)) {
            out.emplace_back(id, *archive);
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string resume_command(const std::string& run_id, const std::string& archive_path) {
    std::error_code ec;
    return "hookctl replay --resume " + run_id + " --archive " +
           fs::absolute(archive_path, ec).string();
}

} // namespace hookctl::replay
