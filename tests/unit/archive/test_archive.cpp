#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include <hookctl/archive/archive.hpp>
#include <hookctl/archive/sqlite/schema.hpp>

#include "../temp_dir.hpp"

// Designated initializers that leave fields at their defaults are the point here; GCC 12
// warns about them under -Wextra.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace fs = std::filesystem;
using namespace hookctl;
using namespace hookctl::archive;

namespace {

using testing::TempDir;

NewEvent make_event(std::string id, std::int64_t at_ms, std::string org = "org_1") {
    NewEvent e;
    e.event_id = std::move(id);
    e.received_at_ms = at_ms;
    e.org_id = std::move(org);
    e.scheme = "mailparse";
    e.headers.add("Content-Type", "application/json");
    e.headers.add("X-Signature", "abc");
    e.body = R"({"type":"email.received","n":1})";
    e.source = "test";
    return e;
}

std::vector<std::string> ids_of(Store& archive, const EventFilter& filter) {
    std::vector<std::string> ids;
    auto n = archive.for_each_event(filter, [&](const Event& e) {
        ids.push_back(e.event_id);
        return true;
    });
    REQUIRE(n);
    return ids;
}

} // namespace

TEST_CASE("archive::open creates the schema at the current version in WAL mode") {
    TempDir dir;
    auto path = dir.file("a.db");
    auto archive = archive::open(path);
    REQUIRE(archive);
    CHECK((*archive)->schema_version() == k_schema_version);
    SQLite::Database raw(path, SQLite::OPEN_READONLY);
    CHECK(raw.execAndGet("PRAGMA user_version").getInt() == k_schema_version);
    CHECK(raw.execAndGet("PRAGMA application_id").getInt() == k_application_id);
    CHECK(raw.execAndGet("PRAGMA journal_mode").getString() == "wal");
    CHECK(raw.tableExists("events"));
    CHECK(raw.tableExists("attempts"));
    CHECK(raw.tableExists("runs"));
    CHECK(raw.tableExists("requests"));
}

TEST_CASE("archive::open migrates a version 1 file forward and keeps its events") {
    TempDir dir;
    auto path = dir.file("v1.db");
    {
        SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        raw.exec(std::string(sqlite::schema::migrations()[0]));
        raw.exec("PRAGMA user_version=1");
        raw.exec("PRAGMA application_id=" + std::to_string(k_application_id));
        raw.exec("INSERT INTO events (event_id, received_at_ms, body, updated_at_ms) "
                 "VALUES ('old_1', 1000, X'7B7D', 1000)");
        CHECK_FALSE(raw.tableExists("requests"));
    }
    auto archive = archive::open(path);
    REQUIRE(archive);
    CHECK((*archive)->schema_version() == k_schema_version);
    auto old = (*archive)->get_event("old_1");
    REQUIRE(old);
    REQUIRE(old->has_value());
    CHECK((*old)->body == "{}");
    CHECK((*old)->trace_id.empty()); // the column version 2 added, with its default
    // What version 2 adds works.
    RequestLog entry{1000, "old_1", 503, "injected_fail", true, 1.5, ""};
    REQUIRE((*archive)->log_requests({&entry, 1}));
    auto counts = (*archive)->request_counts();
    REQUIRE(counts);
    REQUIRE(counts->size() == 1);
    CHECK((*counts)[0].injected);
    SQLite::Database raw(path, SQLite::OPEN_READONLY);
    CHECK(raw.execAndGet("PRAGMA user_version").getInt() == k_schema_version);
    // Version 4's tables and columns exist, with their defaults on the old row.
    CHECK(raw.tableExists("run_items"));
    CHECK(raw.execAndGet("SELECT verified_by || client_identity FROM events").getString() == "");
    // Version 3 moved the bytes to event_bodies, under the event's seq.
    CHECK(raw.execAndGet("SELECT count(*) FROM pragma_table_info('events') WHERE name = 'body'")
              .getInt() == 0);
    CHECK(raw.execAndGet("SELECT body FROM event_bodies JOIN events USING (seq) "
                         "WHERE event_id = 'old_1'")
              .getString() == "{}");
}

