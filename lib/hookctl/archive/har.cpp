#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include <hookctl/archive/har.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/shell.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::archive {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* k_unknown_url = "http://receiver.invalid/";

// Headers never carried to a new request (lowercase).
constexpr std::array<std::string_view, 27> k_not_carried = {
    // signatures of every scheme, and what they sign
    "x-signature", "x-signature-timestamp", "webhook-id", "webhook-timestamp", "webhook-signature",
    "svix-id", "svix-timestamp", "svix-signature", "stripe-signature", "x-hub-signature-256",
    "x-hub-signature", "x-slack-signature", "x-slack-request-timestamp", "x-shopify-hmac-sha256",
    // made again for the new request
    "idempotency-key", "traceparent", "tracestate", "content-type", "x-hookctl-replay-run",
    // one connection's
    "host", "content-length", "connection", "keep-alive", "transfer-encoding", "expect", "te",
    "upgrade"};

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    });
    return out;
}

bool is_utf8(const std::string& bytes) {
    try {
        (void)json(bytes).dump(); // strict: throws on invalid UTF-8
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

std::string content_type_of(const util::HeaderList& headers) {
    auto ct = headers.find("Content-Type");
    return ct && !ct->empty() ? std::string(*ct) : std::string("application/json");
}

json har_entry(const Event& e, const std::vector<Attempt>& attempts) {
    const Attempt* last = attempts.empty() ? nullptr : &attempts.back();
    std::string url = last != nullptr && (last->target.starts_with("http://") ||
                                          last->target.starts_with("https://"))
                          ? last->target
                          : k_unknown_url;
    json headers = json::array();
    for (const auto& [name, value] : e.headers.entries()) {
        headers.push_back({{"name", name}, {"value", value}});
    }
    json post = {{"mimeType", content_type_of(e.headers)}};
    if (is_utf8(e.body)) {
        post["text"] = e.body;
    } else {
        post["text"] = util::base64_encode(e.body);
        post["encoding"] = "base64";
    }
    json request = {{"method", "POST"},
                    {"url", url},
                    {"httpVersion", "HTTP/1.1"},
                    {"cookies", json::array()},
                    {"headers", std::move(headers)},
                    {"queryString", json::array()},
                    {"postData", std::move(post)},
                    {"headersSize", -1},
                    {"bodySize", e.body.size()}};
    if (url == k_unknown_url) {
        request["comment"] = "the receiver's URL is not recorded in the archive";
    }
    json response = {{"status", last != nullptr ? last->http_status : 0},
                     {"statusText", ""},
                     {"httpVersion", "HTTP/1.1"},
                     {"cookies", json::array()},
                     {"headers", json::array()},
                     {"content",
                      {{"size", last != nullptr ? last->detail.size() : 0},
                       {"mimeType", "text/plain"},
                       {"text", last != nullptr ? last->detail : ""}}},
                     {"redirectURL", ""},
                     {"headersSize", -1},
                     {"bodySize", -1}};
    double latency = 0;
    if (last != nullptr) {
        latency = last->latency_ms;
        response["comment"] = "last delivery attempt (#" + std::to_string(last->attempt) + ", " +
                              std::string(to_string(last->outcome)) +
                              (last->reason.empty() ? "" : ", " + last->reason) + ") at " +
                              util::format_time_ms(last->at_ms) + " to " + last->target;
    } else {
        response["comment"] = "no delivery attempt recorded";
    }
    return {{"startedDateTime", util::format_time_ms(e.received_at_ms)},
            {"time", latency},
            {"request", std::move(request)},
            {"response", std::move(response)},
            {"cache", json::object()},
            {"timings", {{"send", 0}, {"wait", latency}, {"receive", 0}}},
            {"_hookctl",
             {{"event_id", e.event_id},
              {"org_id", e.org_id},
              {"scheme", e.scheme},
              {"status", std::string(to_string(e.status))},
              {"received_at", util::format_time_ms(e.received_at_ms)},
              {"trace_id", e.trace_id},
              {"attempts", e.attempts}}}};
}

// True when `body` can sit in a quoted here-document as text and come back byte for byte.
bool heredoc_safe(const std::string& body) {
    if (body.empty() || body.back() == '\n' || !is_utf8(body)) {
        return false;
    }
    for (unsigned char c : body) {
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            return false;
        }
    }
    return ("\n" + body + "\n").find("\nHOOKCTL_BODY\n") == std::string::npos;
}

constexpr const char* k_script_head = R"(set -eu
url=${1:?usage: sh SCRIPT URL  (the endpoint to POST every event to)}
secret_env=${HOOKCTL_SECRET_ENV:-HOOK_SECRET}
hookctl=${HOOKCTL:-hookctl}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sent=0
failed=0

# post EVENT_ID SCHEME HEADER...: POSTs $work/body, signed now by `hookctl sign` with the
# secret in the variable $secret_env, with the event id as Idempotency-Key and HEADERs.
post() {
    id=$1
    scheme=${HOOKCTL_SCHEME:-$2}
    shift 2
    if ! "$hookctl" sign "$work/body" --scheme "$scheme" --id "$id" \
        --secret-env "$secret_env" > "$work/headers"; then
        failed=$((failed + 1))
        return 0
    fi
    printf '%s\n' "Idempotency-Key: $id" "$@" >> "$work/headers"
    if curl -sS --fail -o /dev/null -w "%{http_code} $id\n" -X POST -H @"$work/headers" \
        --data-binary @"$work/body" "$url"; then
        sent=$((sent + 1))
    else
        failed=$((failed + 1))
    fi
}
)";

} // namespace

