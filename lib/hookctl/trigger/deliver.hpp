#pragma once

#include <functional>
#include <string>
#include <vector>

#include <hookctl/http/client.hpp>
#include <hookctl/http/deliver.hpp>
#include <hookctl/trigger/scenario.hpp>
#include <hookctl/util/clock.hpp>

namespace hookctl::trigger {

// How one delivery of a scenario went, judged against what it documents.
struct Sent {
    Delivery delivery;
    http::DeliveryResult result; // every attempt; the last one's answer is judged
    long status = 0;             // the last answer's HTTP status (0: none)
    bool as_documented = false;  // delivery.expect.met_by(status)
};

// The request `delivery` makes to `endpoint`, signed at `clock`'s now plus its offset: with a
// random secret when it asks for a wrong one, `Idempotency-Key` and a `traceparent` as `send`
// adds them (http::signed_request). Fails (exit 2) when the keys cannot sign the scheme.
Result<http::Request> request_for(const http::Endpoint& endpoint, const Delivery& delivery,
                                  const util::Clock& clock);

// Sends every delivery in order through `client`, as `send` does (http::deliver: a fresh
// signature each attempt, retries by `policy`), except a delivery with a timestamp offset, which
// is sent once (a retry would sign it afresh). `each` sees every delivery as it ends. Fails only
// on signing or libcurl errors.
Result<std::vector<Sent>> deliver_all(http::Client& client, const http::Endpoint& endpoint,
                                      const http::RetryPolicy& policy,
                                      const std::vector<Delivery>& deliveries,
                                      const util::Clock& clock,
                                      const std::function<void(const Sent&)>& each = {});

} // namespace hookctl::trigger
