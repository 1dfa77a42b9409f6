#include <cmath>
#include <string>
#include <vector>

#include <hookctl/archive/ndjson.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::archive {
namespace {

using json = nlohmann::ordered_json;

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) {
            return false;
        }
        for (std::size_t k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += len;
    }
    return true;
}

std::unexpected<Error> field_error(std::string_view field, std::string_view what) {
    return fail(ExitCode::usage, "field '" + std::string(field) + "' " + std::string(what));
}

// An optional string field: absent or null -> `fallback`.
Result<std::string> optional_string(const json& object, const char* field,
                                    std::string fallback = {}) {
    auto it = object.find(field);
    if (it == object.end() || it->is_null()) {
        return fallback;
    }
    if (!it->is_string()) {
        return field_error(field, "must be a string");
    }
    return it->get<std::string>();
}

} // namespace

json event_to_json(const Event& event, bool include_body) {
    json out = json::object();
    out["event_id"] = event.event_id;
    out["seq"] = event.seq;
    out["received_at"] = util::format_time_ms(event.received_at_ms);
    out["org_id"] = event.org_id;
    out["scheme"] = event.scheme;
    out["status"] = std::string(to_string(event.status));
    out["attempts"] = event.attempts;
    out["last_error"] = event.last_error;
    out["updated_at"] = util::format_time_ms(event.updated_at_ms);
    out["trace_id"] = event.trace_id;
    out["source"] = event.source;
    out["verified_by"] = event.verified_by;
    json headers = json::array();
    for (const auto& [name, value] : event.headers.entries()) {
        headers.push_back(json::array({name, value}));
    }
    out["headers"] = std::move(headers);
    if (include_body) {
        bool done = false;
        if (valid_utf8(event.body)) {
            auto parsed = json::parse(event.body, nullptr, false);
            if (!parsed.is_discarded() && parsed.dump() == event.body) {
                out["payload"] = std::move(parsed);
            } else {
                out["payload"] = event.body;
            }
            done = true;
        }
        if (!done) {
            out["body_base64"] = util::base64_encode(event.body);
        }
        if (event.raw_mime) {
            out["raw_mime_base64"] = util::base64_encode(*event.raw_mime);
        }
    }
    return out;
}

Result<NewEvent> event_from_json(const json& object, std::int64_t now_ms) {
    if (!object.is_object()) {
        return fail(ExitCode::usage, "expected a JSON object with event_id and payload");
    }
    NewEvent e;
    auto id = object.find("event_id");
    if (id == object.end() || id->is_null()) {
        return field_error("event_id", "is missing (each event needs a unique id)");
    }
    if (id->is_string()) {
        e.event_id = id->get<std::string>();
    } else if (id->is_number_integer()) {
        e.event_id = id->dump();
    } else {
        return field_error("event_id", "must be a string");
    }
    if (e.event_id.empty()) {
        return field_error("event_id", "is empty");
    }

    auto body64 = object.find("body_base64");
    auto payload = object.find("payload");
    if (body64 != object.end() && !body64->is_null()) {
        if (!body64->is_string()) {
            return field_error("body_base64", "must be a base64 string");
        }
        auto bytes = util::base64_decode(body64->get<std::string>());
        if (!bytes) {
            return field_error("body_base64", "is not valid base64");
        }
        e.body = std::move(*bytes);
    } else if (payload != object.end()) {
        e.body = payload->is_string()
                     ? payload->get<std::string>()
                     : payload->dump(-1, ' ', false, json::error_handler_t::strict);
    } else {
        return field_error("payload", "is missing (the event body: a JSON value or a string)");
    }

    auto headers = object.find("headers");
    if (headers != object.end() && !headers->is_null()) {
        if (headers->is_array()) {
            for (const auto& pair : *headers) {
                if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() ||
                    !pair[1].is_string()) {
                    return field_error("headers", "must be [[name, value], ...] with strings");
                }
                e.headers.add(pair[0].get<std::string>(), pair[1].get<std::string>());
            }
        } else if (headers->is_object()) {
            for (const auto& [name, value] : headers->items()) {
                if (!value.is_string()) {
                    return field_error("headers", "must map names to string values");
                }
                e.headers.add(name, value.get<std::string>());
            }
        } else {
            return field_error("headers", "must be [[name, value], ...] or {name: value}");
        }
    }

    for (auto [field, target] : {std::pair{"org_id", &e.org_id}, std::pair{"scheme", &e.scheme},
                                 std::pair{"trace_id", &e.trace_id}, std::pair{"source", &e.source},
                                 std::pair{"verified_by", &e.verified_by}}) {
        auto value = optional_string(object, field);
        HOOKCTL_RETURN_IF_ERROR(value);
        *target = std::move(*value);
    }
    auto reason = optional_string(object, "reason");
    HOOKCTL_RETURN_IF_ERROR(reason);
    auto last_error = optional_string(object, "last_error", *reason);
    HOOKCTL_RETURN_IF_ERROR(last_error);
    e.last_error = std::move(*last_error);

    e.received_at_ms = now_ms;
    auto received = object.find("received_at");
    if (received != object.end() && !received->is_null()) {
        if (received->is_string()) {
            auto ms = util::parse_time_ms(received->get<std::string>());
            if (!ms) {
                return field_error("received_at", ms.error().message);
            }
            e.received_at_ms = *ms;
        } else if (received->is_number_integer()) {
            e.received_at_ms = received->get<std::int64_t>() * 1000;
        } else if (received->is_number_float()) {
            e.received_at_ms = std::llround(received->get<double>() * 1000.0);
        } else {
            return field_error("received_at", "must be RFC 3339 text or Unix seconds");
        }
    }

    auto status = optional_string(object, "status", "received");
    HOOKCTL_RETURN_IF_ERROR(status);
    auto parsed_status = parse_event_status(*status);
    if (!parsed_status) {
        return field_error("status", parsed_status.error().message);
    }
    e.status = *parsed_status;

    auto attempts = object.find("attempts");
    if (attempts != object.end() && !attempts->is_null()) {
        if (!attempts->is_number_integer() || attempts->get<std::int64_t>() < 0) {
            return field_error("attempts", "must be a non-negative integer");
        }
        e.attempts = attempts->get<std::int64_t>();
    }

    auto mime = object.find("raw_mime_base64");
    if (mime != object.end() && !mime->is_null()) {
        if (!mime->is_string()) {
            return field_error("raw_mime_base64", "must be a base64 string");
        }
        auto bytes = util::base64_decode(mime->get<std::string>());
        if (!bytes) {
            return field_error("raw_mime_base64", "is not valid base64");
        }
        e.raw_mime = std::move(*bytes);
    }
    return e;
}

