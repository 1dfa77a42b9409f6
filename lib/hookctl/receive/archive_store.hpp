#pragma once

#include <memory>
#include <string>

#include <hookctl/receive/committer.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::receive {

// The archive file at `path` (created when missing, WAL) as the receiver's EventStore: each
// batch is one `insert_events` transaction. `synchronous_full`: every commit is fsynced (an
// event answered 202 survives power loss); false: SQLite's synchronous=NORMAL in WAL mode (it
// survives the process being killed, not power loss, and commits cost no fsync). Fails (exit 4)
// when the file cannot be opened or created, is corrupt, read-only or from a newer hookctl.
Result<std::unique_ptr<EventStore>> open_archive_store(const std::string& path,
                                                       bool synchronous_full = true);

} // namespace hookctl::receive
