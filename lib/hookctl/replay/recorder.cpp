#include <algorithm>

#include <hookctl/replay/recorder.hpp>
#include <hookctl/util/signals.hpp>

namespace hookctl::replay {

Result<std::unique_ptr<Recorder>> Recorder::open(const std::string& path,
                                                 std::function<void()> wake, std::size_t batch,
                                                 std::chrono::milliseconds max_delay) {
    archive::OpenOptions options;
    options.mode = archive::Mode::read_write;
    options.synchronous_full = false; // survives a crash (kill -9), like the rest of a run
    auto opened = archive::Archive::open(path, options);
    if (!opened) {
        return std::unexpected(opened.error());
    }
    return std::unique_ptr<Recorder>(
        new Recorder(std::move(*opened), std::move(wake), batch, max_delay));
}

Recorder::Recorder(archive::Archive archive, std::function<void()> wake, std::size_t batch,
                   std::chrono::milliseconds max_delay)
    : m_archive(std::move(archive))
    , m_wake(std::move(wake))
    , m_batch(std::max<std::size_t>(1, batch))
    , m_max_delay(max_delay) {
    m_thread = std::thread([this] {
        util::block_stop_signals(); // SIGINT reaches the sending thread and wakes its poll
        run();
    });
}

Recorder::~Recorder() {
    (void)close();
}

void Recorder::add(archive::Attempt attempt, std::int64_t finished_seq) {
    bool notify = false;
    {
        std::lock_guard lock(m_mutex);
        if (m_queue.empty()) {
            m_first_queued = std::chrono::steady_clock::now();
            notify = true; // the recorder starts its max_delay clock
        }
        m_queue.push_back(std::move(attempt));
        if (finished_seq > 0) {
            m_queued_seqs.push_back(finished_seq);
            notify = notify || m_queued_seqs.size() == m_batch;
        }
    }
    if (notify) {
        m_changed.notify_one();
    }
}

void Recorder::update_run(std::string run_id, const archive::RunProgress& progress,
                          archive::RunState state) {
    {
        std::lock_guard lock(m_mutex);
        m_run_update = RunUpdate{std::move(run_id), progress, state};
    }
    m_changed.notify_one();
}

Recorder::Committed Recorder::take_committed() {
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
    std::vector<archive::Attempt> batch;
    std::vector<std::int64_t> seqs;
    std::unique_lock lock(m_mutex);
    while (true) {
        m_changed.wait(lock,
                       [&] { return m_stopping || !m_queue.empty() || m_run_update.has_value(); });
        // Gather a batch: until enough events are finished, the delay has passed since the
        // first attempt queued, or a run update or the end asks for a commit now.
        m_changed.wait_until(lock, m_first_queued + m_max_delay, [&] {
            return m_stopping || m_run_update.has_value() || m_queued_seqs.size() >= m_batch;
        });
        if (m_error || (m_queue.empty() && !m_run_update)) {
            break; // stopping, with nothing (more) to write
        }
        batch.swap(m_queue);
        seqs.swap(m_queued_seqs);
        auto run_update = std::exchange(m_run_update, std::nullopt);
        lock.unlock();

        Result<void> written = batch.empty() ? Result<void>{} : m_archive.record_attempts(batch);
        if (written && run_update) {
            written =
                m_archive.update_run(run_update->run_id, run_update->progress, run_update->state);
        }
        batch.clear();

        lock.lock();
        if (!written) {
            m_error = written.error();
        } else {
            m_committed.finished_seqs.insert(m_committed.finished_seqs.end(), seqs.begin(),
                                             seqs.end());
        }
        seqs.clear();
        lock.unlock();
        if (m_wake) {
            m_wake();
        }
        lock.lock();
    }
}

} // namespace hookctl::replay
