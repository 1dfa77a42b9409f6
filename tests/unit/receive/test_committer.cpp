#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include <hookctl/receive/committer.hpp>

using namespace hookctl;
using namespace hookctl::receive;

namespace {

// A fake archive: remembers ids; fails every batch while `broken`.
class MemoryStore final : public EventStore {
public:
    Result<std::vector<StoreResult>> insert_batch(std::vector<IncomingEvent>& events) override {
        ++batches;
        if (broken) {
            return fail(ExitCode::environment, "disk full");
        }
        std::vector<StoreResult> out;
        for (auto& e : events) {
            out.push_back(ids.insert(e.event_id).second ? StoreResult::inserted
                                                        : StoreResult::duplicate);
        }
        return out;
    }
    std::set<std::string> ids;
    std::atomic<int> batches{0};
    std::atomic<bool> broken{false};
};

IncomingEvent event(std::string id) {
    IncomingEvent e;
    e.event_id = std::move(id);
    e.body = "{}";
    return e;
}

} // namespace

TEST_CASE("receive::GroupCommitter batches concurrent submits and reports duplicates") {
    MemoryStore store;
    std::atomic<int> inserted{0};
    std::atomic<int> duplicates{0};
    std::atomic<std::size_t> largest{0};
    {
        GroupCommitter committer(store, 1000, [&](std::size_t size, const Error*) {
            if (size > largest) {
                largest = size;
            }
        });
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < 500; ++i) {
                    // Threads 0 and 1 send the same ids: half of theirs are duplicates.
                    committer.submit(event("e" + std::to_string(t / 2) + "-" + std::to_string(i)),
                                     [&](StoreResult r) {
                                         (r == StoreResult::inserted ? inserted : duplicates)++;
                                     });
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        committer.close();
    }
    CHECK(inserted == 1000);
    CHECK(duplicates == 1000);
    CHECK(store.ids.size() == 1000);
    CHECK(store.batches < 2000); // group commit: fewer transactions than events
}

TEST_CASE("receive::GroupCommitter reports failed for every event of a failing batch") {
    MemoryStore store;
    store.broken = true;
    std::atomic<int> failed{0};
    std::atomic<int> errors{0};
    GroupCommitter committer(store, 10,
                             [&](std::size_t, const Error* e) { errors += e != nullptr ? 1 : 0; });
    for (int i = 0; i < 25; ++i) {
        committer.submit(event("x" + std::to_string(i)),
                         [&](StoreResult r) { failed += r == StoreResult::failed ? 1 : 0; });
    }
    committer.close();
    CHECK(failed == 25);
    CHECK(errors >= 1);
    CHECK(store.ids.empty());
    // After close, submits fail at once.
    bool late = false;
    committer.submit(event("late"), [&](StoreResult r) { late = r == StoreResult::failed; });
    CHECK(late);
}

namespace {

// A fake archive whose first batch blocks until the test lets it go, failing or not: stands for
// another process holding the archive's lock.
class GatedStore final : public EventStore {
public:
    Result<std::vector<StoreResult>> insert_batch(std::vector<IncomingEvent>& events) override {
        std::unique_lock lock(m_mutex);
        ++m_batches;
        m_sizes.push_back(events.size());
        m_entered.notify_all();
        m_release.wait(lock, [this] { return m_open; });
        if (m_fail) {
            m_fail = false;
            return fail(ExitCode::environment, "database is locked");
        }
        return std::vector<StoreResult>(events.size(), StoreResult::inserted);
    }
    void wait_for_batches(int n) {
        std::unique_lock lock(m_mutex);
        m_entered.wait(lock, [&] { return m_batches >= n; });
    }
    void release() {
        std::lock_guard lock(m_mutex);
        m_open = true;
        m_release.notify_all();
    }
    std::vector<std::size_t> sizes() {
        std::lock_guard lock(m_mutex);
        return m_sizes;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_entered;
    std::condition_variable m_release;
    int m_batches = 0;
    std::vector<std::size_t> m_sizes;
    bool m_open = false;
    bool m_fail = true;
};

} // namespace

TEST_CASE("receive::GroupCommitter fails the events queued behind a failing batch at once") {
    GatedStore store;
    std::mutex mutex;
    std::condition_variable answered;
    std::map<std::string, StoreResult> results;
    auto record = [&](std::string id) {
        return [&, id](StoreResult r) {
            std::lock_guard lock(mutex);
            results.emplace(id, r);
            answered.notify_all();
        };
    };
    GroupCommitter committer(store, 100);
    committer.submit(event("a"), record("a"));
    store.wait_for_batches(1); // "a" is waiting for the lock
    committer.submit(event("b"), record("b"));
    committer.submit(event("c"), record("c"));
    store.release(); // the lock wait ends in failure
    {
        std::unique_lock lock(mutex);
        answered.wait(lock, [&] { return results.size() == 3; });
    }
    CHECK(results.at("a") == StoreResult::failed);
    // Queued while "a" was tried: failed with it, not tried again (one more lock wait each).
    CHECK(results.at("b") == StoreResult::failed);
    CHECK(results.at("c") == StoreResult::failed);
    // Submitted after the failure: tried afresh, and stored.
    committer.submit(event("d"), record("d"));
    committer.close();
    CHECK(results.at("d") == StoreResult::inserted);
    CHECK(store.sizes() == std::vector<std::size_t>{1, 1});
}

namespace {

// A store whose reachability the test switches; counts the checks made while idle.
class ReachableStore final : public EventStore {
public:
    Result<std::vector<StoreResult>> insert_batch(std::vector<IncomingEvent>& events) override {
        if (!reachable) {
            return fail(ExitCode::environment, "archive db: lost PostgreSQL");
        }
        return std::vector<StoreResult>(events.size(), StoreResult::inserted);
    }
    Result<void> check() override {
        ++checks;
        if (!reachable) {
            return fail(ExitCode::environment, "archive db: cannot connect");
        }
        return {};
    }
    std::atomic<bool> reachable{true};
    std::atomic<int> checks{0};
};

// Waits (bounded) until `condition` holds; the test then asserts it.
template <class F> bool eventually(F&& condition) {
    for (int i = 0; i < 500 && !condition(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return condition();
}

} // namespace

TEST_CASE("receive::GroupCommitter's health follows failed writes and idle checks of the store") {
    ReachableStore store;
    GroupCommitter committer(store, 16, {}, std::chrono::milliseconds(20));
    CHECK(committer.healthy());

    // A failed batch makes it unhealthy at once, saying why.
    store.reachable = false;
    std::promise<StoreResult> first;
    committer.submit(event("a"), [&](StoreResult r) { first.set_value(r); });
    CHECK(first.get_future().get() == StoreResult::failed);
    std::string why;
    CHECK_FALSE(committer.healthy(&why));
    CHECK(why.find("PostgreSQL") != std::string::npos);

    // Without any traffic, the idle check sees the store come back.
    store.reachable = true;
    CHECK(eventually([&] { return committer.healthy(); }));
    CHECK(store.checks.load() > 0);

    // And go away again, still without traffic.
    store.reachable = false;
    CHECK(eventually([&] { return !committer.healthy(); }));
    committer.healthy(&why);
    CHECK(why.find("cannot connect") != std::string::npos);

    // A successful batch makes it healthy.
    store.reachable = true;
    std::promise<StoreResult> second;
    committer.submit(event("b"), [&](StoreResult r) { second.set_value(r); });
    CHECK(second.get_future().get() == StoreResult::inserted);
    CHECK(committer.healthy());
}