TEST_CASE("archive::open read-only refuses an old schema and a missing file") {
    TempDir dir;
    auto path = dir.file("v1.db");
    {
        SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        raw.exec(std::string(sqlite::schema::migrations()[0]));
        raw.exec("PRAGMA user_version=1");
    }
    auto ro = archive::open(path, {.mode = Mode::read_only});
    REQUIRE_FALSE(ro);
    CHECK(ro.error().code == ExitCode::environment);
    CHECK(ro.error().message.find("events migrate") != std::string::npos);

    auto missing = archive::open(dir.file("nope.db"), {.mode = Mode::read_only});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == ExitCode::environment);
    CHECK(missing.error().message.find("does not exist") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.file("nope.db")));
}

TEST_CASE("archive::open fails with exit 4 on a corrupt, foreign or newer file") {
    TempDir dir;
    auto garbage = dir.file("garbage.db");
    {
        std::ofstream out(garbage, std::ios::binary);
        for (int i = 0; i < 4096; ++i) {
            out.put(static_cast<char>((i * 7919) & 0xff));
        }
    }
    for (auto mode : {Mode::create, Mode::read_write, Mode::read_only}) {
        auto a = archive::open(garbage, {.mode = mode});
        REQUIRE_FALSE(a);
        CHECK(a.error().code == ExitCode::environment);
        CHECK(a.error().message.find(garbage) != std::string::npos);
        CHECK(a.error().message.find("corrupt") != std::string::npos);
    }

    auto foreign = dir.file("foreign.db");
    {
        SQLite::Database raw(foreign, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        raw.exec("CREATE TABLE t (x)");
    }
    auto f = archive::open(foreign);
    REQUIRE_FALSE(f);
    CHECK(f.error().code == ExitCode::environment);
    CHECK(f.error().message.find("not a hookctl archive") != std::string::npos);

    auto newer = dir.file("newer.db");
    REQUIRE(archive::open(newer));
    {
        SQLite::Database raw(newer, SQLite::OPEN_READWRITE);
        raw.exec("PRAGMA user_version=99");
    }
    auto n = archive::open(newer);
    REQUIRE_FALSE(n);
    CHECK(n.error().code == ExitCode::environment);
    CHECK(n.error().message.find("newer hookctl") != std::string::npos);

    auto d = archive::open(dir.path.string());
    REQUIRE_FALSE(d);
    CHECK(d.error().code == ExitCode::environment);
}

TEST_CASE("archive::Store::insert_events reports inserted and duplicate, also within a batch") {
    TempDir dir;
    auto archive = archive::open(dir.file("a.db"));
    REQUIRE(archive);
    std::vector<NewEvent> batch{make_event("e1", 1000), make_event("e2", 2000),
                                make_event("e1", 3000)};
    batch[1].body = std::string("\x00\xff\x01 binary", 10);
    batch[1].raw_mime = "From: a@example.com\r\n\r\nhi";
    auto r = (*archive)->insert_events(batch);
    REQUIRE(r);
    CHECK(*r ==
          std::vector{InsertResult::inserted, InsertResult::inserted, InsertResult::duplicate});
    std::vector<NewEvent> again{make_event("e2", 5000), make_event("e3", 6000)};
    auto r2 = (*archive)->insert_events(again);
    REQUIRE(r2);
    CHECK(*r2 == std::vector{InsertResult::duplicate, InsertResult::inserted});

    auto e1 = (*archive)->get_event("e1");
    REQUIRE(e1);
    REQUIRE(e1->has_value());
    CHECK((*e1)->received_at_ms == 1000); // the first stored copy is kept
    CHECK((*e1)->headers.entries().size() == 2);
    CHECK((*e1)->headers.find("x-signature") == "abc");
    CHECK_FALSE((*e1)->raw_mime.has_value());
    auto e2 = (*archive)->get_event("e2");
    REQUIRE(e2);
    REQUIRE(e2->has_value());
    CHECK((*e2)->body == std::string("\x00\xff\x01 binary", 10));
    CHECK((*e2)->raw_mime == "From: a@example.com\r\n\r\nhi");
    CHECK((*e2)->status == EventStatus::received);
    auto count = (*archive)->count_events({});
    REQUIRE(count);
    CHECK(*count == 3);

    auto none = (*archive)->get_event("nope");
    REQUIRE(none);
    CHECK_FALSE(none->has_value());

    std::vector<NewEvent> bad{make_event("", 1)};
    auto r3 = (*archive)->insert_events(bad);
    REQUIRE_FALSE(r3);
    CHECK(r3.error().code == ExitCode::usage);
}

TEST_CASE("archive::Store::insert_events stores nothing of a batch that fails") {
    TempDir dir;
    auto path = dir.file("a.db");
    auto archive = archive::open(path);
    REQUIRE(archive);
    // A second connection holds the write lock: the batch cannot commit within the timeout.
    SQLite::Database other(path, SQLite::OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    auto busy = archive::open(
        path, {.mode = Mode::read_write, .busy_timeout = std::chrono::milliseconds(50)});
    REQUIRE(busy);
    std::vector<NewEvent> batch{make_event("x1", 1), make_event("x2", 2)};
    auto r = (*busy)->insert_events(batch);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ExitCode::environment);
    CHECK(r.error().message.find("lock") != std::string::npos);
    other.exec("ROLLBACK");
    auto count = (*archive)->count_events({});
    REQUIRE(count);
    CHECK(*count == 0);
    // And the same Archive works again afterwards.
    auto r2 = (*busy)->insert_events(batch);
    REQUIRE(r2);
    CHECK(*(*archive)->count_events({}) == 2);
}

TEST_CASE("archive::Store::for_each_event filters by status, time, org, ids, cursor, limit") {
    TempDir dir;
    auto archive = archive::open(dir.file("a.db"));
    REQUIRE(archive);
    std::vector<NewEvent> batch;
    for (int i = 0; i < 10; ++i) {
        auto e = make_event("ev" + std::to_string(i), 1000 * i, i % 2 == 0 ? "even" : "odd");
        batch.push_back(std::move(e));
    }
    REQUIRE((*archive)->insert_events(batch));
    std::vector<std::string> failed{"ev1", "ev2", "ev7"};
    auto missing = (*archive)->mark_events(failed, EventStatus::failed, "http_500");
    REQUIRE(missing);
    CHECK(missing->empty());
    std::vector<std::string> dead{"ev3", "zzz"};
    auto missing2 = (*archive)->mark_events(dead, EventStatus::dead, "http_410");
    REQUIRE(missing2);
    CHECK(*missing2 == std::vector<std::string>{"zzz"});

    CHECK(ids_of(**archive, {.statuses = {EventStatus::failed}}) ==
          std::vector<std::string>{"ev1", "ev2", "ev7"});
    CHECK(ids_of(**archive, {.statuses = {EventStatus::failed, EventStatus::dead}}).size() == 4);
    CHECK(ids_of(**archive, {.since_ms = 3000, .until_ms = 6000}) ==
          std::vector<std::string>{"ev3", "ev4", "ev5"});
    CHECK(ids_of(**archive, {.org_ids = {"odd"}}).size() == 5);
    CHECK(ids_of(**archive, {.event_ids = {"ev9", "ev0", "nope"}}) ==
          std::vector<std::string>{"ev0", "ev9"});
    CHECK(ids_of(**archive, {.statuses = {EventStatus::failed}, .org_ids = {"even"}}) ==
          std::vector<std::string>{"ev2"});
    CHECK(ids_of(**archive, {.limit = 2}) == std::vector<std::string>{"ev0", "ev1"});

    // Paging with the seq cursor visits every event once.
    std::vector<std::string> paged;
    std::int64_t cursor = 0;
    for (int page = 0; page < 10; ++page) {
        std::uint64_t got = 0;
        auto n = (*archive)->for_each_event({.after_seq = cursor, .limit = 3}, [&](const Event& e) {
            paged.push_back(e.event_id);
            cursor = e.seq;
            ++got;
            return true;
        });
        REQUIRE(n);
        if (got == 0) {
            break;
        }
    }
    CHECK(paged.size() == 10);

    // Stopping early.
    int seen = 0;
    auto n = (*archive)->for_each_event({}, [&](const Event&) { return ++seen < 4; });
    REQUIRE(n);
    CHECK(seen == 4);

    // Without bodies.
    auto nobody = (*archive)->for_each_event({.with_body = false}, [&](const Event& e) {
        CHECK(e.body.empty());
        CHECK_FALSE(e.headers.empty());
        return true;
    });
    REQUIRE(nobody);

    auto marked = (*archive)->get_event("ev3");
    REQUIRE(marked);
    CHECK((*marked)->status == EventStatus::dead);
    CHECK((*marked)->last_error == "http_410");
    auto counted = (*archive)->count_events({.statuses = {EventStatus::received}});
    REQUIRE(counted);
    CHECK(*counted == 6);
}

TEST_CASE("archive::Store explicit transactions commit or roll back several writes") {
    TempDir dir;
    auto archive = archive::open(dir.file("a.db"));
    REQUIRE(archive);
    REQUIRE((*archive)->begin());
    CHECK((*archive)->in_transaction());
    std::vector<NewEvent> a{make_event("t1", 1)};
    std::vector<NewEvent> b{make_event("t2", 2)};
    REQUIRE((*archive)->insert_events(a));
    REQUIRE((*archive)->insert_events(b));
    (*archive)->rollback();
    CHECK_FALSE((*archive)->in_transaction());
    CHECK(*(*archive)->count_events({}) == 0);
    REQUIRE((*archive)->begin());
    REQUIRE((*archive)->insert_events(a));
    REQUIRE((*archive)->commit());
    CHECK(*(*archive)->count_events({}) == 1);
    CHECK_FALSE((*archive)->commit());
}

TEST_CASE("archive::Store records attempts, updates event status, and computes stats") {
    TempDir dir;
    auto archive = archive::open(dir.file("a.db"));
    REQUIRE(archive);
    std::vector<NewEvent> batch{make_event("a1", 86400000LL * 20000 + 5, "acme"),
                                make_event("a2", 86400000LL * 20001 + 5, "acme"),
                                make_event("a3", 86400000LL * 20001 + 9, "beta")};
    REQUIRE((*archive)->insert_events(batch));
    auto run = (*archive)->create_run({.kind = "replay",
                                       .source = "a.db",
                                       .target = "http://127.0.0.1:1/hook",
                                       .options_json = R"({"rate":"10/s"})"});
    REQUIRE(run);
    CHECK(run->run_id.starts_with("run_"));
    CHECK(run->run_id.size() == 20);
    CHECK(run->state == RunState::running);
    std::vector<Attempt> attempts;
    for (int i = 1; i <= 100; ++i) {
        attempts.push_back({.run_id = run->run_id,
                            .event_id = "a1",
                            .target = "t",
                            .attempt = i,
                            .at_ms = 1000 + i,
                            .http_status = 503,
                            .latency_ms = static_cast<double>(i),
                            .outcome = AttemptOutcome::retry,
                            .reason = "http_503"});
    }
    attempts.back().new_status = EventStatus::failed;
    attempts.push_back({.run_id = "",
                        .event_id = "a2",
                        .target = "t",
                        .attempt = 1,
                        .at_ms = 5000,
                        .http_status = 0,
                        .latency_ms = 9999,
                        .outcome = AttemptOutcome::retry,
                        .reason = "connect_refused"});
    REQUIRE((*archive)->record_attempts(attempts));
    Attempt ok{.run_id = run->run_id,
               .event_id = "a2",
               .target = "t",
               .attempt = 2,
               .at_ms = 6000,
               .http_status = 200,
               .latency_ms = 1000,
               .outcome = AttemptOutcome::delivered,
               .reason = "",
               .new_status = EventStatus::delivered};
    REQUIRE((*archive)->record_attempt(ok));

    auto a1 = (*archive)->get_event("a1");
    REQUIRE(a1);
    CHECK((*a1)->attempts == 100);
    CHECK((*a1)->status == EventStatus::failed);
    CHECK((*a1)->last_error == "http_503");
    auto a2 = (*archive)->get_event("a2");
    CHECK((*a2)->attempts == 2);
    CHECK((*a2)->status == EventStatus::delivered);
    CHECK((*a2)->last_error.empty());

    auto list = (*archive)->attempts_for("a2");
    REQUIRE(list);
    REQUIRE(list->size() == 2);
    CHECK((*list)[0].reason == "connect_refused");
    CHECK((*list)[1].http_status == 200);
    auto in_run = (*archive)->attempts_for("a2", run->run_id);
    REQUIRE(in_run);
    CHECK(in_run->size() == 1);

    auto stats = (*archive)->stats();
    REQUIRE(stats);
    CHECK(stats->total == 3);
    REQUIRE(stats->by_status.size() == 4);
    CHECK(stats->by_status[0] == std::pair<std::string, std::int64_t>{"received", 1});
    CHECK(stats->by_status[1] == std::pair<std::string, std::int64_t>{"delivered", 1});
    CHECK(stats->by_status[2] == std::pair<std::string, std::int64_t>{"failed", 1});
    CHECK(stats->by_status[3] == std::pair<std::string, std::int64_t>{"dead", 0});
    REQUIRE(stats->by_org.size() == 2);
    CHECK(stats->by_org[0] == std::pair<std::string, std::int64_t>{"acme", 2});
    REQUIRE(stats->by_day.size() == 2);
    CHECK(stats->by_day[0].first == "2024-10-04"); // day 20000 after the epoch
    CHECK(stats->by_day[1].second == 2);
    CHECK(stats->attempts == 102);
    // 101 attempts with a response: latencies 1..100 and 1000.
    CHECK(stats->latency.count == 101);
    CHECK(stats->latency.p50 == doctest::Approx(51));
    CHECK(stats->latency.p95 == doctest::Approx(96));
    CHECK(stats->latency.p99 == doctest::Approx(100));
    CHECK(stats->latency.max == doctest::Approx(1000));

    auto filtered = (*archive)->stats({.org_ids = {"beta"}});
    REQUIRE(filtered);
    CHECK(filtered->total == 1);

    auto run_stats = (*archive)->stats({}, "no-such-run");
    REQUIRE(run_stats);
    CHECK(run_stats->latency.count == 0);
    CHECK(run_stats->attempts == 0);
}

TEST_CASE("archive::Store runs are created, updated, read and listed") {
    TempDir dir;
    auto archive = archive::open(dir.file("a.db"));
    REQUIRE(archive);
    auto run = (*archive)->create_run({.run_id = "run_fixed", .kind = "replay"});
    REQUIRE(run);
    auto dup = (*archive)->create_run({.run_id = "run_fixed", .kind = "replay"});
    REQUIRE_FALSE(dup);
    CHECK(dup.error().code == ExitCode::usage);
    REQUIRE((*archive)->update_run(
        "run_fixed", {.total = 10, .done = 4, .delivered = 3, .dead = 1, .cursor = 77},
        RunState::paused, "interrupted"));
    auto got = (*archive)->get_run("run_fixed");
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK((*got)->state == RunState::paused);
    CHECK((*got)->progress.cursor == 77);
    CHECK((*got)->progress.delivered == 3);
    CHECK((*got)->last_error == "interrupted");
    CHECK((*got)->options_json == "{}");
    auto unknown = (*archive)->update_run("nope", {}, RunState::completed);
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().code == ExitCode::usage);
    REQUIRE((*archive)->create_run({.kind = "replay"}));
    auto runs = (*archive)->list_runs();
    REQUIRE(runs);
    CHECK(runs->size() == 2);
    auto none = (*archive)->get_run("nope");
    REQUIRE(none);
    CHECK_FALSE(none->has_value());
}

