#include <filesystem>
#include <string>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include <hookctl/archive/archive.hpp>
#include <hookctl/replay/source.hpp>
#include <hookctl/util/encoding.hpp>

#include "../temp_dir.hpp"

namespace fs = std::filesystem;
using namespace hookctl;
using testing::TempDir;

namespace {

replay::SourceSpec spec_of(replay::SourceKind kind, const std::string& path,
                           std::string query = {}) {
    replay::SourceSpec spec;
    spec.kind = kind;
    spec.path = path;
    spec.query = std::move(query);
    return spec;
}

// Every event for_each_event yields; fails the test when the walk fails.
std::vector<replay::ReplayEvent> events_of(const replay::SourceSpec& spec,
                                           archive::Store* archive = nullptr) {
    std::vector<replay::ReplayEvent> out;
    auto walked =
        replay::for_each_event(spec, archive, [&](replay::ReplayEvent&& e) -> Result<bool> {
            out.push_back(std::move(e));
            return true;
        });
    REQUIRE(walked);
    return out;
}

std::vector<std::string> ids(const std::vector<replay::ReplayEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) {
        out.push_back(e.event_id);
    }
    return out;
}

// A dead-letter table in a foreign SQLite file, as a team's own queue keeps it.
std::string foreign_table(const TempDir& dir) {
    auto path = dir.file("dlq.db");
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE dlq (id TEXT, body BLOB, org TEXT, at)");
    db.exec("INSERT INTO dlq VALUES ('d_1', '{\"n\":1}', 'org_a', 1764000000123)");
    db.exec("INSERT INTO dlq VALUES ('d_2', x'7b00ff7d', 'org_b', '2025-11-24T16:00:00.500Z')");
    db.exec("INSERT INTO dlq VALUES ('d_3', '{}', NULL, NULL)");
    db.exec("INSERT INTO dlq VALUES ('d_4', '{}', 'org_a', 'not a time')");
    return path;
}

} // namespace

TEST_CASE("replay::detect_source_kind tells archive, HAR and MIME apart by content and name") {
    TempDir dir;
    auto missing = replay::detect_source_kind(dir.file("nope"), false);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == ExitCode::usage);
    CHECK(missing.error().message ==
          "cannot read --from " + dir.file("nope") + ": no such file or directory");

    REQUIRE(archive::open(dir.file("events.db")));
    CHECK(*replay::detect_source_kind(dir.file("events.db"), false) == replay::SourceKind::archive);
    // --query wins over what the file is.
    CHECK(*replay::detect_source_kind(dir.file("events.db"), true) == replay::SourceKind::query);
    CHECK(*replay::detect_source_kind(dir.path.string(), false) == replay::SourceKind::mime);

    dir.write("capture.json", "\n  {\"log\": {}}");
    CHECK(*replay::detect_source_kind(dir.file("capture.json"), false) == replay::SourceKind::har);
    dir.write("broken.HAR", "not json at all");
    CHECK(*replay::detect_source_kind(dir.file("broken.HAR"), false) == replay::SourceKind::har);
    dir.write("message.eml", "From: a@example.com\r\n\r\nhi\r\n");
    CHECK(*replay::detect_source_kind(dir.file("message.eml"), false) == replay::SourceKind::mime);
    // Empty, blank, or a SQLite header cut short: not an archive, read as mail.
    dir.write("empty", "");
    CHECK(*replay::detect_source_kind(dir.file("empty"), false) == replay::SourceKind::mime);
    dir.write("blank", " \r\n\t");
    CHECK(*replay::detect_source_kind(dir.file("blank"), false) == replay::SourceKind::mime);
    dir.write("cut", std::string("SQLite format", 13));
    CHECK(*replay::detect_source_kind(dir.file("cut"), false) == replay::SourceKind::mime);
}

TEST_CASE("replay::detect_source_kind: a PostgreSQL URI is an archive, or a query with --query") {
    CHECK(*replay::detect_source_kind("postgres://ops@db.internal/webhooks", false) ==
          replay::SourceKind::archive);
    CHECK(*replay::detect_source_kind("postgresql://ops@db.internal/payments", true) ==
          replay::SourceKind::query);
    // A password in the URI is refused before anything connects, for a query too.
    auto refused = replay::detect_source_kind("postgres://ops:hunter2@db.internal/payments", true);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ExitCode::usage);
    CHECK(refused.error().message.find("hunter2") == std::string::npos);
}

