#pragma once

// The NDJSON exchange format of `hookctl events import` and `export` (hookctl-events(1),
// section NDJSON FORMAT): one JSON object per line.
//
//   event_id     string, required
//   payload      the body: a JSON value (stored as its compact text) or a string (stored as
//                its bytes); or body_base64 for bodies that are not UTF-8 text
//   headers      optional: [[name, value], ...] or {name: value, ...}
//   org_id, scheme, trace_id, source, last_error (alias: reason)   optional strings
//   received_at  optional: RFC 3339 text, or a number of Unix seconds (default: now)
//   status       optional: received|delivered|failed|dead (default: received)
//   attempts     optional integer (default 0)
//   raw_mime_base64  optional
//
// Export writes every field, `payload` as a JSON value when the body is exactly the compact
// text of a JSON value, as a string when it is other UTF-8 text, else `body_base64`; so
// import(export(x)) stores the same bytes.

#include <cstdint>
#include <istream>
#include <ostream>
#include <string_view>

#include <nlohmann/json.hpp>

#include <hookctl/archive/archive.hpp>
#include <hookctl/archive/redact.hpp>

namespace hookctl::archive {

// `event` as one export object (without payload/body_base64/raw_mime_base64 when
// `include_body` is false: the listing form).
nlohmann::ordered_json event_to_json(const Event& event, bool include_body = true);

// Reads one import object; fails (exit 2) saying which field is wrong. `now_ms` is the
// received_at of objects that have none.
Result<NewEvent> event_from_json(const nlohmann::ordered_json& object, std::int64_t now_ms);

struct ImportSummary {
    std::uint64_t lines = 0;      // non-blank lines read
    std::uint64_t inserted = 0;   // new events stored
    std::uint64_t duplicates = 0; // event ids already in the archive (left untouched)
};

// Imports every line of `in` in ONE transaction: on a bad line nothing is stored and the
// error (exit 2) names `source_name` and the line number. `now_ms` as in event_from_json.
Result<ImportSummary> import_ndjson(Store& archive, std::istream& in, std::string_view source_name,
                                    std::int64_t now_ms);

// Writes the events `filter` selects to `out`, one object per line; returns how many. With a
// `redactor`, each object is redacted first (Redactor::redact_export).
Result<std::uint64_t> export_ndjson(Store& archive, const EventFilter& filter, std::ostream& out,
                                    const Redactor* redactor = nullptr);

} // namespace hookctl::archive