TEST_CASE("archive::Store readers see committed events while a writer holds its own handle") {
    TempDir dir;
    auto path = dir.file("a.db");
    auto writer = archive::open(path);
    REQUIRE(writer);
    std::vector<NewEvent> batch;
    for (int i = 0; i < 1000; ++i) {
        batch.push_back(make_event("w" + std::to_string(i), i));
    }
    REQUIRE((*writer)->insert_events(batch));
    auto reader = archive::open(path, {.mode = Mode::read_only});
    REQUIRE(reader);
    std::uint64_t seen = 0;
    // Writing through the other handle while streaming does not disturb the reader's snapshot.
    auto n = (*reader)->for_each_event({}, [&](const Event& e) {
        ++seen;
        if (seen == 10) {
            std::vector<NewEvent> more{make_event("late", 5)};
            CHECK((*writer)->insert_events(more));
            std::vector<std::string> ids{e.event_id};
            CHECK((*writer)->mark_events(ids, EventStatus::delivered, ""));
        }
        return true;
    });
    REQUIRE(n);
    CHECK(seen == 1000);
    CHECK(*(*reader)->count_events({}) == 1001);
    auto ro_write = (*reader)->insert_events(batch);
    REQUIRE_FALSE(ro_write);
    CHECK(ro_write.error().code == ExitCode::environment);
}