TEST_CASE("replay::SourceSpec::describe names the kind and the path") {
    CHECK(spec_of(replay::SourceKind::archive, "a.db").describe() == "archive a.db");
    CHECK(spec_of(replay::SourceKind::query, "q.db").describe() == "query over q.db");
    CHECK(spec_of(replay::SourceKind::mime, "mail/").describe() == "mime mail/");
    CHECK(spec_of(replay::SourceKind::har, "c.har").describe() == "har c.har");
}

TEST_CASE("replay: a --query source maps columns by name, bytes kept, times in ms or UTC text") {
    TempDir dir;
    auto spec = spec_of(replay::SourceKind::query, foreign_table(dir),
                        "SELECT id AS event_id, body AS payload, org AS org_id, at AS received_at "
                        "FROM dlq ORDER BY id");
    CHECK(*replay::count_events(spec, nullptr) == 4);
    auto events = events_of(spec);
    REQUIRE(events.size() == 4);
    CHECK(ids(events) == std::vector<std::string>{"d_1", "d_2", "d_3", "d_4"});
    CHECK(events[0].seq == 1);
    CHECK(events[3].seq == 4);
    CHECK(events[0].body == R"({"n":1})");
    CHECK(events[1].body == std::string("{\0\xff}", 4)); // a blob, NUL and all
    CHECK(events[0].org_id == "org_a");
    CHECK(events[2].org_id.empty());
    CHECK(events[0].received_at_ms == 1'764'000'000'123);
    CHECK(events[1].received_at_ms == 1'764'000'000'500);
    CHECK(events[2].received_at_ms == 0); // NULL
    CHECK(events[3].received_at_ms == 0); // unreadable text: unknown, not an error

    spec.filter.limit = 2;
    CHECK(*replay::count_events(spec, nullptr) == 2);
    CHECK(ids(events_of(spec)) == std::vector<std::string>{"d_1", "d_2"});

    // The visitor stops the walk.
    spec.filter.limit.reset();
    int visited = 0;
    REQUIRE(replay::for_each_event(
        spec, nullptr, [&](replay::ReplayEvent&&) -> Result<bool> { return ++visited < 3; }));
    CHECK(visited == 3);
}

TEST_CASE("replay: a --query source that cannot serve says which column or row, and how") {
    TempDir dir;
    auto path = foreign_table(dir);
    auto no_payload = spec_of(replay::SourceKind::query, path, "SELECT id AS event_id FROM dlq");
    auto counted = replay::count_events(no_payload, nullptr);
    REQUIRE_FALSE(counted);
    CHECK(counted.error().code == ExitCode::usage);
    CHECK(counted.error().message ==
          "--query over " + path +
              ": the result has no payload column (alias yours: SELECT id AS event_id, body AS "
              "payload ...)");
    auto no_id = spec_of(replay::SourceKind::query, path, "SELECT body AS payload FROM dlq");
    CHECK(replay::count_events(no_id, nullptr).error().message.find("has no event_id column") !=
          std::string::npos);

    auto empty_id = spec_of(replay::SourceKind::query, path,
                            "SELECT CASE WHEN id = 'd_2' THEN '' ELSE id END AS event_id, body AS "
                            "payload FROM dlq ORDER BY id");
    auto walked = replay::for_each_event(
        empty_id, nullptr, [](replay::ReplayEvent&&) -> Result<bool> { return true; });
    REQUIRE_FALSE(walked);
    CHECK(walked.error().message == "--query over " + path + ": row 2 has an empty event_id");

    auto bad_sql = spec_of(replay::SourceKind::query, path, "SELEKT nothing");
    auto failed = replay::count_events(bad_sql, nullptr);
    REQUIRE_FALSE(failed);
    CHECK(failed.error().code == ExitCode::usage);
    CHECK(failed.error().message.starts_with("--query over " + path + " failed: "));
    CHECK(failed.error().message.ends_with(
        "(the query must return columns event_id and payload; optional: headers, org_id, "
        "received_at)"));
}

