// archive::Store, the interface every archive backend implements, run against the SQLite store
// on real files: the backend is chosen by archive::open, one handle serves a command's reads,
// runs and records (threads take connections of their own through it), and `events mark`'s
// transaction is all or nothing.
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/archive/archive.hpp>
#include <hookctl/archive/body_cipher.hpp>
#include <hookctl/keys/archive_key.hpp>

#include "../temp_dir.hpp"

// Designated initializers that leave fields at their defaults are the point here; GCC 12
// warns about them under -Wextra.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace hookctl;
using namespace hookctl::archive;

namespace {

using testing::TempDir;

std::unique_ptr<Store> open_store(const std::string& path, OpenOptions options = {}) {
    auto opened = archive::open(path, options);
    REQUIRE(opened);
    return std::move(*opened);
}

NewEvent failed_event(std::string id, std::int64_t at_ms) {
    NewEvent e;
    e.event_id = std::move(id);
    e.received_at_ms = at_ms;
    e.org_id = "org_1";
    e.body = R"({"n":1})";
    e.status = EventStatus::failed;
    e.source = "test";
    return e;
}

void store_events(Store& store, const std::vector<std::string>& ids) {
    std::vector<NewEvent> events;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        events.push_back(failed_event(ids[i], 1000 + static_cast<std::int64_t>(i)));
    }
    REQUIRE(store.insert_events(events));
}

EventStatus status_of(Store& store, const std::string& id) {
    auto e = store.get_event(id);
    REQUIRE(e);
    REQUIRE(e->has_value());
    return (*e)->status;
}

std::shared_ptr<const BodyCipher> a_cipher() {
    auto key = keys::decode_archive_key(std::string(64, 'a'), "test");
    REQUIRE(key);
    std::vector<keys::ArchiveKey> keys;
    keys.push_back(std::move(*key));
    auto cipher = BodyCipher::make(std::move(keys));
    REQUIRE(cipher);
    return *cipher;
}

} // namespace

TEST_CASE("archive::open picks the backend from the archive argument") {
    TempDir dir;
    auto path = dir.file("a.db");
    auto store = archive::open(path);
    REQUIRE(store);
    CHECK((*store)->path() == path);
    CHECK((*store)->schema_version() == k_schema_version);

    for (const char* uri : {"postgres://hookctl:s3cret@db.example/hooks",
                            "postgresql://hookctl:s3cret@db.example/hooks"}) {
        CAPTURE(uri);
        auto refused = archive::open(uri);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == ExitCode::usage);
        // A password in the URI is refused before any connection, and not repeated.
        CHECK(refused.error().message.find("PGPASSWORD") != std::string::npos);
        CHECK(refused.error().message.find("s3cret") == std::string::npos);
        CHECK(refused.error().message.find("db.example") == std::string::npos);
    }
    // Without a password, it is the PostgreSQL backend: nothing listens on port 1 here.
    auto unreachable = archive::open("postgres://hookctl@127.0.0.1:1/hooks");
    REQUIRE_FALSE(unreachable);
    CHECK(unreachable.error().code == ExitCode::environment);
    CHECK(unreachable.error().message.find("cannot connect to PostgreSQL at host 127.0.0.1 port "
                                           "1, database hooks") != std::string::npos);
    // Nothing was created for them either.
    CHECK_FALSE(std::filesystem::exists("postgres:"));
}

TEST_CASE("archive::mark_all marks every event or, when one is missing, none") {
    TempDir dir;
    auto store = open_store(dir.file("a.db"));
    store_events(*store, {"e1", "e2", "e3"});

    std::vector<std::string> with_missing{"e1", "nope", "e2", "gone"};
    auto refused = mark_all(*store, with_missing, EventStatus::dead, "given up");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ExitCode::usage);
    CHECK(refused.error().message ==
          "no event with id nope, gone in " + dir.file("a.db") + "; nothing was marked");
    // The ids that exist were not marked either, and the transaction is closed.
    CHECK(status_of(*store, "e1") == EventStatus::failed);
    CHECK(status_of(*store, "e2") == EventStatus::failed);
    CHECK_FALSE(store->in_transaction());
    // The write lock is released: another connection writes at once.
    auto other = open_store(
        dir.file("a.db"), {.mode = Mode::read_write, .busy_timeout = std::chrono::milliseconds(0)});
    store_events(*other, {"e4"});

    std::vector<std::string> all{"e1", "e3"};
    REQUIRE(mark_all(*store, all, EventStatus::delivered, ""));
    CHECK(status_of(*store, "e1") == EventStatus::delivered);
    CHECK(status_of(*store, "e3") == EventStatus::delivered);
    CHECK(status_of(*store, "e2") == EventStatus::failed);
    CHECK_FALSE(store->in_transaction());
    // Seen from another connection too: it was committed.
    CHECK(status_of(*other, "e3") == EventStatus::delivered);
}