Result<ImportSummary> import_ndjson(Store& archive, std::istream& in, std::string_view source_name,
                                    std::int64_t now_ms) {
    constexpr std::size_t k_batch = 512;
    ImportSummary summary;
    const bool own_transaction = !archive.in_transaction();
    if (own_transaction) {
        if (auto begun = archive.begin(); !begun) {
            return std::unexpected(begun.error());
        }
    }
    auto abort = [&](Error error) -> Result<ImportSummary> {
        if (own_transaction) {
            archive.rollback();
        }
        return std::unexpected(std::move(error));
    };
    std::vector<NewEvent> batch;
    auto flush = [&]() -> Result<void> {
        auto results = archive.insert_events(batch);
        HOOKCTL_RETURN_IF_ERROR(results);
        for (auto r : *results) {
            (r == InsertResult::inserted ? summary.inserted : summary.duplicates) += 1;
        }
        batch.clear();
        return {};
    };
    std::string line;
    std::uint64_t line_number = 0;
    while (std::getline(in, line)) {
        ++line_number;
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (util::trim(line).empty()) {
            continue;
        }
        ++summary.lines;
        auto where = std::string(source_name) + " line " + std::to_string(line_number);
        auto parsed = json::parse(line, nullptr, false);
        if (parsed.is_discarded()) {
            return abort(Error{ExitCode::usage, where + ": not valid JSON (one JSON object per "
                                                        "line); nothing was imported"});
        }
        auto event = event_from_json(parsed, now_ms);
        if (!event) {
            return abort(Error{ExitCode::usage,
                               where + ": " + event.error().message + "; nothing was imported"});
        }
        if (event->source.empty()) {
            event->source = "import";
        }
        batch.push_back(std::move(*event));
        if (batch.size() >= k_batch) {
            if (auto ok = flush(); !ok) {
                return abort(ok.error());
            }
        }
    }
    if (in.bad()) {
        return abort(Error{ExitCode::usage, std::string(source_name) + ": read error after line " +
                                                std::to_string(line_number) +
                                                "; nothing was imported"});
    }
    if (!batch.empty()) {
        if (auto ok = flush(); !ok) {
            return abort(ok.error());
        }
    }
    if (own_transaction) {
        if (auto committed = archive.commit(); !committed) {
            return std::unexpected(committed.error());
        }
    }
    return summary;
}

Result<std::uint64_t> export_ndjson(Store& archive, const EventFilter& filter, std::ostream& out,
                                    const Redactor* redactor) {
    bool write_failed = false;
    auto visited = archive.for_each_event(filter, [&](const Event& event) {
        json object = event_to_json(event, filter.with_body);
        if (redactor != nullptr) {
            redactor->redact_export(object);
        }
        out << object.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
        if (!out) {
            write_failed = true;
            return false;
        }
        return true;
    });
    HOOKCTL_RETURN_IF_ERROR(visited);
    out.flush();
    if (write_failed || !out) {
        return fail(ExitCode::environment, "cannot write the export (disk full or pipe closed)");
    }
    return *visited;
}

} // namespace hookctl::archive
