#include <algorithm>

#include <hookctl/replay/recorder.hpp>
#include <hookctl/util/signals.hpp>

namespace hookctl::replay {

Recorder::Recorder(std::unique_ptr<archive::Store> archive, std::string run_id,
                   std::function<void()> wake, std::size_t batch,
                   std::chrono::milliseconds max_delay, std::optional<archive::WorkerLease> shared)
    : m_archive(std::move(archive))
    , m_run_id(std::move(run_id))
    , m_wake(std::move(wake))
    , m_batch(std::max<std::size_t>(1, batch))
    , m_max_delay(max_delay)
    , m_shared(std::move(shared)) {
    m_thread = std::thread([this] {
        util::block_stop_signals(); // SIGINT reaches the sending thread and wakes its poll
        run();
    });
}

Recorder::~Recorder() {
    (void)close();
}

bool Recorder::first_queued() {
    if (m_attempts.size() + m_verdicts.size() != 1) {
        return false;
    }
    m_first_queued = std::chrono::steady_clock::now();
    return true;
}

void Recorder::add(archive::Attempt attempt) {
    bool notify = false;
    {
        std::lock_guard lock(m_mutex);
        if (m_shared) {
            attempt.lease = m_shared->token;
        }
        bool settles = attempt.item_state.has_value() && attempt.item > 0;
        if (settles) {
            m_settling.push_back(attempt.item);
        }
        m_attempts.push_back(std::move(attempt));
        // The first entry starts the recorder's delay clock; a full batch commits at once.
        notify = first_queued() || (settles && m_settling.size() == m_batch);
    }
    if (notify) {
        m_changed.notify_one();
    }
}

void Recorder::settle(archive::ItemVerdict verdict) {
    bool notify = false;
    {
        std::lock_guard lock(m_mutex);
        if (m_shared) {
            verdict.lease = m_shared->token;
        }
        m_settling.push_back(verdict.item);
        m_verdicts.push_back(std::move(verdict));
        notify = first_queued() || m_settling.size() == m_batch;
    }
    if (notify) {
        m_changed.notify_one();
    }
}

void Recorder::update_run(const archive::RunProgress& progress, archive::RunState state) {
    {
        std::lock_guard lock(m_mutex);
        m_run_update = RunUpdate{progress, state};
    }
    m_changed.notify_one();
}

std::vector<std::int64_t> Recorder::take_committed() {
    std::lock_guard lock(m_mutex);
    return std::exchange(m_committed, {});
}

std::optional<Error> Recorder::error() const {
    std::lock_guard lock(m_mutex);
    return m_error;
}

Result<void> Recorder::close() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_changed.notify_one();
    if (m_thread.joinable()) {
        m_thread.join();
    }
    if (auto failed = error()) {
        return std::unexpected(*failed);
    }
    return {};
}

void Recorder::run() {
    std::vector<archive::Attempt> attempts;
    std::vector<archive::ItemVerdict> verdicts;
    std::vector<std::int64_t> settling;
    std::unique_lock lock(m_mutex);
    auto queued_any = [&] { return !m_attempts.empty() || !m_verdicts.empty(); };
    while (true) {
        m_changed.wait(lock, [&] { return m_stopping || queued_any() || m_run_update; });
        // Gather a batch: until enough items are settled, the delay has passed since the
        // first entry queued, or a run update or the end asks for a commit now.
        m_changed.wait_until(lock, m_first_queued + m_max_delay, [&] {
            return m_stopping || m_run_update.has_value() || m_settling.size() >= m_batch;
        });
        if (m_error || (!queued_any() && !m_run_update)) {
            break; // stopping, with nothing (more) to write
        }
        attempts.swap(m_attempts);
        verdicts.swap(m_verdicts);
        settling.swap(m_settling);
        auto run_update = std::exchange(m_run_update, std::nullopt);
        lock.unlock();

        // One transaction: the attempts, the verdicts and the ledger agree after a crash.
        auto written = m_archive->begin();
        if (written && !attempts.empty()) {
            written = m_archive->record_attempts(attempts);
        }
        if (written && !verdicts.empty()) {
            written = m_archive->settle_items(verdicts);
        }
        if (written && run_update) {
            if (m_shared) {
                auto updated =
                    m_archive->update_shared_run(m_run_id, *m_shared, run_update->state, {},
                                                 run_update->progress.paused_until_ms);
                written = updated ? Result<void>{} : std::unexpected(updated.error());
            } else {
                written = m_archive->update_run(m_run_id, run_update->progress, run_update->state);
            }
        }
        if (written) {
            written = m_archive->commit();
        } else {
            m_archive->rollback();
        }
        attempts.clear();
        verdicts.clear();

        lock.lock();
        if (!written) {
            m_error = written.error();
        } else {
            m_committed.insert(m_committed.end(), settling.begin(), settling.end());
        }
        settling.clear();
        lock.unlock();
        if (m_wake) {
            m_wake();
        }
        lock.lock();
    }
}

} // namespace hookctl::replay
