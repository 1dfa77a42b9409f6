#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <hookctl/archive/archive.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::replay {

// One event to deliver, from any source.
struct ReplayEvent {
    std::int64_t seq = 0; // archive: the event's seq; other sources: 1-based position
    std::string event_id;
    std::string org_id;
    std::int64_t received_at_ms = 0;
    std::string trace_id;
    std::string body; // the bytes to sign and send
};

enum class SourceKind {
    archive, // a hookctl archive (SQLite with hookctl's application id)
    query,   // --query SQL over any SQLite file
    mime,    // a .eml file, a directory of .eml files, a Maildir, or an mbox file
};

// Where events come from and which ones (replay --from and its filters).
struct SourceSpec {
    SourceKind kind = SourceKind::archive;
    std::string path;
    std::string query;           // kind query: the SQL
    archive::EventFilter filter; // kind archive (statuses default to failed + dead)
    bool reparse = false;        // kind archive: re-parse raw_mime with today's parser
    std::string org_id;          // kind mime: org_id of the parsed events
    bool ordered = false;        // visit in received_at order (archive: sorted; others: as read)

    // `archive FILE`, `query over FILE`, `mime FILE`: how summaries and runs name it.
    std::string describe() const;
};

// Picks the kind for `path`: query when `query` is set, archive for a SQLite file, mime for a
// directory or any other file. Fails (exit 2) when `path` cannot be read.
Result<SourceKind> detect_source_kind(const std::string& path, bool has_query);

// How many events `spec` selects. This is also the up-front check of the source: an
// unreadable file, an SQL error or a missing column fails here (exit 2), before anything is
// sent.
Result<std::uint64_t> count_events(const SourceSpec& spec);

// Calls `visit` for each selected event with seq > `after_seq`, in order, streaming (memory
// flat except `ordered` over an archive, which sorts the ids). `visit` returns false to stop.
using EventVisitor = std::function<Result<bool>(ReplayEvent&& event)>;
Result<void> for_each_event(const SourceSpec& spec, std::int64_t after_seq,
                            const EventVisitor& visit);

} // namespace hookctl::replay
