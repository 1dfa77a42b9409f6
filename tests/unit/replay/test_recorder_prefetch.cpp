#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/archive/archive.hpp>
#include <hookctl/replay/recorder.hpp>
#include <hookctl/replay/source.hpp>

#include "../temp_dir.hpp"

namespace fs = std::filesystem;
using namespace hookctl;
using namespace std::chrono_literals;

namespace {

using testing::TempDir;

// An archive of `n` failed events evt_0..evt_{n-1}, each with a body of `body_size` bytes.
std::string make_archive(const TempDir& dir, int n, std::size_t body_size = 16) {
    auto path = dir.file("a.db");
    auto db = archive::Archive::open(path);
    REQUIRE(db);
    std::vector<archive::NewEvent> events;
    for (int i = 0; i < n; ++i) {
        archive::NewEvent e;
        e.event_id = "evt_" + std::to_string(i);
        e.received_at_ms = 1000 + i;
        e.body = std::string(body_size, 'x');
        e.status = archive::EventStatus::failed;
        events.push_back(std::move(e));
    }
    REQUIRE(db->insert_events(events));
    return path;
}

archive::Attempt attempt(const std::string& run_id, int i, const char* outcome) {
    archive::Attempt a;
    a.run_id = run_id;
    a.event_id = "evt_" + std::to_string(i);
    a.target = "http://127.0.0.1:9/";
    a.attempt = 1;
    a.at_ms = 5000 + i;
    a.http_status = 202;
    a.outcome = outcome;
    return a;
}

} // namespace

TEST_CASE("replay::Recorder commits in batches and reports finished events only once durable") {
    TempDir dir;
    auto path = make_archive(dir, 10);
    auto db = archive::Archive::open(path);
    REQUIRE(db);
    archive::NewRun new_run;
    new_run.kind = "replay";
    auto run = db->create_run(new_run);
    REQUIRE(run);
    std::atomic<int> wakes{0};
    // Batch of 4 finished events, or 1 s: the first three wait for the fourth.
    auto recorder = replay::Recorder::open(
        path, [&] { ++wakes; }, 4, 1000ms);
    REQUIRE(recorder);
    (*recorder)->add(attempt(run->run_id, 0, "retry"), 0);
    for (int i = 1; i <= 3; ++i) {
        (*recorder)->add(attempt(run->run_id, i, "delivered"), i);
    }
    std::this_thread::sleep_for(100ms);
    CHECK((*recorder)->take_committed().finished_seqs.empty());
    auto before = db->attempts_for("evt_1", run->run_id);
    REQUIRE(before);
    CHECK(before->empty()); // not committed yet
    (*recorder)->add(attempt(run->run_id, 4, "dead"), 4);
    std::vector<std::int64_t> seqs;
    for (int i = 0; i < 200 && seqs.size() < 4; ++i) {
        auto got = (*recorder)->take_committed().finished_seqs;
        seqs.insert(seqs.end(), got.begin(), got.end());
        std::this_thread::sleep_for(5ms);
    }
    CHECK(seqs == std::vector<std::int64_t>{1, 2, 3, 4}); // the retry finishes nothing
    CHECK(wakes.load() >= 1);
    auto after = db->attempts_for("evt_1", run->run_id);
    REQUIRE(after);
    REQUIRE(after->size() == 1);
    CHECK((*after)[0].outcome == "delivered");
    // close() writes what is queued without waiting for a batch, and the run update after it.
    (*recorder)->add(attempt(run->run_id, 5, "delivered"), 5);
    archive::RunProgress progress;
    progress.done = 5;
    (*recorder)->update_run(run->run_id, progress, archive::RunState::running);
    REQUIRE((*recorder)->close());
    CHECK((*recorder)->take_committed().finished_seqs == std::vector<std::int64_t>{5});
    auto stored = db->get_run(run->run_id);
    REQUIRE(stored);
    REQUIRE(stored->has_value());
    CHECK((**stored).progress.done == 5);
}

TEST_CASE("replay::Recorder reports a failed write and stops") {
    TempDir dir;
    auto path = make_archive(dir, 1);
    auto recorder = replay::Recorder::open(path, {}, 1, 1ms);
    REQUIRE(recorder);
    // A run id that does not exist: update_run fails, like a disk error would.
    (*recorder)->update_run("run_missing", {}, archive::RunState::running);
    for (int i = 0; i < 200 && !(*recorder)->error(); ++i) {
        std::this_thread::sleep_for(5ms);
    }
    REQUIRE((*recorder)->error());
    CHECK((*recorder)->error()->message.find("run_missing") != std::string::npos);
    CHECK_FALSE((*recorder)->close());
}

TEST_CASE("replay::Prefetch reads ahead in order, bounded, and stops when dropped") {
    TempDir dir;
    auto path = make_archive(dir, 300);
    replay::SourceSpec spec;
    spec.kind = replay::SourceKind::archive;
    spec.path = path;
    spec.filter.statuses = {archive::EventStatus::failed};
    {
        std::atomic<int> wakes{0};
        replay::Prefetch source(spec, 0, 8, std::size_t{64} << 20, [&] { ++wakes; });
        std::vector<std::string> ids;
        for (int i = 0; i < 2000 && !source.done(); ++i) {
            while (auto e = source.try_pop()) {
                ids.push_back(e->event_id);
            }
            std::this_thread::sleep_for(1ms);
        }
        REQUIRE(source.done());
        CHECK_FALSE(source.error());
        REQUIRE(ids.size() == 300);
        for (int i = 0; i < 300; ++i) {
            REQUIRE(ids[static_cast<std::size_t>(i)] == "evt_" + std::to_string(i));
        }
        CHECK(wakes.load() >= 1);
    }
    {
        // Nothing taken: the reader fills its 8 slots and waits; dropping it must not hang.
        replay::Prefetch source(spec, 0, 8, std::size_t{64} << 20, {});
        std::this_thread::sleep_for(50ms);
        CHECK_FALSE(source.done());
        auto first = source.try_pop();
        REQUIRE(first);
        CHECK(first->event_id == "evt_0");
    }
    {
        // After seq 290 only ten are left.
        replay::Prefetch source(spec, 290, 64, std::size_t{64} << 20, {});
        int n = 0;
        for (int i = 0; i < 2000 && !source.done(); ++i) {
            while (source.try_pop()) {
                ++n;
            }
            std::this_thread::sleep_for(1ms);
        }
        CHECK(n == 10);
    }
}

TEST_CASE("replay::Prefetch passes on the source's failure once what it read is taken") {
    TempDir dir;
    make_archive(dir, 3);
    replay::SourceSpec spec;
    spec.kind = replay::SourceKind::query;
    spec.path = dir.file("a.db");
    spec.query = "SELECT no_such_column FROM events";
    replay::Prefetch source(spec, 0, 8, std::size_t{64} << 20, {});
    for (int i = 0; i < 2000 && !source.done(); ++i) {
        std::this_thread::sleep_for(1ms);
    }
    REQUIRE(source.done());
    REQUIRE(source.error());
    CHECK(source.error()->message.find("no_such_column") != std::string::npos);
}
