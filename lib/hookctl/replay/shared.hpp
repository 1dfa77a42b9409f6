#pragma once

// hookctl::replay::SharedRun: one worker's part of a run shared by several replay processes on
// any hosts (replay --join; hookctl-replay(1), WORKERS), over the run's PostgreSQL archive.
//
// As a Feed it claims small batches of the run's pending items under this worker's lease
// (FOR UPDATE SKIP LOCKED: two workers never claim the same item), renews the lease on a
// heartbeat, and once nothing is left to claim waits for the other workers (LISTEN/NOTIFY, with
// a slow poll as backstop) until no pending item is held by anyone else: a crashed worker's
// items come back when its lease expires and are claimed here. As a Crew it reserves blocks of
// send slots from the run's one schedule (the rate is the run's total), forwards a 429's pause
// to every worker and reports a run stopped by another worker's breaker.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <hookctl/archive/archive.hpp>
#include <hookctl/replay/crew.hpp>
#include <hookctl/replay/source.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::replay {

struct SharedRunOptions {
    std::string run_id;
    archive::WorkerLease lease;
    SourceSpec source;                      // of kind archive: the run's archive is the source
    util::Rate rate;                        // the run's total over its workers
    std::size_t claim_batch = 64;           // items claimed per round trip
    std::size_t max_queued = 256;           // claimed, not yet taken by the engine
    std::chrono::milliseconds block{50};    // slots reserved at a time: this much of the schedule
    std::chrono::milliseconds max_late{12}; // a slot missed by more is dropped
    std::chrono::milliseconds max_idle_wait{1000}; // the backstop poll while waiting for others
};

class SharedRun final : public Feed, public Crew {
public:
    // `claims` and `slots`: connections of their own to the run's archive, one per thread.
    // `wake` runs on those threads when events or slots arrive (thread-safe, e.g.
    // Sender::wakeup). The worker is registered and claims from the start.
    SharedRun(SharedRunOptions options, std::unique_ptr<archive::Store> claims,
              std::unique_ptr<archive::Store> slots, std::function<void()> wake);
    // Stops both threads (finish() should have been called).
    ~SharedRun() override;
    SharedRun(const SharedRun&) = delete;
    SharedRun& operator=(const SharedRun&) = delete;

    // Feed
    std::optional<ReplayEvent> try_pop(bool skip_if_busy = false) override;
    bool done() const override;
    std::optional<Error> error() const override;
    std::int64_t missing() const override;

    // Crew
    std::optional<Time> next_due() override;
    std::optional<Time> try_take(Time now) override;
    void pause(std::chrono::milliseconds pause) override;
    std::optional<std::string> halted() override;

    // After the engine ended as `state` (`reason` when not completed): stops claiming, gives back
    // the items this worker still holds (others claim them at once) and writes the run row as
    // Store::update_shared_run decides. Returns the run's state.
    Result<archive::RunState> finish(archive::RunState state, const std::string& reason);

private:
    void claim_loop();
    void slot_loop();
    void stop_threads();
    // With the mutex held: the first error (the engine ends the run for this worker).
    void failed(Error error);

    SharedRunOptions m_options;
    std::unique_ptr<archive::Store> m_claims;
    std::unique_ptr<archive::Store> m_slots_store;
    std::function<void()> m_wake;
    std::int64_t m_interval_ns = 0; // 0: the rate is max
    int m_block_count = 1;

    mutable std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<ReplayEvent> m_queue;
    bool m_finished = false; // nothing is left to claim for this worker
    bool m_cancelled = false;
    std::optional<Error> m_error;
    std::int64_t m_missing = 0;
    std::optional<std::string> m_halt;
    std::deque<Time> m_slots;
    bool m_want_slots = false;
    std::int64_t m_pause_ms = 0; // to forward to the run
    std::thread m_claimer;
    std::thread m_reserver;
};

} // namespace hookctl::replay
