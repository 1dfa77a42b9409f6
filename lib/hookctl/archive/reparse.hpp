#pragma once

// `hookctl events reparse`: each stored raw MIME parsed again with today's parser and compared
// with the event JSON stored from it, field by field (hookctl::mime::compare_events); with
// `write`, the new parse stored beside the old as the event's next version (Store::
// add_reparses), never in its place (hookctl-events(1), REPARSE).

#include <cstdint>
#include <functional>
#include <string>

#include <hookctl/archive/archive.hpp>
#include <hookctl/mime/compare.hpp>

namespace hookctl::archive {

struct ReparseOptions {
    EventFilter filter;            // which events (bodies are read whatever with_body says)
    bool write = false;            // store each new parse that differs as a new version
    std::string parser;            // recorded with each stored version, e.g. `hookctl 0.1.0`
    std::size_t keep_diffs = 1000; // divergent events that keep their diffs in the tally
    std::size_t page = 256;        // events read (and re-parses written) per page
    // Called after each page with the events examined so far; false stops early.
    std::function<bool(std::uint64_t examined)> progress;
};

struct ReparseResult {
    mime::DivergenceTally tally;
    std::uint64_t examined = 0; // events the filter selected and that were read
    std::uint64_t written = 0;  // new versions stored (with `write`)
    bool stopped = false;       // progress asked to stop before the end
};

// Re-parses the events `options.filter` selects. An event without raw MIME, or whose stored
// body is not a JSON object, is skipped and counted by reason. With `write`, a new parse is
// stored when it differs from the stored body in anything the message decides (fields set
// from outside it, org_id, received_at, trace_id and raw_mime's storage key, are left out)
// and from the event's latest stored version. Fails (exit 4) when a body cannot be read (an
// encrypted archive without its key) or stored; (exit 2/4) as parse_message fails.
Result<ReparseResult> reparse_events(Store& archive, const ReparseOptions& options);

} // namespace hookctl::archive
