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
#include <hookctl/util/error.hpp>

namespace hookctl::replay {

// Records a run's attempts and progress on a thread of its own, with its own connection to
// the archive, so a slow commit or a WAL checkpoint never delays a paced send. Whatever was
// queued since the last commit goes in one transaction (group commit). The sender learns
// which events are durably finished from committed(): until then it counts them as in flight,
// which is what bounds the re-sends after a crash to the concurrency.
class Recorder {
public:
    // Opens `path` (an existing archive) for writing; `wake` runs on the recorder's thread after
    // each commit (it must be thread-safe, e.g. http::Client::wakeup). A commit happens when
    // `batch` events wait to be finished, or `max_delay` after the first attempt queued, or for
    // a run update: fewer, larger transactions than one per attempt.
    static Result<std::unique_ptr<Recorder>> open(const std::string& path,
                                                  std::function<void()> wake, std::size_t batch,
                                                  std::chrono::milliseconds max_delay);
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    // Queues an attempt. `finished_seq` is the event's seq when this attempt finishes it
    // (delivered or dead), else 0.
    void add(archive::Attempt attempt, std::int64_t finished_seq);

    // Queues an update of the run row, written after the attempts queued before it. Only the
    // latest update waiting is kept.
    void update_run(std::string run_id, const archive::RunProgress& progress,
                    archive::RunState state);

    struct Committed {
        std::vector<std::int64_t> finished_seqs; // events whose last attempt is now durable
    };
    // What was committed since the last call; never blocks.
    Committed take_committed();

    // The first write failure; after it nothing more is written.
    std::optional<Error> error() const;

    // Writes everything queued and stops the thread. Fails with the first write failure.
    Result<void> close();

private:
    Recorder(archive::Archive archive, std::function<void()> wake, std::size_t batch,
             std::chrono::milliseconds max_delay);
    void run();

    struct RunUpdate {
        std::string run_id;
        archive::RunProgress progress;
        archive::RunState state;
    };

    archive::Archive m_archive;
    std::function<void()> m_wake;
    std::size_t m_batch;
    std::chrono::milliseconds m_max_delay;
    std::chrono::steady_clock::time_point m_first_queued{};
    mutable std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<archive::Attempt> m_queue;
    std::vector<std::int64_t> m_queued_seqs;
    std::optional<RunUpdate> m_run_update;
    Committed m_committed;
    std::optional<Error> m_error;
    bool m_stopping = false;
    std::thread m_thread;
};

} // namespace hookctl::replay
