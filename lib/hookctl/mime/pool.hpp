#pragma once

// Parsing many messages on several threads with the results handed back in input order
// (`hookctl parse` of a folder, a Maildir or an mbox).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace hookctl::mime {

// Runs `work(raw, label)` for each submitted message on `threads` worker threads and hands the
// results to the caller in submission order. At most `window` messages (and about
// `window_bytes` of them) are held between submission and hand-back, so memory stays bounded
// whatever the input's size, and one big message does not leave the other threads idle.
// `Outcome` is whatever `work` makes of a message (hookctl parse: a rendered line).
template <class Outcome> class OrderedPool {
public:
    using Work = std::function<Outcome(const std::string& raw, const std::string& label)>;

    OrderedPool(int threads, Work work, std::size_t window, std::size_t window_bytes = 64 << 20)
        : m_work(std::move(work))
        , m_window(window == 0 ? 1 : window)
        , m_window_bytes_max(window_bytes) {
        for (int i = 0; i < (threads < 1 ? 1 : threads); ++i) {
            m_workers.emplace_back([this] { run(); });
        }
    }
    // Waits for the messages in progress; results not handed back are dropped.
    ~OrderedPool() {
        {
            std::lock_guard lock(m_mutex);
            m_closing = true;
            m_jobs.clear();
        }
        m_changed.notify_all();
        for (auto& w : m_workers) {
            w.join();
        }
    }
    OrderedPool(const OrderedPool&) = delete;
    OrderedPool& operator=(const OrderedPool&) = delete;

    // Queues a message; while the window is full, first hands `ready(Outcome&&)` the results
    // due in order (on the calling thread).
    template <class Ready> void submit(std::string raw, std::string label, Ready&& ready) {
        std::unique_lock lock(m_mutex);
        while (m_next_in > m_next_out &&
               (m_next_in - m_next_out >= m_window || m_bytes >= m_window_bytes_max)) {
            hand_back_one(lock, ready);
        }
        m_bytes += raw.size();
        m_jobs.push_back({m_next_in++, std::move(raw), std::move(label)});
        lock.unlock();
        m_changed.notify_all();
    }

    // Hands `ready` every result still to come, in order.
    template <class Ready> void finish(Ready&& ready) {
        std::unique_lock lock(m_mutex);
        while (m_next_out < m_next_in) {
            hand_back_one(lock, ready);
        }
    }

private:
    struct Job {
        std::size_t index;
        std::string raw;
        std::string label;
    };
    struct Done {
        std::size_t raw_size; // counted in the window until handed back
        Outcome outcome;
    };

    template <class Ready> void hand_back_one(std::unique_lock<std::mutex>& lock, Ready& ready) {
        m_changed.wait(lock, [&] { return m_done.contains(m_next_out); });
        auto node = m_done.extract(m_next_out++);
        m_bytes -= node.mapped().raw_size;
        lock.unlock();
        ready(std::move(node.mapped().outcome));
        lock.lock();
    }

    void run() {
        std::unique_lock lock(m_mutex);
        while (true) {
            m_changed.wait(lock, [&] { return m_closing || !m_jobs.empty(); });
            if (m_jobs.empty()) {
                return;
            }
            Job job = std::move(m_jobs.front());
            m_jobs.pop_front();
            lock.unlock();
            Done done{job.raw.size(), m_work(job.raw, job.label)};
            lock.lock();
            m_done.emplace(job.index, std::move(done));
            m_changed.notify_all();
        }
    }

    Work m_work;
    std::size_t m_window;           // messages between submission and hand-back, at most
    std::size_t m_window_bytes_max; // and about this many bytes of them
    std::size_t m_bytes = 0;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<Job> m_jobs;
    std::map<std::size_t, Done> m_done;
    std::size_t m_next_in = 0;
    std::size_t m_next_out = 0;
    bool m_closing = false;
    std::vector<std::thread> m_workers;
};

} // namespace hookctl::mime
