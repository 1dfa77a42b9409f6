#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <hookctl/archive/archive.hpp>
#include <hookctl/receive/committer.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::receive {

// How long a batch waits for another process's lock on the archive before its events get 503:
// short, so senders hear within about a second, and the next batch tries again at once.
inline constexpr std::chrono::milliseconds k_archive_lock_wait{1000};

// How the receiver opens its archive (created when missing, WAL): waiting at most `lock_wait`
// for another process's lock; `synchronous_full`: every commit is fsynced (an event answered
// 202 survives power loss); false: SQLite's synchronous=NORMAL in WAL mode (it survives the
// process being killed, not power loss, and commits cost no fsync). `cipher`: the archive keys
// (hookctl-events(1), ENCRYPTION); bodies are then stored encrypted.
archive::OpenOptions
archive_store_options(bool synchronous_full = true,
                      std::chrono::milliseconds lock_wait = k_archive_lock_wait,
                      std::shared_ptr<const archive::BodyCipher> cipher = nullptr);

// The archive `store` (opened with archive_store_options) as the receiver's EventStore: each
// batch is one `insert_events` transaction. After a failed write it checkpoints, so a disk that
// was full has the WAL's space back as soon as it has room again. Fails (exit 4) before anything
// is received when the bodies could not be stored: an encrypted archive and no key or a wrong
// one, or a key for an archive that holds bodies in clear.
Result<std::unique_ptr<EventStore>> archive_event_store(std::unique_ptr<archive::Store> store);

// Opens the archive file at `path` with archive_store_options and makes it the receiver's
// EventStore (archive_event_store). Fails (exit 4) when the file cannot be opened or created,
// is corrupt, read-only or from a newer hookctl, or its bodies could not be stored.
Result<std::unique_ptr<EventStore>>
open_archive_store(const std::string& path, bool synchronous_full = true,
                   std::chrono::milliseconds lock_wait = k_archive_lock_wait,
                   std::shared_ptr<const archive::BodyCipher> cipher = nullptr);

} // namespace hookctl::receive
