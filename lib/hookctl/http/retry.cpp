#include <algorithm>
#include <charconv>
#include <string>

#include <curl/curl.h>

#include <hookctl/http/retry.hpp>

namespace hookctl::http {

std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
    value = util::trim(value);
    if (value.empty()) {
        return std::nullopt;
    }
    if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::int64_t seconds = 0;
        auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
        if (ec != std::errc() || ptr != value.data() + value.size() || seconds > 10'000'000) {
            return std::nullopt;
        }
        return std::chrono::milliseconds(seconds * 1000);
    }
    // An HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms): libcurl parses all.
    std::string text(value);
    time_t when = curl_getdate(text.c_str(), nullptr);
    if (when < 0) {
        return std::nullopt;
    }
    auto at = std::chrono::system_clock::from_time_t(when);
    if (at <= now) {
        return std::chrono::milliseconds(0);
    }
    return std::chrono::ceil<std::chrono::milliseconds>(at - now);
}

Decision classify(const Response& response, std::chrono::system_clock::time_point now) {
    Decision d;
    if (response.status == 0) {
        d.verdict = Verdict::retry;
        d.reason =
            response.timed_out                                 ? "timeout"
            : response.curl_code == CURLE_COULDNT_CONNECT      ? "connect_error"
            : response.curl_code == CURLE_COULDNT_RESOLVE_HOST ? "resolve_error"
            : response.curl_code == CURLE_GOT_NOTHING          ? "empty_reply"
            : (response.curl_code == CURLE_SEND_ERROR || response.curl_code == CURLE_RECV_ERROR)
                ? "connection_reset"
            : (response.tls_failed || response.curl_code == CURLE_PEER_FAILED_VERIFICATION ||
               response.curl_code == CURLE_SSL_CONNECT_ERROR)
                ? "tls_error"
                : "transport_error";
        // A certificate that does not verify will not verify on the next attempt either.
        if (response.curl_code == CURLE_PEER_FAILED_VERIFICATION || response.tls_permanent) {
            d.verdict = Verdict::permanent;
        }
        return d;
    }
    d.reason = "http_" + std::to_string(response.status);
    if (response.status >= 200 && response.status < 300) {
        d.verdict = Verdict::delivered;
        d.reason.clear();
        return d;
    }
    if (response.status == 408 || response.status == 429 || response.status >= 500) {
        d.verdict = Verdict::retry;
        if (response.status == 429 || response.status == 503) {
            if (auto value = response.headers.find("Retry-After")) {
                d.retry_after = parse_retry_after(*value, now);
            }
        }
        return d;
    }
    d.verdict = Verdict::permanent;
    return d;
}

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry,
                                        std::mt19937_64& rng) {
    int shift = std::clamp(retry - 1, 0, 40);
    double ceiling =
        static_cast<double>(policy.backoff_base.count()) * static_cast<double>(1ULL << shift);
    ceiling = std::min(ceiling, static_cast<double>(policy.backoff_max.count()));
    if (ceiling <= 0) {
        return std::chrono::milliseconds(0);
    }
    std::uniform_real_distribution<double> uniform(0.0, ceiling);
    return std::chrono::milliseconds(static_cast<std::int64_t>(uniform(rng)));
}

std::optional<std::chrono::milliseconds> next_delay(const RetryPolicy& policy,
                                                    const Decision& decision, int retries_done,
                                                    std::chrono::milliseconds elapsed,
                                                    std::mt19937_64& rng) {
    if (decision.verdict != Verdict::retry || retries_done >= policy.retries) {
        return std::nullopt;
    }
    auto delay =
        decision.retry_after ? *decision.retry_after : backoff_delay(policy, retries_done + 1, rng);
    if (policy.max_elapsed && elapsed + delay > *policy.max_elapsed) {
        return std::nullopt;
    }
    return delay;
}

} // namespace hookctl::http
