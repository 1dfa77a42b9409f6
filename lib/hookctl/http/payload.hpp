#pragma once

#include <expected>
#include <string>

#include <hookctl/util/error.hpp>

namespace hookctl::http {

// The bytes to deliver as given, and how to read them. Every member has a default, so
// designated initializers may name only some.
struct PayloadInput {
    std::string raw{};                             // a file's bytes, stdin's, a HAR entry's body
    bool is_eml = false;                           // `raw` is a message: sent as its event JSON
    std::string org_id{};                          // the event's `org_id` when `is_eml`
    std::string content_type = "application/json"; // `application/json`: the body must be JSON
    std::string event_id{};                        // given by the caller; empty: found or made
};

// The body to deliver and the ids that go with it.
struct Payload {
    std::string body;
    std::string event_id; // as given; else the body's `event_id`; else mime::event_id_for(body)
    std::string trace_id; // the body's `trace_id`; empty when it has none
};

// Why build_payload failed, so a caller can word the advice for its own interface.
enum class PayloadFailure {
    message,  // the message could not be parsed (mime::parse_message's error)
    not_json, // the content type is application/json and the body is not JSON
};

struct PayloadError {
    PayloadFailure kind = PayloadFailure::message;
    Error error;
};

// Builds the payload `input` describes. A message (`is_eml`) is parsed to the event JSON
// (mime::parse_message, with `org_id`); other bytes are sent as they are. With the content type
// `application/json` the body must be JSON (exit 2, PayloadFailure::not_json); when it is an
// object, its string `event_id` (unless one is given) and `trace_id` are used. Without an event
// id the body's own is made (mime::event_id_for): the same bytes get the same id, so sending
// them twice is idempotent at the receiver.
std::expected<Payload, PayloadError> build_payload(PayloadInput input);

} // namespace hookctl::http
