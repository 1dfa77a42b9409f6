#include <nlohmann/json.hpp>

#include <hookctl/receive/handler.hpp>
#include <hookctl/sig/verify.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>

namespace hookctl::receive {
namespace {

bool is_lower_hex(std::string_view s) {
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

std::string string_field(const nlohmann::json& doc, const char* name) {
    auto it = doc.find(name);
    if (it != doc.end() && it->is_string()) {
        return it->get<std::string>();
    }
    if (it != doc.end() && it->is_number_integer()) {
        return std::to_string(it->get<std::int64_t>());
    }
    return {};
}

} // namespace

std::string trace_id_of(std::string_view traceparent) {
    // version "-" trace-id(32) "-" parent-id(16) "-" flags(2)
    auto v = util::trim(traceparent);
    if (v.size() < 55 || v[2] != '-' || v[35] != '-') {
        return {};
    }
    auto id = v.substr(3, 32);
    if (!is_lower_hex(id) || id == std::string(32, '0')) {
        return {};
    }
    return std::string(id);
}

Checked check_request(const CheckOptions& options, const KeySet& keys,
                      const util::HeaderList& headers, std::string body, std::int64_t now_ms) {
    Checked out;
    sig::VerifyRequest request;
    request.tolerance = options.tolerance;
    request.now = now_ms / 1000;
    if (options.scheme) {
        request.scheme = *options.scheme;
    } else {
        auto detected = sig::detect_scheme(headers);
        if (!detected) {
            out.status = 400;
            out.reason_code = "missing_header";
            out.reason = "no signature header of a known scheme";
            return out;
        }
        request.scheme = *detected;
    }
    util::MemorySource source(body);
    auto verdict = sig::verify(request, headers, keys.for_scheme(request.scheme), source);
    if (!verdict) {
        out.status = 400;
        out.reason_code = "unreadable_body";
        out.reason = verdict.error().message;
        return out;
    }
    if (!verdict->ok()) {
        out.status = verdict->outcome == sig::Outcome::no_match ? 401 : 400;
        out.reason_code = std::string(sig::outcome_code(verdict->outcome));
        out.reason = verdict->reason;
        return out;
    }
    // Verified: only now is the body parsed.
    auto& event = out.event;
    event.scheme = std::string(sig::info(request.scheme).name);
    event.received_at_ms = now_ms;
    if (verdict->id && !verdict->id->empty()) {
        event.event_id = *verdict->id;
    }
    // A webhook carries an event: a body that is not a JSON object is refused (400), never
    // stored, even when its signature is good — the sender is broken and must hear so.
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (!doc.is_object()) {
        out.status = 400;
        out.reason_code = "invalid_json";
        out.reason = doc.is_discarded()
                         ? "body is not valid JSON (the signature matched; fix the sender)"
                         : "body is JSON but not an object (an event is a JSON object)";
        out.event = {};
        return out;
    }
    if (event.event_id.empty()) {
        event.event_id = string_field(doc, "event_id");
    }
    if (event.event_id.empty()) {
        event.event_id = string_field(doc, "message_id");
    }
    event.org_id = string_field(doc, "org_id");
    if (event.event_id.empty()) {
        event.event_id = "sha256:" + util::hex_encode(util::sha256(body));
    }
    if (auto tp = headers.find("traceparent")) {
        event.trace_id = trace_id_of(*tp);
    }
    event.headers = headers;
    event.body = std::move(body);
    return out;
}

} // namespace hookctl::receive
