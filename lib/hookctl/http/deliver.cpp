#include <algorithm>
#include <random>
#include <thread>

#include <hookctl/http/deliver.hpp>
#include <hookctl/sig/sign.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::http {

std::string trace_id_or_new(std::string_view trace_id) {
    bool valid =
        trace_id.size() == 32 &&
        std::all_of(trace_id.begin(), trace_id.end(),
                    [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }) &&
        trace_id != std::string(32, '0');
    return valid ? std::string(trace_id) : util::hex_encode(util::id_bytes(16));
}

std::string make_traceparent(std::string_view trace_id) {
    return "00-" + trace_id_or_new(trace_id) + "-" + util::hex_encode(util::id_bytes(8)) + "-01";
}

Result<Request> signed_request(const Endpoint& endpoint, std::string_view event_id,
                               std::string body, const util::HeaderList& extra,
                               std::int64_t timestamp) {
    sig::SignRequest sign_request;
    sign_request.scheme = endpoint.scheme;
    sign_request.timestamp = timestamp;
    if (!sig::info(endpoint.scheme).id_header.empty()) {
        sign_request.id = event_id.empty() ? sig::new_message_id() : std::string(event_id);
    }
    util::MemorySource source(body);
    auto signed_ = sig::sign(sign_request, endpoint.keys, source);
    HOOKCTL_RETURN_IF_ERROR(signed_);
    Request request;
    request.url = endpoint.url;
    request.headers.add("Content-Type", endpoint.content_type);
    for (const auto& [name, value] : signed_->headers.entries()) {
        request.headers.add(name, value);
    }
    if (!event_id.empty()) {
        request.headers.add("Idempotency-Key", std::string(event_id));
    }
    for (const auto& [name, value] : extra.entries()) {
        request.headers.add(name, value);
    }
    request.body = std::move(body);
    return request;
}

Result<DeliveryResult> deliver(Client& client, const Endpoint& endpoint, std::string_view event_id,
                               const std::string& body, const util::HeaderList& extra,
                               const RetryPolicy& policy,
                               const std::function<void(const Attempt&)>& each) {
    std::mt19937_64 rng(std::random_device{}());
    DeliveryResult result;
    auto first = std::chrono::steady_clock::now();
    for (int number = 1;; ++number) {
        auto request = signed_request(endpoint, event_id, body, extra, util::unix_now_s());
        HOOKCTL_RETURN_IF_ERROR(request);
        auto response = client.perform(std::move(*request));
        HOOKCTL_RETURN_IF_ERROR(response);
        Attempt attempt;
        attempt.number = number;
        attempt.decision = classify(*response, util::wall_now());
        attempt.response = std::move(*response);
        auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - first);
        std::optional<std::chrono::milliseconds> wait;
        if (attempt.decision.verdict == Verdict::delivered) {
            result.delivered = true;
        } else {
            std::mt19937_64& r = rng;
            wait = next_delay(policy, attempt.decision, number - 1, elapsed, r);
            result.reason = attempt.decision.reason;
        }
        attempt.wait_before_next = wait.value_or(std::chrono::milliseconds(0));
        if (each) {
            each(attempt);
        }
        result.attempts.push_back(std::move(attempt));
        if (result.delivered || !wait) {
            return result;
        }
        std::this_thread::sleep_for(*wait);
    }
}

} // namespace hookctl::http