TEST_CASE("archive::parse_event_status reads every stored status") {
    CHECK(*parse_event_status("dead") == EventStatus::dead);
    CHECK_FALSE(parse_event_status("lost"));
}

TEST_CASE("archive::Store paged reads walk the primary key, never sort all matches a page") {
    TempDir dir;
    auto archive = archive::open(dir.file("a.db"));
    REQUIRE(archive);
    std::vector<NewEvent> batch;
    for (int i = 0; i < 300; ++i) {
        batch.push_back(make_event("e" + std::to_string(i), 1000 + i));
        batch.back().status = i % 3 == 0 ? EventStatus::failed : EventStatus::delivered;
    }
    REQUIRE((*archive)->insert_events(batch));
    EventFilter page;
    page.statuses = {EventStatus::failed, EventStatus::dead};
    page.since_ms = 1000;
    page.after_seq = 10;
    page.limit = 256;
    auto plan = (*archive)->event_query_plan(page);
    REQUIRE(plan);
    CAPTURE(*plan);
    CHECK(plan->find("INTEGER PRIMARY KEY") != std::string::npos);
    CHECK(plan->find("TEMP B-TREE") == std::string::npos);
    // Same selection as without paging.
    auto paged = ids_of(**archive, page);
    REQUIRE(paged.size() == 96); // failed events with seq > 10: every third of 300, minus 4
    CHECK(paged.front() == "e12");
}

