#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/http/client.hpp>
#include <hookctl/http/retry.hpp>
#include <hookctl/keys/secret.hpp>
#include <hookctl/sig/scheme.hpp>

namespace hookctl::http {

// Where and how to deliver: the URL, the scheme and the decoded signing keys.
struct Endpoint {
    std::string url;
    sig::Scheme scheme = sig::Scheme::mailparse;
    std::vector<keys::Key> keys;
    std::string content_type = "application/json";
};

// A W3C traceparent: `00-<trace_id>-<span_id>-01`. `trace_id` (32 hex) is used when valid,
// otherwise one is made; the span id is fresh.
std::string make_traceparent(std::string_view trace_id);

// `trace_id` when it is a valid W3C trace id (32 lowercase hex, not all zero), else a fresh
// one: fix it once per event so every attempt of that event shares one trace.
std::string trace_id_or_new(std::string_view trace_id);

// Builds the request for one attempt: `body` signed with a fresh `timestamp`, plus
// `Content-Type`, `Idempotency-Key: <event_id>` (also the signed id for standard/svix) and
// `extra` headers. Fails (exit 2) when the keys cannot sign the scheme.
Result<Request> signed_request(const Endpoint& endpoint, std::string_view event_id,
                               std::string body, const util::HeaderList& extra,
                               std::int64_t timestamp);

// One attempt as it went, for logs and the archive.
struct Attempt {
    int number = 0;    // 1-based
    Response response; // status 0 on transport errors
    Decision decision;
    std::chrono::milliseconds wait_before_next{0}; // 0 when there is no next attempt
};

struct DeliveryResult {
    bool delivered = false;
    std::vector<Attempt> attempts;
    std::string reason; // why not delivered: the last decision's reason
};

// Delivers one event with retries (blocking), re-signing every attempt with a fresh timestamp.
// `each` (optional) sees every attempt as it ends. Fails only on signing errors (exit 2) or
// libcurl failures (exit 4); delivery failures are in the result.
Result<DeliveryResult> deliver(Client& client, const Endpoint& endpoint, std::string_view event_id,
                               const std::string& body, const util::HeaderList& extra,
                               const RetryPolicy& policy,
                               const std::function<void(const Attempt&)>& each = {});

} // namespace hookctl::http
