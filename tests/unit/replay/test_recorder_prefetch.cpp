#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>
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
    auto db = archive::open(path);
    REQUIRE(db);
    std::vector<archive::NewEvent> events;
    for (int i = 0; i < n; ++i) {
        archive::NewEvent e;
        e.event_id = "evt_" + std::to_string(i);
        e.received_at_ms = 1000 + (n - i); // received in the reverse of storage order
        e.org_id = "org_" + std::to_string(i % 2);
        e.body = std::string(body_size, 'x');
        e.status = i % 3 == 2 ? archive::EventStatus::delivered : archive::EventStatus::failed;
        events.push_back(std::move(e));
    }
    REQUIRE((*db)->insert_events(events));
    return path;
}

std::string new_run(archive::Store& db) {
    archive::NewRun run;
    run.kind = "replay";
    auto created = db.create_run(run);
    REQUIRE(created);
    return created->run_id;
}

archive::Attempt attempt(const std::string& run_id, std::int64_t item, const char* outcome) {
    archive::Attempt a;
    a.run_id = run_id;
    a.event_id = "evt_" + std::to_string(item - 1);
    a.target = "http://127.0.0.1:9/";
    a.attempt = 1;
    a.at_ms = 5000;
    a.http_status = 202;
    a.outcome = archive::parse_attempt_outcome(outcome).value();
    a.item = item;
    if (std::string_view(outcome) == "delivered") {
        a.item_state = archive::ItemState::delivered;
        a.new_status = archive::EventStatus::delivered;
    }
    return a;
}

std::unique_ptr<archive::Store> open(const std::string& path,
                                     archive::Mode mode = archive::Mode::read_write) {
    archive::OpenOptions options;
    options.mode = mode;
    auto db = archive::open(path, options);
    REQUIRE(db);
    return std::move(*db);
}

// Takes everything a feed yields, waiting for its reader.
std::vector<replay::ReplayEvent> drain(replay::Feed& feed) {
    std::vector<replay::ReplayEvent> out;
    for (int i = 0; i < 5000 && !feed.done(); ++i) {
        while (auto e = feed.try_pop()) {
            out.push_back(std::move(*e));
        }
        std::this_thread::sleep_for(1ms);
    }
    REQUIRE(feed.done());
    return out;
}

} // namespace

TEST_CASE("replay::select_items records an archive selection in seq or received_at order") {
    TempDir dir;
    auto path = make_archive(dir, 30);
    auto db = open(path);
    replay::SourceSpec spec;
    spec.kind = replay::SourceKind::archive;
    spec.path = path;
    auto run = new_run(*db);
    // Default statuses: failed and dead (20 of the 30), limit 7.
    spec.filter.limit = 7;
    auto selected = replay::select_items(spec, *db, run);
    REQUIRE(selected);
    CHECK(*selected == 7);
    auto counts = db->count_run_items(run);
    REQUIRE(counts);
    CHECK(counts->pending == 7);
    std::vector<std::string> ids;
    REQUIRE(db->for_each_pending_event(run, 0, 100,
                                       [&](const archive::RunItem& item, const archive::Event& e) {
                                           CHECK(item.event_id == e.event_id);
                                           ids.push_back(e.event_id);
                                           return true;
                                       }));
    CHECK(ids ==
          std::vector<std::string>{"evt_0", "evt_1", "evt_3", "evt_4", "evt_6", "evt_7", "evt_9"});
    // --ordered: received_at order, which is the reverse here.
    spec.ordered = true;
    spec.filter.limit = 3;
    auto ordered_run = new_run(*db);
    REQUIRE(replay::select_items(spec, *db, ordered_run));
    ids.clear();
    REQUIRE(db->for_each_pending_event(ordered_run, 0, 100,
                                       [&](const archive::RunItem&, const archive::Event& e) {
                                           ids.push_back(e.event_id);
                                           return true;
                                       }));
    CHECK(ids == std::vector<std::string>{"evt_28", "evt_27", "evt_25"});
}