TEST_CASE("archive::AttemptOutcome is stored as the same text as before and read back") {
    for (auto [outcome, text] :
         {std::pair{AttemptOutcome::delivered, "delivered"},
          std::pair{AttemptOutcome::retry, "retry"}, std::pair{AttemptOutcome::failed, "failed"},
          std::pair{AttemptOutcome::dead, "dead"}}) {
        CHECK(to_string(outcome) == text);
        CHECK(parse_attempt_outcome(text) == outcome);
    }
    CHECK_FALSE(parse_attempt_outcome("Delivered").has_value());
    CHECK_FALSE(parse_attempt_outcome("").has_value());
    CHECK(parse_item_state("dead") == ItemState::dead);
    CHECK_FALSE(parse_item_state("lost").has_value());

    TempDir dir;
    auto path = dir.file("a.db");
    {
        auto archive = archive::open(path);
        REQUIRE(archive);
        REQUIRE((*archive)->insert_events(std::vector<NewEvent>{make_event("e1", 1000)}));
        std::vector<Attempt> attempts;
        std::int64_t n = 0;
        for (auto outcome : {AttemptOutcome::retry, AttemptOutcome::failed, AttemptOutcome::dead,
                             AttemptOutcome::delivered}) {
            ++n;
            attempts.push_back({.event_id = "e1",
                                .target = "t",
                                .attempt = n,
                                .at_ms = 1000 + n,
                                .outcome = outcome});
        }
        REQUIRE((*archive)->record_attempts(attempts));
    }
    {
        // The archive format: the outcome column holds these words, as archives written before
        // the enum existed do.
        SQLite::Database raw(path, SQLite::OPEN_READONLY);
        SQLite::Statement stmt(raw, "SELECT group_concat(outcome, ',') FROM "
                                    "(SELECT outcome FROM attempts ORDER BY id)");
        REQUIRE(stmt.executeStep());
        CHECK(stmt.getColumn(0).getString() == "retry,failed,dead,delivered");
    }
    {
        // A row written as text (an older archive) reads as the enum.
        SQLite::Database raw(path, SQLite::OPEN_READWRITE);
        raw.exec("INSERT INTO attempts (run_id, event_id, target, attempt, at_ms, outcome) "
                 "VALUES ('', 'e1', 't', 5, 2000, 'dead')");
    }
    auto archive = archive::open(path);
    REQUIRE(archive);
    auto list = (*archive)->attempts_for("e1");
    REQUIRE(list);
    REQUIRE(list->size() == 5);
    CHECK((*list)[0].outcome == AttemptOutcome::retry);
    CHECK((*list)[3].outcome == AttemptOutcome::delivered);
    CHECK((*list)[4].outcome == AttemptOutcome::dead);
    {
        SQLite::Database raw(path, SQLite::OPEN_READWRITE);
        raw.exec("UPDATE attempts SET outcome = 'vanished' WHERE attempt = 5");
    }
    auto unknown = (*archive)->attempts_for("e1");
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().message.find("'vanished'") != std::string::npos);
    CHECK(unknown.error().message.find(path) != std::string::npos);
}
