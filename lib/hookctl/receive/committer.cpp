#include <iterator>

#include <hookctl/receive/committer.hpp>
#include <hookctl/util/signals.hpp>

namespace hookctl::receive {

GroupCommitter::GroupCommitter(EventStore& store, std::size_t max_batch, BatchObserver observer,
                               std::chrono::milliseconds probe_every)
    : m_store(store)
    , m_max_batch(max_batch == 0 ? 1 : max_batch)
    , m_observer(std::move(observer))
    , m_probe_every(probe_every)
    , m_writer([this] {
        util::block_stop_signals();
        run();
    }) {}

GroupCommitter::~GroupCommitter() {
    close();
}

void GroupCommitter::close() {
    {
        std::lock_guard lock(m_mutex);
        m_closing = true;
    }
    m_wake.notify_all();
    if (m_writer.joinable()) {
        m_writer.join();
    }
}

std::uint64_t GroupCommitter::batches() const {
    std::lock_guard lock(m_mutex);
    return m_batches;
}

bool GroupCommitter::healthy(std::string* why) const {
    std::lock_guard lock(m_mutex);
    if (why != nullptr) {
        *why = m_health_error;
    }
    return m_healthy;
}

void GroupCommitter::submit(IncomingEvent event, Done done) {
    {
        std::lock_guard lock(m_mutex);
        if (!m_closing) {
            m_queue.push_back({std::move(event), std::move(done)});
            m_wake.notify_one();
            return;
        }
    }
    done(StoreResult::failed);
}

void GroupCommitter::run() {
    std::vector<Pending> batch;
    std::vector<IncomingEvent> events;
    for (;;) {
        {
            std::unique_lock lock(m_mutex);
            if (!m_wake.wait_for(lock, m_probe_every,
                                 [this] { return m_closing || !m_queue.empty(); })) {
                // Idle: is the store still (or again) reachable?
                lock.unlock();
                Result<void> checked;
                try {
                    checked = m_store.check();
                } catch (const std::exception& e) {
                    checked = fail(ExitCode::environment, e.what());
                }
                lock.lock();
                m_healthy = checked.has_value();
                m_health_error = checked ? std::string() : checked.error().message;
                continue;
            }
            if (m_queue.empty()) {
                return; // closing and drained
            }
            std::size_t n = std::min(m_queue.size(), m_max_batch);
            batch.assign(std::make_move_iterator(m_queue.begin()),
                         std::make_move_iterator(m_queue.begin() + static_cast<long>(n)));
            m_queue.erase(m_queue.begin(), m_queue.begin() + static_cast<long>(n));
        }
        events.clear();
        events.reserve(batch.size());
        for (auto& p : batch) {
            events.push_back(std::move(p.event));
        }
        Result<std::vector<StoreResult>> results = fail(ExitCode::environment, "not stored");
        try {
            results = m_store.insert_batch(events);
        } catch (const std::exception& e) {
            results = fail(ExitCode::environment, std::string("archive write failed: ") + e.what());
        }
        if (results && results->size() != batch.size()) {
            results = fail(ExitCode::environment, "archive returned a result count that does not "
                                                  "match the batch");
        }
        {
            std::lock_guard lock(m_mutex);
            ++m_batches;
            m_healthy = results.has_value();
            m_health_error = results ? std::string() : results.error().message;
        }
        if (m_observer) {
            m_observer(batch.size(), results ? nullptr : &results.error());
        }
        if (!results) {
            // Events queued while this batch failed waited for the same archive: they fail now
            // instead of waiting as long again. The next event submitted tries afresh.
            std::lock_guard lock(m_mutex);
            std::move(m_queue.begin(), m_queue.end(), std::back_inserter(batch));
            m_queue.clear();
        }
        for (std::size_t i = 0; i < batch.size(); ++i) {
            batch[i].done(results && i < results->size() ? (*results)[i] : StoreResult::failed);
        }
        batch.clear();
    }
}

} // namespace hookctl::receive