TEST_CASE("replay: a HAR source numbers entries and makes an id from a body that has none") {
    TempDir dir;
    auto path = dir.write("capture.har", R"({"log":{"version":"1.2","entries":[
      {"startedDateTime":"2025-11-24T16:00:00.000Z",
       "request":{"method":"POST","url":"http://a/","headers":[{"name":"Idempotency-Key",
                  "value":"evt_h1"}],"postData":{"mimeType":"application/json","text":"{\"a\":1}"}}},
      {"request":{"method":"POST","url":"http://a/","headers":[],
                  "postData":{"mimeType":"application/json","text":"{\"b\":2}"}}}]}})");
    auto spec = spec_of(replay::SourceKind::har, path);
    CHECK(*replay::count_events(spec, nullptr) == 2);
    auto events = events_of(spec);
    REQUIRE(events.size() == 2);
    CHECK(events[0].event_id == "evt_h1");
    CHECK(events[0].seq == 1);
    CHECK(events[0].received_at_ms == 1'764'000'000'000);
    CHECK(events[1].seq == 2);
    CHECK(events[1].body == R"({"b":2})");
    // As `send` makes one: stable for the same body.
    CHECK(events[1].event_id ==
          "evt_" + util::hex_encode(util::sha256(R"({"b":2})")).substr(0, 24));

    auto cut = dir.write("cut.har", R"({"log":{"entries":[)"); // a capture that stopped half-way
    auto failed = replay::count_events(spec_of(replay::SourceKind::har, cut), nullptr);
    REQUIRE_FALSE(failed);
    CHECK(failed.error().code == ExitCode::usage);
    CHECK(failed.error().message.starts_with(cut + ": not a HAR file"));
}

TEST_CASE("replay: an archive source selects failed and dead events unless told, in seq or "
          "received_at order") {
    TempDir dir;
    auto path = dir.file("events.db");
    {
        auto db = archive::open(path);
        REQUIRE(db);
        std::vector<archive::NewEvent> events;
        const archive::EventStatus statuses[] = {
            archive::EventStatus::received, archive::EventStatus::failed,
            archive::EventStatus::dead, archive::EventStatus::delivered,
            archive::EventStatus::failed};
        for (int i = 0; i < 5; ++i) {
            archive::NewEvent e;
            e.event_id = "e" + std::to_string(i + 1);
            e.received_at_ms = 10'000 - i; // received in the reverse of storage order
            e.body = "{}";
            e.status = statuses[i];
            events.push_back(std::move(e));
        }
        REQUIRE((*db)->insert_events(events));
    }
    auto spec = spec_of(replay::SourceKind::archive, path);
    auto source = replay::open_source_archive(spec);
    REQUIRE(source);
    archive::Store* db = source->get();
    CHECK(*replay::count_events(spec, db) == 3);
    CHECK(ids(events_of(spec, db)) == std::vector<std::string>{"e2", "e3", "e5"});
    spec.ordered = true;
    CHECK(ids(events_of(spec, db)) == std::vector<std::string>{"e5", "e3", "e2"});
    spec.filter.limit = 2;
    CHECK(*replay::count_events(spec, db) == 2);
    CHECK(ids(events_of(spec, db)) == std::vector<std::string>{"e5", "e3"});

    spec = spec_of(replay::SourceKind::archive, path);
    spec.filter.statuses = {archive::EventStatus::received};
    CHECK(ids(events_of(spec, db)) == std::vector<std::string>{"e1"});
    spec.filter.statuses.clear();
    spec.filter.event_ids = {"e4"}; // named events: whatever their status
    CHECK(ids(events_of(spec, db)) == std::vector<std::string>{"e4"});

    dir.write("not.db", "plain text");
    auto wrong =
        replay::open_source_archive(spec_of(replay::SourceKind::archive, dir.file("not.db")));
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().code == ExitCode::usage);
    CHECK(wrong.error().message.starts_with("cannot read source archive: "));
}

TEST_CASE("replay: an archive source is counted and walked through the one handle its command "
          "opened, never opened again by path") {
    TempDir dir;
    auto path = dir.file("events.db");
    {
        auto created = archive::open(path);
        REQUIRE(created);
        std::vector<archive::NewEvent> events(2);
        events[0].event_id = "f1";
        events[1].event_id = "f2";
        for (auto& e : events) {
            e.body = "{}";
            e.status = archive::EventStatus::failed;
        }
        REQUIRE((*created)->insert_events(events));
    }
    auto spec = spec_of(replay::SourceKind::archive, path);
    auto source = replay::open_source_archive(spec); // what `replay --from` opens, once
    REQUIRE(source);
    // The file moves away once the handle is open: a read that opened the path again would
    // find nothing there (exit 2, "cannot read source archive").
    auto moved = dir.file("moved.db");
    fs::rename(path, moved);
    CHECK(*replay::count_events(spec, source->get()) == 2);
    CHECK(ids(events_of(spec, source->get())) == std::vector<std::string>{"f1", "f2"});
    spec.ordered = true;
    CHECK(ids(events_of(spec, source->get())) == std::vector<std::string>{"f1", "f2"});
    // Without the handle an archive source is refused, not opened behind the caller's back.
    auto unopened = replay::count_events(spec, nullptr);
    REQUIRE_FALSE(unopened);
    CHECK(unopened.error().message.find("was not opened") != std::string::npos);
}
