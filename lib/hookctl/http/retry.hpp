#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <hookctl/http/client.hpp>

namespace hookctl::http {

// The retry policy of DESIGN.md §7: exponential backoff with full jitter, Retry-After obeyed.
struct RetryPolicy {
    int retries = 5;                                      // --retries: attempts after the first
    std::chrono::milliseconds backoff_base{500};          // --backoff-base
    std::chrono::milliseconds backoff_max{30'000};        // --backoff-max: cap of one delay
    std::optional<std::chrono::milliseconds> max_elapsed; // --max-elapsed: give up after this
};

// What to do after an attempt.
enum class Verdict {
    delivered, // 2xx
    retry,     // 408, 429, 5xx, transport error: try again (if the policy allows)
    permanent, // any other status: dead-letter with the reason
};

struct Decision {
    Verdict verdict = Verdict::retry;
    std::string reason; // reason code: `http_503`, `connect_error`, `timeout`, ...
    // From `Retry-After` on a 429 or 503: wait exactly this long before the next attempt.
    std::optional<std::chrono::milliseconds> retry_after;
};

// Classifies `response`; `now` resolves an HTTP-date `Retry-After`.
Decision classify(const Response& response, std::chrono::system_clock::time_point now);

// Parses a `Retry-After` value: delay-seconds (`120`) or an HTTP-date
// (`Wed, 21 Oct 2026 07:28:00 GMT`), relative to `now`. A date in the past is zero; garbage is
// nothing (the caller falls back to backoff).
std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now);

// The full-jitter delay before retry number `retry` (1 = the first retry): uniform in
// [0, min(backoff_max, backoff_base * 2^(retry-1))].
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, std::mt19937_64& rng);

// When to try again after a failed attempt, or nothing when the policy says stop: `retry`
// retries already used up, or the next attempt would start after `max_elapsed` from `first`.
// A Retry-After delay is used exactly instead of the jittered backoff.
std::optional<std::chrono::milliseconds> next_delay(const RetryPolicy& policy,
                                                    const Decision& decision, int retries_done,
                                                    std::chrono::milliseconds elapsed,
                                                    std::mt19937_64& rng);

} // namespace hookctl::http
