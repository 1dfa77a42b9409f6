#include <hookctl/http/retry.hpp>
#include <hookctl/trigger/deliver.hpp>
#include <hookctl/util/encoding.hpp>

namespace hookctl::trigger {
namespace {

// `endpoint` as `delivery` signs: with a random secret when it asks for a wrong one.
http::Endpoint endpoint_for(const http::Endpoint& endpoint, const Delivery& delivery) {
    http::Endpoint out = endpoint;
    if (delivery.wrong_secret) {
        keys::Key wrong;
        wrong.kind = keys::KeyKind::hmac;
        wrong.bytes = keys::SecretBytes(util::random_bytes(32));
        wrong.fingerprint = keys::fingerprint(wrong.bytes.view());
        wrong.origin = "a random secret (wrong-secret)";
        out.keys = {std::move(wrong)};
    }
    return out;
}

util::HeaderList extra_headers(const Delivery& delivery) {
    util::HeaderList extra;
    extra.add("traceparent", http::make_traceparent(delivery.trace_id));
    return extra;
}

} // namespace

Result<http::Request> request_for(const http::Endpoint& endpoint, const Delivery& delivery,
                                  const util::Clock& clock) {
    std::int64_t now = clock.unix_ms() / 1000;
    return http::signed_request(endpoint_for(endpoint, delivery), delivery.event_id, delivery.body,
                                extra_headers(delivery), now + delivery.timestamp_offset.count());
}

Result<std::vector<Sent>> deliver_all(http::Client& client, const http::Endpoint& endpoint,
                                      const http::RetryPolicy& policy,
                                      const std::vector<Delivery>& deliveries,
                                      const util::Clock& clock,
                                      const std::function<void(const Sent&)>& each) {
    std::vector<Sent> out;
    for (const auto& delivery : deliveries) {
        Sent sent;
        sent.delivery = delivery;
        if (delivery.timestamp_offset.count() != 0) {
            auto request = request_for(endpoint, delivery, clock);
            HOOKCTL_RETURN_IF_ERROR(request);
            auto response = client.perform(std::move(*request));
            HOOKCTL_RETURN_IF_ERROR(response);
            http::Attempt attempt;
            attempt.number = 1;
            attempt.decision = http::classify(*response, clock.wall());
            attempt.response = std::move(*response);
            sent.result.delivered = attempt.decision.verdict == http::Verdict::delivered;
            sent.result.reason = sent.result.delivered ? "" : attempt.decision.reason;
            sent.result.attempts.push_back(std::move(attempt));
        } else {
            auto result = http::deliver(client, endpoint_for(endpoint, delivery), delivery.event_id,
                                        delivery.body, extra_headers(delivery), policy);
            HOOKCTL_RETURN_IF_ERROR(result);
            sent.result = std::move(*result);
        }
        sent.status =
            sent.result.attempts.empty() ? 0 : sent.result.attempts.back().response.status;
        sent.as_documented = delivery.expect.met_by(sent.status);
        if (each) {
            each(sent);
        }
        out.push_back(std::move(sent));
    }
    return out;
}

} // namespace hookctl::trigger
