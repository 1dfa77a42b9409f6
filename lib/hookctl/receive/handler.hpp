#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <hookctl/receive/committer.hpp>
#include <hookctl/receive/keyset.hpp>
#include <hookctl/sig/scheme.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::receive {

// What the receiver checks on a webhook POST.
struct CheckOptions {
    std::optional<sig::Scheme> scheme = sig::Scheme::mailparse; // empty: auto (from headers)
    std::chrono::seconds tolerance{300};
};

// The result of checking one webhook request: either a rejection (status, reason code, a
// one-line reason) or an event to store.
struct Checked {
    int status = 0;          // 0: accepted (see `event`); else 401 or 400
    std::string reason_code; // `no_match`, `stale_timestamp`, `missing_header`, ...
    std::string reason;      // one line for a person
    IncomingEvent event;     // when accepted
};

// The statuses, one rule (probe(1) expects the same): a request that does not prove it comes
// from the sender gets 401, whatever the reason (no signature header, an unreadable signature or
// timestamp, a timestamp outside the tolerance, no signature matching); the reason code says
// which. 400 is for an authentic request whose content is refused (`invalid_json`).
//
// Verifies the signature over the raw `body` BEFORE anything is parsed, refuses a body that is
// not a JSON object (400, `invalid_json`), then finds the event id:
// the scheme's id header, else `event_id`, else `message_id` in the JSON body, else
// `sha256:<hex of body>` (identical bodies then deduplicate), and records the fingerprint of the
// key that verified it (`event.verified_by`). `now_ms`: Unix milliseconds of the check.
Checked check_request(const CheckOptions& options, const KeySet& keys,
                      const util::HeaderList& headers, std::string body, std::int64_t now_ms);

// What check_request can refuse from the headers alone, before the body is read (the scheme's
// headers missing or unreadable, the timestamp outside the tolerance): the rejection (status
// 401), or nothing when the headers pass.
std::optional<Checked> check_request_headers(const CheckOptions& options,
                                             const util::HeaderList& headers, std::int64_t now_ms);

// The trace id (32 hex) of a W3C `traceparent` value, or empty when it is not one.
std::string trace_id_of(std::string_view traceparent);

} // namespace hookctl::receive