TEST_CASE("replay::Recorder commits in batches and reports settled items only once durable") {
    TempDir dir;
    auto path = make_archive(dir, 10);
    auto db = open(path);
    replay::SourceSpec spec;
    spec.kind = replay::SourceKind::archive;
    spec.path = path;
    spec.filter.statuses = {archive::EventStatus::failed, archive::EventStatus::delivered};
    auto run = new_run(*db);
    REQUIRE(replay::select_items(spec, *db, run));
    std::atomic<int> wakes{0};
    // A batch of 4 settled items, or 1 s: the first three wait for the fourth.
    replay::Recorder recorder(
        open(path), run, [&] { ++wakes; }, 4, 1000ms);
    recorder.add(attempt(run, 1, "retry"));
    for (int i = 2; i <= 4; ++i) {
        recorder.add(attempt(run, i, "delivered"));
    }
    std::this_thread::sleep_for(100ms);
    CHECK(recorder.take_committed().empty());
    auto before = db->attempts_for("evt_1", run);
    REQUIRE(before);
    CHECK(before->empty()); // not committed yet
    archive::ItemVerdict verdict;
    verdict.run_id = run;
    verdict.item = 5;
    verdict.event_id = "evt_4";
    verdict.event_status = archive::EventStatus::dead;
    verdict.reason = "http_404";
    recorder.settle(verdict);
    std::vector<std::int64_t> items;
    for (int i = 0; i < 400 && items.size() < 4; ++i) {
        auto got = recorder.take_committed();
        items.insert(items.end(), got.begin(), got.end());
        std::this_thread::sleep_for(5ms);
    }
    CHECK(items == std::vector<std::int64_t>{2, 3, 4, 5}); // the retry settles nothing
    CHECK(wakes.load() >= 1);
    auto counts = db->count_run_items(run);
    REQUIRE(counts);
    CHECK(counts->delivered == 3);
    CHECK(counts->dead == 1);
    CHECK(counts->pending == 6);
    auto dead = db->get_event("evt_4");
    REQUIRE(dead);
    CHECK((**dead).status == archive::EventStatus::dead);
    CHECK((**dead).last_error == "http_404");
    // close() writes what is queued without waiting for a batch, and the run update after it.
    recorder.add(attempt(run, 6, "delivered"));
    archive::RunProgress progress;
    progress.total = 10;
    progress.delivered = 4;
    recorder.update_run(progress, archive::RunState::running);
    REQUIRE(recorder.close());
    CHECK(recorder.take_committed() == std::vector<std::int64_t>{6});
    auto stored = db->get_run(run);
    REQUIRE(stored);
    REQUIRE(stored->has_value());
    CHECK((**stored).progress.delivered == 4);
}

TEST_CASE("replay::Recorder reports a failed write, rolls it back and stops") {
    TempDir dir;
    auto path = make_archive(dir, 1);
    replay::Recorder recorder(open(path), "run_missing", {}, 1, 1ms);
    // A run id that does not exist: update_run fails, like a disk error would.
    recorder.add(attempt("run_missing", 1, "delivered"));
    recorder.update_run({}, archive::RunState::running);
    for (int i = 0; i < 400 && !recorder.error(); ++i) {
        std::this_thread::sleep_for(5ms);
    }
    REQUIRE(recorder.error());
    CHECK(recorder.error()->message.find("run_missing") != std::string::npos);
    CHECK_FALSE(recorder.close());
    CHECK(recorder.take_committed().empty());
}

TEST_CASE("replay::Prefetch reads a run's pending items ahead, in order, and stops when "
          "dropped") {
    TempDir dir;
    auto path = make_archive(dir, 300);
    auto db = open(path);
    replay::SourceSpec spec;
    spec.kind = replay::SourceKind::archive;
    spec.path = path;
    spec.filter.statuses = {archive::EventStatus::failed};
    auto run = new_run(*db);
    REQUIRE(*replay::select_items(spec, *db, run) == 200);
    // Items 1..10 are settled already: a resume reads the other 190.
    std::vector<archive::Attempt> done;
    for (int i = 1; i <= 10; ++i) {
        done.push_back(attempt(run, i, "delivered"));
    }
    REQUIRE(db->record_attempts(done));
    {
        std::atomic<int> wakes{0};
        replay::Prefetch feed(spec, open(path, archive::Mode::read_only), run, 8,
                              std::size_t{64} << 20, [&] { ++wakes; });
        auto events = drain(feed);
        CHECK_FALSE(feed.error());
        REQUIRE(events.size() == 190);
        CHECK(events.front().item == 11);
        CHECK(events.back().item == 200);
        CHECK(std::is_sorted(events.begin(), events.end(),
                             [](const auto& a, const auto& b) { return a.item < b.item; }));
        CHECK(events.front().event_id == "evt_15"); // item 11: the 11th failed event
        CHECK(wakes.load() >= 1);
    }
    {
        // Nothing taken: the reader fills its 8 slots and waits; dropping it must not hang.
        replay::Prefetch feed(spec, open(path, archive::Mode::read_only), run, 8,
                              std::size_t{64} << 20, {});
        std::this_thread::sleep_for(50ms);
        CHECK_FALSE(feed.done());
        auto first = feed.try_pop();
        REQUIRE(first);
        CHECK(first->item == 11);
    }
}

