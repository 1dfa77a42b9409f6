#pragma once

#include <memory>
#include <string>

#include <hookctl/receive/committer.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::receive {

// The archive file at `path` (created when missing, WAL, synchronous=FULL) as the receiver's
// EventStore: each batch is one `insert_events` transaction. Fails (exit 4) when the file
// cannot be opened or created, is corrupt, read-only or from a newer hookctl.
Result<std::unique_ptr<EventStore>> open_archive_store(const std::string& path);

} // namespace hookctl::receive
