#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <hookctl/archive/archive.hpp>
#include <hookctl/replay/journal.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::replay {

// The Journal of a real run: records attempts, settled items and the run row on a thread of
// its own, with its own connection to the archive, so a slow commit or a WAL checkpoint never
// delays a paced send. Whatever was queued since the last commit goes in one transaction
// (group commit). The engine learns which items are durably settled from take_committed():
// until then it counts them as in flight, which is what bounds the re-sends after a crash to
// the concurrency.
class Recorder final : public Journal {
public:
    // Records run `run_id` through `archive` (a connection of its own, moved to the recorder's
    // thread); `wake` runs on that thread after each commit (it must be thread-safe, e.g.
    // Sender::wakeup). A commit happens when `batch` items wait to be settled, or `max_delay` after
    // the first entry queued, or for a run update: fewer, larger transactions than one per attempt.
    //
    // `shared`: the run is shared by workers and this one holds its items under that lease:
    // attempts and verdicts carry its token (a stale one's outcome is ignored) and run updates
    // go through Store::update_shared_run (the ledger counted over every worker).
    Recorder(std::unique_ptr<archive::Store> archive, std::string run_id,
             std::function<void()> wake, std::size_t batch, std::chrono::milliseconds max_delay,
             std::optional<archive::WorkerLease> shared = std::nullopt);
    ~Recorder() override;
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    void add(archive::Attempt attempt) override;
    void settle(archive::ItemVerdict verdict) override;
    void update_run(const archive::RunProgress& progress, archive::RunState state) override;
    std::vector<std::int64_t> take_committed() override;
    std::optional<Error> error() const override;
    Result<void> close() override;

private:
    void run();
    // With the mutex held, after queueing: true for the first entry queued, which starts the
    // delay clock (the recorder's thread must be woken to start waiting on it).
    bool first_queued();

    struct RunUpdate {
        archive::RunProgress progress;
        archive::RunState state;
    };

    std::unique_ptr<archive::Store> m_archive;
    std::string m_run_id;
    std::function<void()> m_wake;
    std::size_t m_batch;
    std::chrono::milliseconds m_max_delay;
    std::optional<archive::WorkerLease> m_shared;
    std::chrono::steady_clock::time_point m_first_queued{};
    mutable std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<archive::Attempt> m_attempts;
    std::vector<archive::ItemVerdict> m_verdicts;
    std::vector<std::int64_t> m_settling; // items the queued entries settle
    std::optional<RunUpdate> m_run_update;
    std::vector<std::int64_t> m_committed;
    std::optional<Error> m_error;
    bool m_stopping = false;
    std::thread m_thread;
};

} // namespace hookctl::replay