TEST_CASE("replay::Prefetch passes on the source's failure once what it read is taken") {
    TempDir dir;
    make_archive(dir, 3);
    auto records = dir.file("runs.db");
    auto db = open(records, archive::Mode::create);
    replay::SourceSpec spec;
    spec.kind = replay::SourceKind::query;
    spec.path = dir.file("a.db");
    spec.query = "SELECT no_such_column FROM events";
    replay::Prefetch feed(spec, open(records, archive::Mode::read_only), new_run(*db), 8,
                          std::size_t{64} << 20, {});
    drain(feed);
    REQUIRE(feed.error());
    CHECK(feed.error()->message.find("no_such_column") != std::string::npos);
}

TEST_CASE("replay: a foreign table's run matches events to items by position, then by id, and "
          "counts pending items that left the table as missing") {
    TempDir dir;
    auto foreign = dir.file("dlq.db");
    {
        SQLite::Database raw(foreign, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        raw.exec("CREATE TABLE dlq (id TEXT, body TEXT, n INTEGER)");
        for (int i = 1; i <= 6; ++i) {
            raw.exec("INSERT INTO dlq VALUES ('f_" + std::to_string(i) +
                     "', '{\"n\":" + std::to_string(i) + "}', " + std::to_string(i) + ")");
        }
    }
    auto records = dir.file("runs.db");
    auto db = open(records, archive::Mode::create);
    replay::SourceSpec spec;
    spec.kind = replay::SourceKind::query;
    spec.path = foreign;
    spec.query = "SELECT id AS event_id, body AS payload FROM dlq ORDER BY n";
    spec.filter.limit = 5;
    auto run = new_run(*db);
    REQUIRE(*replay::select_items(spec, *db, run) == 5);
    // f_2 is delivered; then the table changes: f_3 leaves it, f_1 moves to the end, and a
    // new row arrives. The run still sends only its own pending items: f_1, f_4, f_5.
    archive::Attempt a = attempt(run, 2, "delivered");
    a.event_id = "f_2";
    REQUIRE(db->record_attempts({&a, 1}));
    {
        SQLite::Database raw(foreign, SQLite::OPEN_READWRITE);
        raw.exec("DELETE FROM dlq WHERE id = 'f_3'");
        raw.exec("UPDATE dlq SET n = 99 WHERE id = 'f_1'");
        raw.exec("INSERT INTO dlq VALUES ('f_new', '{}', 0)");
    }
    std::vector<std::pair<std::int64_t, std::string>> sent;
    std::vector<std::int64_t> missing;
    auto reader = open(records, archive::Mode::read_only);
    REQUIRE(replay::for_each_pending(
        spec, *reader, run,
        [&](replay::ReplayEvent&& e) -> Result<bool> {
            sent.emplace_back(e.item, e.event_id);
            return true;
        },
        [&](const archive::RunItem& item) { missing.push_back(item.item); }));
    std::sort(sent.begin(), sent.end());
    CHECK(sent ==
          std::vector<std::pair<std::int64_t, std::string>>{{1, "f_1"}, {4, "f_4"}, {5, "f_5"}});
    CHECK(missing == std::vector<std::int64_t>{3});
}

TEST_CASE("replay: a MIME folder's run selects message ids without parsing and sends the parse") {
    TempDir dir;
    auto folder = dir.path / "mail";
    fs::create_directories(folder);
    for (int i = 0; i < 3; ++i) {
        std::ofstream(folder / ("m" + std::to_string(i) + ".eml"))
            << "From: a@example.com\r\nTo: b@example.com\r\nSubject: n" << i << "\r\nMessage-ID: <m"
            << i << "@example.com>\r\n\r\nbody " << i << "\r\n";
    }
    auto db = open(dir.file("runs.db"), archive::Mode::create);
    replay::SourceSpec spec;
    spec.kind = replay::SourceKind::mime;
    spec.path = folder.string();
    spec.org_id = "org_mail";
    auto run = new_run(*db);
    REQUIRE(*replay::select_items(spec, *db, run) == 3);
    std::vector<replay::ReplayEvent> events;
    auto reader = open(dir.file("runs.db"), archive::Mode::read_only);
    REQUIRE(replay::for_each_pending(
        spec, *reader, run,
        [&](replay::ReplayEvent&& e) -> Result<bool> {
            events.push_back(std::move(e));
            return true;
        },
        [](const archive::RunItem&) { FAIL("nothing is missing"); }));
    REQUIRE(events.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(events[i].item == static_cast<std::int64_t>(i + 1));
        CHECK(events[i].org_id == "org_mail");
        CHECK(events[i].body.find("\"subject\":\"n" + std::to_string(i) + "\"") !=
              std::string::npos);
        CHECK(events[i].body.find("\"event_id\":\"" + events[i].event_id + "\"") !=
              std::string::npos);
    }
}
