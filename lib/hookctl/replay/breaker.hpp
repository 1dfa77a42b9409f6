#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace hookctl::replay {

// When a replay stops by itself (DESIGN.md §7, replay(1) "CIRCUIT BREAKER").
struct BreakerOptions {
    // Stop after this many events were dead-lettered (--max-failures).
    std::optional<std::int64_t> max_failures;
    // Stop when more than this share of the attempts of the last 10 s failed, once there
    // were at least 20 (--max-error-rate).
    std::optional<double> max_error_rate;
    // Stop when this many attempts in a row failed with the same systemic reason
    // (--systemic-failures; 0 turns the systemic breaker off). Before the run delivered
    // anything, min(3, this, the events to send) suffice: the first attempts.
    int systemic_failures = 10;
};

// A reason that says more about the target than about the event: a wrong secret (401), a
// forbidden or wrong URL (403, 404, 405, 410), a certificate that does not verify, a host name
// that does not resolve. Seen on many events in a row, it means every event would fail.
bool is_systemic_reason(std::string_view reason);

// Decides when a replay stops by itself, and whether a dead verdict can be trusted yet.
//
// A streak is the run of consecutive attempts (in the order their answers came) that failed
// with the same systemic reason. Retryable failures that are not systemic (5xx, 429, timeouts,
// dropped connections) neither extend nor break it; a delivery or any other permanent failure
// breaks it. While a streak is open, an event that would be dead-lettered for the streak's
// reason is held instead (hold()): if the streak breaks, the held verdicts stand and are
// released (release_held()); if it reaches the threshold the breaker trips and the held
// events stay as they were, pending in the run, so an operator's typo never rewrites the
// dead-letter queue.
//
// Pure: time comes in as an argument.
class Breaker {
public:
    using Time = std::chrono::steady_clock::time_point;

    // `to_send`: how many events this invocation has to send (the first-attempts threshold).
    Breaker(BreakerOptions options, std::int64_t to_send);

    // An attempt's answer: delivered, or failed with `reason`, `permanent` when it will not be
    // retried for that reason alone (a 4xx other than 408/429, a certificate error).
    void record_attempt(bool delivered, std::string_view reason, bool permanent, Time now);

    // Whether an event about to be dead-lettered for `reason` must be held instead.
    bool hold(std::string_view reason) const;
    // True once after the streak that held events broke: the caller settles them as dead.
    bool release_held();
    // An event was dead-lettered (counts toward max_failures).
    void record_dead();
    // Nothing is left to send or in flight, and `held` events wait for a verdict: with no
    // delivery in this invocation the breaker trips (there is no evidence the target works);
    // otherwise the held verdicts stand (release_held() returns true).
    void judge_end(std::int64_t held);

    bool tripped() const { return !m_reason.empty(); }
    // Why it tripped, for a person: what failed, how often, and what to check.
    const std::string& reason() const { return m_reason; }
    // Whether it tripped on a systemic streak (held events stay pending).
    bool systemic() const { return m_systemic; }
    // The open streak: its reason and length (empty reason: none).
    std::string_view streak_reason() const { return m_streak_reason; }
    std::int64_t streak_length() const { return m_streak; }

private:
    void break_streak();
    void trip(std::string reason, bool systemic);
    std::int64_t threshold() const;

    BreakerOptions m_options;
    std::int64_t m_to_send;
    bool m_any_delivered = false;
    std::string m_streak_reason;
    std::int64_t m_streak = 0;
    bool m_release = false;
    std::int64_t m_dead = 0;
    std::deque<std::pair<Time, bool>> m_window; // attempts of the last 10 s: (when, failed)
    std::string m_reason;
    bool m_systemic = false;
};

} // namespace hookctl::replay
