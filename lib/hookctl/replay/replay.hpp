#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/http/target.hpp>
#include <hookctl/replay/source.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::replay {

// Everything a replay run needs (DESIGN.md §7). Built by `hookctl replay` from its flags, or
// from a stored run's options on --resume.
struct ReplayOptions {
    SourceSpec source;
    http::ResolvedDelivery delivery;
    util::Rate rate;                          // unlimited: as fast as `concurrency` allows
    int burst = 0;                            // 0: rate / 50 (20 ms of catch-up), at least 1
    int concurrency = 8;                      // requests in flight at most
    std::optional<std::int64_t> max_failures; // dead events that trip the breaker
    std::optional<double> max_error_rate;     // failed share of the last 10 s of attempts
    std::string archive_path;                 // where the run and its attempts are recorded
    std::string resume_run_id;                // continue this run (its options must match)
    nlohmann::json options_json;              // stored in the run row, for --resume
};

// What the run looks like now (progress bar) and at the end (summary).
struct ReplayProgress {
    std::string run_id;
    std::int64_t total = 0;   // events selected (this invocation's share on a resume)
    std::int64_t skipped = 0; // finished in an earlier invocation of the run (resume)
    std::int64_t done = 0;    // delivered + dead
    std::int64_t delivered = 0;
    std::int64_t dead = 0;
    std::int64_t sent = 0;    // requests sent (attempts)
    std::int64_t retried = 0; // attempts that were retries
    std::int64_t failed_attempts = 0;
    std::int64_t in_flight = 0;
    double elapsed_s = 0;
    double achieved_rate = 0; // requests per second
    double p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
    // Paced runs: how long after its slot on the schedule each send left (0 with --rate max).
    double lag_p50_ms = 0, lag_p99_ms = 0, lag_max_ms = 0;
    bool paused = false;                                            // waiting out a 429 Retry-After
    std::vector<std::pair<std::string, std::int64_t>> dead_reasons; // reason -> events
    // On a resume: what earlier invocations of the run finished (from the run row).
    std::int64_t earlier_delivered = 0;
    std::int64_t earlier_dead = 0;
};

enum class RunEnd {
    completed,   // every event delivered or dead
    interrupted, // SIGINT: stopped taking new events, in-flight ones finished
    tripped,     // the circuit breaker stopped the run
};

struct ReplayResult {
    RunEnd end = RunEnd::completed;
    ReplayProgress progress;
    std::string reason; // why the breaker tripped
};

// Observes a run: progress() about every 200 ms, log() for notable things (a pause, a dead
// event, the breaker). Called from the replay thread.
struct ReplayObserver {
    std::function<void(const ReplayProgress&)> progress;
    std::function<void(const std::string&)> log;
};

// `stop` is set to 1 by a SIGINT handler: no new events start, in-flight ones finish, and the
// run is recorded as interrupted (resumable).
//
// Fails (exit 2) on a source error before anything is sent, (exit 4) when the archive cannot
// be written, or the target is unreachable at start (the first requests all fail to connect).
Result<ReplayResult> run_replay(const ReplayOptions& options, const ReplayObserver& observer,
                                const std::atomic<int>& stop);

// A dry run: what would be sent.
struct DryRun {
    std::uint64_t count = 0;
    std::vector<ReplayEvent> first; // the first few, bodies cut to 200 bytes
    double estimated_seconds = 0;   // count / rate (0 when the rate is max)
};
Result<DryRun> dry_run(const ReplayOptions& options, std::size_t show = 10);

// Where a run's archive is remembered so `--resume RUN_ID` alone finds it:
// $XDG_STATE_HOME/hookctl/runs/RUN_ID (or ~/.local/state/...).
std::string run_index_path(const std::string& run_id);

} // namespace hookctl::replay
