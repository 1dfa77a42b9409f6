#pragma once

// `hookctl events copy`: moves events (bodies and raw MIME included), runs, their items and
// delivery attempts from one archive to another (any backend to any backend), in batches, each
// batch one transaction on the destination; idempotent and so resumable (hookctl-events(1),
// COPY): what the destination holds already is left as it is and not copied again.

#include <cstdint>
#include <functional>
#include <string_view>

#include <hookctl/archive/archive.hpp>

namespace hookctl::archive {

// What one kind of row came to: `read` from the source = `copied` + `present` (already in the
// destination, left untouched).
struct CopyCount {
    std::uint64_t read = 0;
    std::uint64_t copied = 0;
    std::uint64_t present = 0;
};

// Where a copy stands.
struct CopyProgress {
    std::string_view stage;         // `events`, `runs`, `attempts` (the one being copied)
    std::uint64_t events_total = 0; // events in the source when the copy began
    CopyCount events;
    CopyCount runs;
    CopyCount run_items;
    CopyCount attempts;
    bool finished = false;
};

struct CopyOptions {
    std::size_t batch = 500; // rows per destination transaction
    // Called after each committed batch; false stops (a second copy resumes: it copies only
    // what is missing).
    std::function<bool(const CopyProgress&)> progress;
};

// Copies everything `from` holds into `to`: events first (in seq order, deduplicated on
// event_id by Store::insert_events, with their status, attempt count and updated_at kept), then
// each run (key: run_id, oldest first) with its items (key: run_id, item; an item of a run over
// the source archive gets the seq its event has in `to`), then the attempts (key: run_id,
// event_id, target, attempt, at_ms). `from` opens bodies with its keys, `to` seals them with
// its own (Store::prepare_body_writes is checked before anything is copied). Fails (exit 3)
// when `progress` stopped it, with what was copied so far in the message; else as the stores
// fail.
Result<CopyProgress> copy(Store& from, Store& to, const CopyOptions& options = {});

} // namespace hookctl::archive