util::HeaderList carried_headers(const util::HeaderList& stored) {
    util::HeaderList out;
    for (const auto& [name, value] : stored.entries()) {
        auto key = lower(name);
        if (std::find(k_not_carried.begin(), k_not_carried.end(), key) == k_not_carried.end() &&
            !key.starts_with("proxy-")) {
            out.add(name, value);
        }
    }
    return out;
}

Result<std::uint64_t> export_har(Store& archive, const EventFilter& filter, std::ostream& out) {
    std::optional<Error> failed;
    out << "{\"log\": {\"version\": \"1.2\", \"creator\": {\"name\": \"hookctl\", \"version\": \""
        << HOOKCTL_VERSION << "\"}, \"entries\": [";
    std::uint64_t count = 0;
    auto visited = archive.for_each_event(filter, [&](const Event& e) {
        auto attempts = archive.attempts_for(e.event_id);
        if (!attempts) {
            failed = attempts.error();
            return false;
        }
        out << (count++ == 0 ? "\n" : ",\n")
            << har_entry(e, *attempts).dump(-1, ' ', false, json::error_handler_t::replace);
        return static_cast<bool>(out);
    });
    HOOKCTL_RETURN_IF_ERROR(visited);
    if (failed) {
        return std::unexpected(*failed);
    }
    out << "\n]}}\n";
    if (!out) {
        return fail(ExitCode::environment, "cannot write the HAR document (disk full?)");
    }
    return count;
}

Result<std::uint64_t> export_curl(Store& archive, const EventFilter& filter, std::ostream& out,
                                  const ScriptOrigin& origin) {
    out << "#!/bin/sh\n"
        << "# Events of " << origin.archive << ", exported by `hookctl events export --format curl`"
        << " at " << origin.exported_at << ".\n"
        << "# Run: sh THIS_FILE URL. Each request is signed when it runs, by `hookctl sign` with\n"
        << "# the secret in $HOOK_SECRET (or in the variable HOOKCTL_SECRET_ENV names): this\n"
        << "# file holds no secret. HOOKCTL_SCHEME overrides each event's scheme; HOOKCTL the\n"
        << "# hookctl binary. Needs sh, curl (7.55 or later), mktemp and base64.\n"
        << k_script_head;
    std::uint64_t count = 0;
    auto visited = archive.for_each_event(filter, [&](const Event& e) {
        ++count;
        out << "\n# " << e.event_id << ": org " << (e.org_id.empty() ? "-" : e.org_id)
            << ", received " << util::format_time_ms(e.received_at_ms) << ", "
            << to_string(e.status) << (e.last_error.empty() ? "" : " (" + e.last_error + ")")
            << ", " << e.body.size() << " bytes\n";
        if (heredoc_safe(e.body)) {
            out << "body=$(cat <<'HOOKCTL_BODY'\n"
                << e.body << "\nHOOKCTL_BODY\n)\nprintf '%s' \"$body\" > \"$work/body\"\n";
        } else {
            std::string encoded = util::base64_encode(e.body);
            out << "base64 -d > \"$work/body\" <<'HOOKCTL_BODY'\n";
            for (std::size_t i = 0; i < encoded.size(); i += 76) {
                out << encoded.substr(i, 76) << '\n';
            }
            out << "HOOKCTL_BODY\n";
        }
        out << "post " << util::shell_quote(e.event_id) << ' '
            << util::shell_quote(e.scheme.empty() ? "mailparse" : e.scheme) << ' '
            << util::shell_quote("Content-Type: " + content_type_of(e.headers));
        const auto carried = carried_headers(e.headers);
        for (const auto& [name, value] : carried.entries()) {
            out << " \\\n    " << util::shell_quote(name + ": " + value);
        }
        out << '\n';
        return static_cast<bool>(out);
    });
    HOOKCTL_RETURN_IF_ERROR(visited);
    out << "\necho \"sent $sent, failed $failed (of " << count << ")\" >&2\n"
        << "[ \"$failed\" -eq 0 ]\n";
    if (!out) {
        return fail(ExitCode::environment, "cannot write the curl script (disk full?)");
    }
    return count;
}

