#include <atomic>
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
    CHECK(errors >= 3); // at most 10 per batch
    CHECK(store.ids.empty());
    // After close, submits fail at once.
    bool late = false;
    committer.submit(event("late"), [&](StoreResult r) { late = r == StoreResult::failed; });
    CHECK(late);
}
