#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <hookctl/util/error.hpp>

namespace hookctl::receive {

// The fault injection flags of `hookctl listen` (chaos drills). Every fault is independent and
// reproducible: the same `seed` gives the same decisions for the same request sequence.
struct FaultOptions {
    double fail_rate = 0;                    // --fail-rate P: answer `fail_status`
    int fail_status = 503;                   // --fail-status CODE
    double throttle_rate = 0;                // --throttle-rate P: answer 429 with Retry-After
    std::chrono::seconds retry_after{1};     // --retry-after DUR
    std::chrono::milliseconds latency_min{}; // --latency DUR or MIN-MAX
    std::chrono::milliseconds latency_max{};
    double drop_rate = 0;         // --drop-rate P: close the connection without answering
    std::uint64_t fail_first = 0; // --fail-first N: the first N requests per event id fail
    std::uint64_t seed = 0;       // --seed

    bool any() const {
        return fail_rate > 0 || throttle_rate > 0 || latency_max.count() > 0 || drop_rate > 0 ||
               fail_first > 0;
    }
};

// Parses a probability `0.1`, `10%`; fails (exit 2) outside [0, 1], naming `flag`.
Result<double> parse_probability(std::string_view text, std::string_view flag);

// Parses `--latency`: `DUR` (fixed) or `MIN-MAX` (uniform), e.g. `200ms`, `50ms-2s`.
Result<std::pair<std::chrono::milliseconds, std::chrono::milliseconds>>
parse_latency(std::string_view text);

// What to do to one request that passed verification, before it is stored.
struct FaultDecision {
    enum class Kind { none, drop, fail, fail_first, throttle };
    Kind kind = Kind::none;
    std::chrono::milliseconds latency{}; // added before the answer (also with no fault)

    // The reason code logged and counted in metrics: `fault_drop`, `fault_fail`, ...
    std::string_view reason() const;
};

// The fault whose reason code (FaultDecision::reason) `reason` is; nothing for any other code
// (`none` included: it is never logged).
std::optional<FaultDecision::Kind> parse_fault_reason(std::string_view reason);

// Decides faults. Thread-safe. Decision `n` depends only on the seed, `n` and (for
// --fail-first) how many requests the event id had before.
class FaultPlan {
public:
    explicit FaultPlan(FaultOptions options)
        : m_options(options) {}

    const FaultOptions& options() const { return m_options; }

    // Decides for the `sequence`th request (0-based) carrying `event_id`. Precedence when several
    // fire: drop, fail-first, fail, throttle.
    FaultDecision decide(std::uint64_t sequence, std::string_view event_id);

private:
    FaultOptions m_options;
    std::mutex m_mutex;
    std::unordered_map<std::string, std::uint64_t> m_seen; // --fail-first: requests per event id
};

// A uniform double in [0, 1) from `seed`, `sequence` and a per-fault `stream` (SplitMix64).
double uniform(std::uint64_t seed, std::uint64_t sequence, std::uint64_t stream);

} // namespace hookctl::receive