Result<std::vector<HarRequest>> read_har(std::string_view text, const std::string& name) {
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("log") || !doc["log"].is_object() ||
        !doc["log"].contains("entries") || !doc["log"]["entries"].is_array()) {
        return fail(ExitCode::usage, name + ": not a HAR file (a JSON object with log.entries): "
                                            "export one from the browser's network panel, or "
                                            "with `hookctl events export --format har`");
    }
    std::vector<HarRequest> out;
    int index = 0;
    for (const auto& entry : doc["log"]["entries"]) {
        ++index;
        const std::string where = name + " entry " + std::to_string(index);
        if (!entry.is_object() || !entry.contains("request") || !entry["request"].is_object()) {
            return fail(ExitCode::usage, where + ": no request object");
        }
        const auto& request = entry["request"];
        if (!request.contains("postData") || !request["postData"].is_object()) {
            continue;
        }
        HarRequest r;
        r.entry = index;
        r.method = request.value("method", "POST");
        r.url = request.value("url", "");
        if (request.contains("headers") && request["headers"].is_array()) {
            for (const auto& h : request["headers"]) {
                if (h.is_object() && h.contains("name") && h["name"].is_string() &&
                    h.contains("value") && h["value"].is_string()) {
                    r.headers.add(h["name"].get<std::string>(), h["value"].get<std::string>());
                }
            }
        }
        const auto& post = request["postData"];
        if (!post.contains("text") || !post["text"].is_string()) {
            return fail(ExitCode::usage, where + ": postData has no text (form params alone are "
                                                 "not read: the raw body is needed to sign it)");
        }
        r.body = post["text"].get<std::string>();
        if (post.value("encoding", "") == "base64") {
            auto decoded = util::base64_decode(r.body);
            if (!decoded) {
                return fail(ExitCode::usage, where + ": postData.text is marked base64 but is not");
            }
            r.body = std::move(*decoded);
        }
        r.content_type = post.value("mimeType", "");
        if (r.content_type.empty()) {
            r.content_type = content_type_of(r.headers);
        }
        auto body_doc = nlohmann::json::parse(r.body, nullptr, false);
        auto body_field = [&](const char* field) -> std::string {
            if (body_doc.is_object() && body_doc.contains(field) && body_doc[field].is_string()) {
                return body_doc[field].get<std::string>();
            }
            return {};
        };
        json meta = entry.contains("_hookctl") && entry["_hookctl"].is_object() ? entry["_hookctl"]
                                                                                : json::object();
        r.event_id = meta.value("event_id", "");
        for (const char* header : {"Idempotency-Key", "webhook-id", "svix-id"}) {
            if (r.event_id.empty()) {
                r.event_id = std::string(r.headers.find(header).value_or(""));
            }
        }
        if (r.event_id.empty()) {
            r.event_id = body_field("event_id");
        }
        r.org_id = meta.value("org_id", "");
        if (r.org_id.empty()) {
            r.org_id = body_field("org_id");
        }
        r.trace_id = meta.value("trace_id", "");
        if (r.trace_id.empty()) {
            r.trace_id = body_field("trace_id");
        }
        if (entry.contains("startedDateTime") && entry["startedDateTime"].is_string()) {
            auto ms = util::parse_time_ms(entry["startedDateTime"].get<std::string>());
            r.started_ms = ms ? *ms : 0;
        }
        out.push_back(std::move(r));
    }
    return out;
}

Result<HarRequest> read_har_entry(const std::string& path, int entry) {
    auto text = util::read_file(path);
    HOOKCTL_RETURN_IF_ERROR(text);
    auto requests = read_har(*text, path);
    HOOKCTL_RETURN_IF_ERROR(requests);
    for (auto& r : *requests) {
        if (r.entry == entry) {
            return std::move(r);
        }
    }
    auto doc = json::parse(*text, nullptr, false);
    std::size_t total = doc["log"]["entries"].size();
    if (entry < 1 || static_cast<std::size_t>(entry) > total) {
        return fail(ExitCode::usage, "--entry " + std::to_string(entry) + ": " + path + " has " +
                                         std::to_string(total) + " entries (numbered from 1)");
    }
    return fail(ExitCode::usage, path + " entry " + std::to_string(entry) +
                                     " has no request body (postData): pick an entry of a POST");
}

} // namespace hookctl::archive