TEST_CASE("archive::mark_all fails without marking when the store is busy in a transaction") {
    TempDir dir;
    auto store = open_store(dir.file("a.db"));
    store_events(*store, {"e1"});
    REQUIRE(store->begin());
    std::vector<std::string> ids{"e1"};
    auto refused = mark_all(*store, ids, EventStatus::dead, "x");
    REQUIRE_FALSE(refused);
    store->rollback();
    CHECK(status_of(*store, "e1") == EventStatus::failed);
}

TEST_CASE("archive::Store one handle serves counting, run lookup and recording") {
    TempDir dir;
    auto path = dir.file("a.db");
    auto store = open_store(path);
    store_events(*store, {"e1", "e2", "e3"});

    // Counting (what a replay's source does) through the handle.
    EventFilter failed{.statuses = {EventStatus::failed}};
    auto counted = store->count_events(failed);
    REQUIRE(counted);
    CHECK(*counted == 3);

    // A run and its selection, in one transaction of the handle.
    REQUIRE(store->begin());
    auto run = store->create_run({.kind = "replay", .source = "archive " + path});
    REQUIRE(run);
    auto selected = store->select_run_items(run->run_id, failed, false);
    REQUIRE(selected);
    CHECK(*selected == 3);
    REQUIRE(store->commit());

    // Run lookup through the handle.
    auto found = store->get_run(run->run_id);
    REQUIRE(found);
    REQUIRE(found->has_value());
    CHECK((*found)->state == RunState::running);

    // The recorder's thread records through a connection of its own, taken from the handle.
    OpenOptions writer;
    writer.mode = Mode::read_write;
    writer.synchronous_full = false;
    auto recorder = store->another(writer);
    REQUIRE(recorder);
    CHECK((*recorder)->path() == path);
    Attempt delivered;
    delivered.run_id = run->run_id;
    delivered.event_id = "e1";
    delivered.target = "http://127.0.0.1:9/hook";
    delivered.http_status = 200;
    delivered.outcome = AttemptOutcome::delivered;
    delivered.new_status = EventStatus::delivered;
    delivered.item = 1;
    delivered.item_state = ItemState::delivered;
    REQUIRE((*recorder)->begin());
    REQUIRE((*recorder)->record_attempt(delivered));
    REQUIRE((*recorder)->update_run(run->run_id, {3, 1, 1, 0, 0, 0}, RunState::running));
    REQUIRE((*recorder)->commit());

    // The handle sees what the recorder committed: the ledger, the event, the run.
    auto counts = store->count_run_items(run->run_id);
    REQUIRE(counts);
    CHECK(counts->delivered == 1);
    CHECK(counts->pending == 2);
    CHECK(status_of(*store, "e1") == EventStatus::delivered);
    auto attempts = store->attempts_for("e1", run->run_id);
    REQUIRE(attempts);
    REQUIRE(attempts->size() == 1);
    CHECK(attempts->front().outcome == AttemptOutcome::delivered);
    auto after = store->get_run(run->run_id);
    REQUIRE(after);
    CHECK((*after)->progress.delivered == 1);
}

TEST_CASE("archive::Store another() keeps the handle's archive keys, so bodies stay sealed") {
    TempDir dir;
    auto path = dir.file("sealed.db");
    auto store = open_store(path, {.cipher = a_cipher()});
    REQUIRE(store->prepare_body_writes());
    store_events(*store, {"e1"});
    CHECK(store->encryption().encrypted);

    // A connection for another thread, asked for without keys, reads and writes as the handle.
    auto other = store->another({.mode = Mode::read_write});
    REQUIRE(other);
    auto e = (*other)->get_event("e1");
    REQUIRE(e);
    REQUIRE(e->has_value());
    CHECK((*e)->body == R"({"n":1})");
    store_events(**other, {"e2"});
    auto e2 = store->get_event("e2");
    REQUIRE(e2);
    REQUIRE(e2->has_value());
    CHECK((*e2)->body == R"({"n":1})");

    // The same file opened without keys reads the rows but not the bodies.
    auto keyless = open_store(path, {.mode = Mode::read_only});
    CHECK(keyless->encryption().encrypted);
    CHECK_FALSE(keyless->get_event("e1"));
}
