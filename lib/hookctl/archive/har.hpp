#pragma once

// Stored requests in the formats other tools read and write: HAR 1.2 (browsers' devtools,
// Insomnia, Postman, ngrok's export) and a shell script of curl commands (gosmee's saved
// requests, vegeta's curl targets). See hookctl-events(1), FORMATS.
//
// HAR, as written: one entry per event. `request` is the stored request: POST, the url of the
// event's last delivery attempt when it went to a URL (else http://receiver.invalid/, since a
// receiver's archive does not record the path it was posted to), the headers as received,
// `postData` {mimeType, text} with the body's bytes (a body that is not UTF-8 is base64 in
// `text` with `"encoding": "base64"`, as HAR does for response content). `response` is the last
// delivery attempt when there is one (status, and the response excerpt kept as its detail),
// else status 0 with a comment. `_hookctl` carries event_id, org_id, scheme, status,
// received_at and trace_id.

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/archive/archive.hpp>
#include <hookctl/util/error.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::archive {

// The headers of a stored request worth sending again: all but the signature headers of every
// scheme (a new request is signed afresh), Idempotency-Key and traceparent (made again from the
// event), Content-Type (sent from the body's type), and what belongs to one connection (Host,
// Content-Length, Connection, Transfer-Encoding, Expect, ...).
util::HeaderList carried_headers(const util::HeaderList& stored);

// Writes the events `filter` selects as one HAR 1.2 document; returns how many.
Result<std::uint64_t> export_har(Store& archive, const EventFilter& filter, std::ostream& out);

// How the curl script names where it came from (its header comment).
struct ScriptOrigin {
    std::string archive;     // the archive path
    std::string exported_at; // RFC 3339
};

// Writes a POSIX shell script that POSTs each event `filter` selects with curl, one event after
// the other: `sh FILE URL`. Each request is signed when the script runs, by `hookctl sign` with
// the secret in the variable HOOK_SECRET (or the one HOOKCTL_SECRET_ENV names): the script holds
// no secret. Returns how many events it holds.
Result<std::uint64_t> export_curl(Store& archive, const EventFilter& filter, std::ostream& out,
                                  const ScriptOrigin& origin);

// One request of a HAR file, as hookctl sends it again.
struct HarRequest {
    int entry = 0; // 1-based position in log.entries
    std::string method;
    std::string url;
    util::HeaderList headers; // as the entry lists them
    std::string body;         // postData.text (base64-decoded when its encoding says so)
    std::string content_type; // postData.mimeType, else the Content-Type header, else JSON
    // _hookctl.event_id, else Idempotency-Key, webhook-id or svix-id, else the body's event_id;
    // empty when none says.
    std::string event_id;
    std::string org_id;          // _hookctl.org_id, else the body's org_id
    std::string trace_id;        // _hookctl.trace_id, else the body's trace_id
    std::int64_t started_ms = 0; // startedDateTime (0 when absent or unreadable)
};

// Reads the entries of the HAR document `text` (named `name` in errors) that carry a request
// body (postData), in file order. Fails (exit 2) when it is not HAR (no log.entries) or an
// entry's postData cannot be read.
Result<std::vector<HarRequest>> read_har(std::string_view text, const std::string& name);

// Entry `entry` (1-based, counting every entry of the file) of the HAR file at `path`. Fails
// (exit 2) when the file cannot be read, is not HAR, the entry does not exist (the message says
// how many there are) or has no request body.
Result<HarRequest> read_har_entry(const std::string& path, int entry);

} // namespace hookctl::archive
