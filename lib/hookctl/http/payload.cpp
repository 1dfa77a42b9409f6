#include <nlohmann/json.hpp>

#include <hookctl/http/payload.hpp>
#include <hookctl/mime/parse.hpp>

namespace hookctl::http {

std::expected<Payload, PayloadError> build_payload(PayloadInput input) {
    Payload payload;
    payload.event_id = std::move(input.event_id);
    const bool json = input.content_type == "application/json";
    nlohmann::json doc; // the body as JSON, when the content type says it is
    if (input.is_eml) {
        mime::ParseOptions options;
        options.org_id = input.org_id;
        auto event = mime::parse_message(input.raw, options);
        if (!event) {
            return std::unexpected(PayloadError{PayloadFailure::message, event.error()});
        }
        payload.body = event->dump();
        if (json) {
            doc = std::move(*event); // the body's own document: no need to parse it back
        }
    } else {
        payload.body = std::move(input.raw);
        if (json) {
            doc = nlohmann::json::parse(payload.body, nullptr, false);
            if (doc.is_discarded()) {
                return std::unexpected(PayloadError{
                    PayloadFailure::not_json,
                    Error{ExitCode::usage, "the payload is not valid JSON, as its content type "
                                           "application/json requires"}});
            }
        }
    }
    if (doc.is_object()) {
        if (payload.event_id.empty() && doc.contains("event_id") && doc["event_id"].is_string()) {
            payload.event_id = doc["event_id"].get<std::string>();
        }
        if (doc.contains("trace_id") && doc["trace_id"].is_string()) {
            payload.trace_id = doc["trace_id"].get<std::string>();
        }
    }
    if (payload.event_id.empty()) {
        payload.event_id = mime::event_id_for(payload.body);
    }
    return payload;
}

} // namespace hookctl::http
