#pragma once

// hookctl::replay: re-delivering events at a set rate, resumably (DESIGN.md §7).
//
// A run is recorded in an archive (the Store): its Plan, its selection as run items, every
// attempt and the ledger. start_run() records a new run and sends; resume_run() finishes the
// pending items of a recorded run and nothing more. Both wire the Engine (engine.hpp, the
// decisions) to the real world: libcurl (http::Client), the archive (Recorder, Prefetch) and
// the system clock. The run's archive is opened once by the caller and passed in; the threads
// that need a connection of their own open it again through it.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <hookctl/archive/archive.hpp>
#include <hookctl/replay/engine.hpp>
#include <hookctl/replay/plan.hpp>

namespace hookctl::replay {

// What belongs to one invocation rather than to the run.
struct Invocation {
    std::string config_path; // --config (empty: the default path)
    bool yes = false;        // --yes: confirm a production target
    http::Prompt prompt;     // asks at a TTY (empty without one)
    bool log_retries = false;
    std::string started_by;          // user@host (default: operator_identity())
    std::int64_t keyring_time_s = 0; // keyrings judged then: the command's clock (HOOKCTL_NOW)
    http::DeliveryAdvice advice;     // what messages tell a person to pass (the command's flags)
};

// A run as it stands after an invocation.
struct RunResult {
    bool recorded = false; // false: nothing matched the selection, no run was recorded
    RunEnd end = RunEnd::completed;
    std::string reason; // why it ended other than completed
    ReplayProgress progress;
    Plan plan; // as run: a resume's changes applied
    std::string archive_path;
    std::string target_label;
    std::string url;
    util::Rate rate;
    int concurrency = 0;
    bool resumed = false;
    int changes = 0; // resume: plan fields this invocation changed
    // A run shared by workers (a PostgreSQL archive): this worker (user@host:pid) and the run's
    // state after it left (`running` while other workers go on).
    std::string worker;
    std::optional<archive::RunState> run_state;
    bool joined = false; // replay --join
};

struct RunHooks {
    Observer observer;
    // Called once the run is recorded and about to send (its id, selection and target set).
    std::function<void(const RunResult&)> started;
};

// Records a new run of `plan` in `store` and sends. For an archive source `store` must be the
// source archive itself (its events' statuses follow the run); for a foreign or MIME source,
// any archive. Checks everything before recording (exit 2); records nothing when the
// selection is empty. `stop` set to non-zero (SIGINT) ends it resumably.
Result<RunResult> start_run(const Plan& plan, archive::Store& store, const Invocation& how,
                            const RunHooks& hooks, const std::atomic<int>& stop);

// Resumes `run_id` of `store`: its stored plan with `changes` applied (recorded in the run),
// its pending items only. Fails (exit 2) when the run is unknown, completed, or recorded by a
// hookctl without run items.
Result<RunResult> resume_run(const std::string& run_id, const PlanChanges& changes,
                             archive::Store& store, const Invocation& how, const RunHooks& hooks,
                             const std::atomic<int>& stop);

// Adds this process as a worker to `run_id`, a run of `store` (PostgreSQL) that is running: it
// claims pending items under its own lease and sends them with the run's stored plan (its rate
// is the run's total over every worker). `changes` apply to this worker only and are not
// recorded (its concurrency, timeouts, secret flags); a rate or burst among them is ignored.
// Fails (exit 2) when the run is unknown, not running, or not shareable.
Result<RunResult> join_run(const std::string& run_id, const PlanChanges& changes,
                           archive::Store& store, const Invocation& how, const RunHooks& hooks,
                           const std::atomic<int>& stop);

// What a run of `plan` would send, checked exactly as start_run checks it (but no secret is
// loaded and nothing is recorded or sent). `source`: for an archive source, its handle
// (open_source_archive), read through and not opened again.
struct DryRun {
    std::uint64_t count = 0;
    std::vector<ReplayEvent> first; // the first few, bodies whole
    double estimated_seconds = 0;   // count / rate (0 when the rate is max)
    std::string target_label;
    std::string url;
    util::Rate rate;
    int concurrency = 0;
};
Result<DryRun> dry_run(const Plan& plan, const Invocation& how, archive::Store* source,
                       std::size_t show = 10);

// user@host, for runs.started_by and recorded plan changes.
std::string operator_identity();

// Where runs of foreign and MIME sources are recorded unless --archive says otherwise:
// $XDG_STATE_HOME/hookctl/runs.db (or ~/.local/state/hookctl/runs.db).
std::string default_run_archive();

// Where a run's archive is remembered so `--resume RUN_ID` alone finds it:
// $XDG_STATE_HOME/hookctl/runs/RUN_ID (or ~/.local/state/...).
std::string run_index_path(const std::string& run_id);
// The archive recorded for `run_id` in the index, or nothing.
std::optional<std::string> indexed_archive(const std::string& run_id);
// Every (run id, archive path) of the index.
std::vector<std::pair<std::string, std::string>> indexed_runs();

// The command that resumes `run_id` recorded in `archive_path`.
std::string resume_command(const std::string& run_id, const std::string& archive_path);

} // namespace hookctl::replay
