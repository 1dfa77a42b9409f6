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

// Reads only what the receiver needs from the body: that it is one JSON object, and its
// top-level `event_id`, `message_id` and `org_id` (strings, or integers as text). A SAX pass
// validates the whole document without building it: no tree, no allocation per value.
class TopLevelFields final : public nlohmann::json_sax<nlohmann::json> {
public:
    bool object = false; // the document is an object (decided by its first value)
    std::string event_id;
    std::string message_id;
    std::string org_id;

    bool null() override { return value({}); }
    bool boolean(bool) override { return value({}); }
    bool number_integer(number_integer_t v) override { return value(std::to_string(v)); }
    bool number_unsigned(number_unsigned_t v) override { return value(std::to_string(v)); }
    bool number_float(number_float_t, const string_t&) override { return value({}); }
    bool string(string_t& v) override { return value(std::move(v)); }
    bool binary(binary_t&) override { return value({}); }
    bool start_object(std::size_t) override {
        if (m_depth == 0) {
            object = true;
        }
        m_target = nullptr;
        ++m_depth;
        return true;
    }
    bool end_object() override {
        --m_depth;
        return true;
    }
    bool start_array(std::size_t) override {
        m_target = nullptr;
        ++m_depth;
        return true;
    }
    bool end_array() override {
        --m_depth;
        return true;
    }
    bool key(string_t& k) override {
        m_target = nullptr;
        if (m_depth == 1) {
            if (k == "event_id") {
                m_target = &event_id;
            } else if (k == "message_id") {
                m_target = &message_id;
            } else if (k == "org_id") {
                m_target = &org_id;
            }
        }
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
        return false;
    }

private:
    bool value(std::string v) {
        if (m_target != nullptr) {
            *m_target = std::move(v);
            m_target = nullptr;
        }
        return true;
    }

    int m_depth = 0;
    std::string* m_target = nullptr;
};

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

namespace {

// The verification request for `headers`, or the rejection when `--scheme auto` finds no
// signature header of a known scheme.
std::optional<sig::VerifyRequest> verify_request(const CheckOptions& options,
                                                 const util::HeaderList& headers,
                                                 std::int64_t now_ms, Checked& out) {
    sig::VerifyRequest request;
    request.tolerance = options.tolerance;
    request.now = now_ms / 1000;
    if (options.scheme) {
        request.scheme = *options.scheme;
        return request;
    }
    auto detected = sig::detect_scheme(headers);
    if (!detected) {
        out.status = 401;
        out.reason_code = "missing_header";
        out.reason = "no signature header of a known scheme";
        return std::nullopt;
    }
    request.scheme = *detected;
    return request;
}

} // namespace

std::optional<Checked> check_request_headers(const CheckOptions& options,
                                             const util::HeaderList& headers, std::int64_t now_ms) {
    Checked out;
    auto request = verify_request(options, headers, now_ms, out);
    if (!request) {
        return out;
    }
    auto refused = sig::check_headers(*request, headers);
    if (!refused) {
        return std::nullopt;
    }
    out.status = 401;
    out.reason_code = std::string(sig::to_string(refused->outcome));
    out.reason = refused->reason;
    return out;
}

Checked check_request(const CheckOptions& options, const KeySet& keys,
                      const util::HeaderList& headers, std::string body, std::int64_t now_ms) {
    Checked out;
    auto checked_request = verify_request(options, headers, now_ms, out);
    if (!checked_request) {
        return out;
    }
    const sig::VerifyRequest& request = *checked_request;
    util::MemorySource source(body);
    auto verdict = sig::verify(request, headers, keys.for_scheme(request.scheme), source);
    if (!verdict) {
        out.status = 400;
        out.reason_code = "unreadable_body";
        out.reason = verdict.error().message;
        return out;
    }
    if (!verdict->ok()) {
        out.status = 401;
        out.reason_code = std::string(sig::to_string(verdict->outcome));
        out.reason = verdict->reason;
        return out;
    }
    // Verified: only now is the body parsed.
    auto& event = out.event;
    event.scheme = std::string(sig::info(request.scheme).name);
    event.received_at_ms = now_ms;
    event.verified_by = verdict->fingerprint.value_or("");
    if (verdict->id && !verdict->id->empty()) {
        event.event_id = *verdict->id;
    }
    // A webhook carries an event: a body that is not a JSON object is refused (400), never
    // stored, even when its signature is good — the sender is broken and must hear so.
    TopLevelFields fields;
    bool valid =
        nlohmann::json::sax_parse(body, &fields, nlohmann::json::input_format_t::json, true, false);
    if (!valid || !fields.object) {
        out.status = 400;
        out.reason_code = "invalid_json";
        out.reason = !valid ? "body is not valid JSON (the signature matched; fix the sender)"
                            : "body is JSON but not an object (an event is a JSON object)";
        out.event = {};
        return out;
    }
    if (event.event_id.empty()) {
        event.event_id = std::move(fields.event_id);
    }
    if (event.event_id.empty()) {
        event.event_id = std::move(fields.message_id);
    }
    event.org_id = std::move(fields.org_id);
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
