#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <hookctl/archive/archive.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::replay {

// Where a replay writes what happened (ARCHITECTURE.md, "Seams"): attempts, settled run
// items and the run's ledger. The real one (Recorder) commits in batches on a thread of its
// own; unit tests keep it in memory and choose when it commits, to test what a crash loses.
class Journal {
public:
    virtual ~Journal() = default;

    // Queues an attempt; it settles its item when `attempt.item_state` is set.
    virtual void add(archive::Attempt attempt) = 0;
    // Queues the verdict on an item settled without a new attempt.
    virtual void settle(archive::ItemVerdict verdict) = 0;
    // Queues an update of the run row, written after what was queued before it.
    virtual void update_run(const archive::RunProgress& progress, archive::RunState state) = 0;
    // The items whose settling was committed since the last call; never blocks.
    virtual std::vector<std::int64_t> take_committed() = 0;
    // The first write failure; after it nothing more is written.
    virtual std::optional<Error> error() const = 0;
    // Writes everything queued. Fails with the first write failure.
    virtual Result<void> close() = 0;
};

} // namespace hookctl::replay
