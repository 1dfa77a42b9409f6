#pragma once

// hookctl::replay::Plan: what a replay run is (its source and selection, its target, its
// pacing, retry policy and breaker), stored with the run so `--resume` repeats it from the
// archive, never from the command line. Selection and target are fixed for the life of a run;
// pacing, retries, timeouts and the breaker may be changed by a resume (PlanChanges), and the
// run records each change.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <hookctl/http/target.hpp>
#include <hookctl/replay/breaker.hpp>
#include <hookctl/replay/source.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::replay {

struct Plan {
    SourceSpec source; // its path absolute, relative times already resolved
    // The target and how to reach it. `config_path` and `yes` belong to an invocation and
    // are not stored; secret sources are (they name where secrets live, never a secret).
    http::DeliverySpec delivery;
    std::optional<util::Rate> rate; // nothing: the target's rate, else 50/s
    int burst = 0;                  // 0: rate / 50
    int concurrency = 0;            // 0: the target's, else 8
    BreakerOptions breaker;
    // Changes a resume made: {"at_ms", "by", "field", "from", "to"} objects.
    nlohmann::json changes = nlohmann::json::array();
};

// The plan as stored in the run row (an object with "version": 1). The retry count and the
// durations are stored as text, as on the command line ("5", "500ms", "30s"; "" for no
// max_elapsed), so plans stored by every hookctl of version 1 read the same.
nlohmann::json to_json(const Plan& plan);
// Reads a stored plan. Fails (exit 2) when it is not one (a run of an older hookctl).
Result<Plan> plan_from_json(const nlohmann::json& stored);

// What a resume may change. Each field set replaces the stored one.
struct PlanChanges {
    std::optional<util::Rate> rate;
    std::optional<int> burst;
    std::optional<int> concurrency;
    std::optional<int> retries;
    std::optional<std::chrono::milliseconds> backoff_base, backoff_max, timeout, connect_timeout;
    // Set: the new limit, which may be none (an empty inner value).
    std::optional<std::optional<std::chrono::milliseconds>> max_elapsed;
    std::optional<bool> insecure;
    std::optional<std::int64_t> max_failures;
    std::optional<double> max_error_rate;
    std::optional<int> systemic_failures;
    std::vector<keys::SecretSource> secrets; // non-empty: sign with these instead
};

// Applies `changes` to `plan`, appending to plan.changes what differed (`by`: user@host,
// `at_ms`: when). Returns how many fields changed.
int apply_changes(Plan& plan, const PlanChanges& changes, const std::string& by,
                  std::int64_t at_ms);

// `50/s`, `max`: how a rate is written on the command line.
std::string format_rate(const util::Rate& rate);

} // namespace hookctl::replay
