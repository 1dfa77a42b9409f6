#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/archive/archive.hpp>
#include <hookctl/receive/forward.hpp>

#include "../loopback_server.hpp"
#include "../sig/sig_test_support.hpp"
#include "../temp_dir.hpp"

using namespace hookctl;
using testing::RecordingServer;
using testing::TempDir;

namespace {

const std::string k_trace = "4bf92f3577b34da6a3ce929d0e0e4736";

std::vector<keys::SecretText> secrets(std::vector<std::string> texts) {
    std::vector<keys::SecretText> out;
    for (auto& t : texts) {
        out.push_back({keys::SecretBytes(t), "test"});
    }
    return out;
}

// The receiver's keys: a primary and an older secret still accepted during a rotation.
receive::KeyStore key_store() {
    auto set = receive::make_key_set(
        secrets({"primary-secret-0123456789abcdef", "older-secret-0123456789abcdef0"}),
        std::nullopt);
    REQUIRE(set);
    return receive::KeyStore([set = *set](std::int64_t) -> Result<receive::KeySet> { return set; },
                             *set);
}

// An archive holding the events the receiver stored, before they are forwarded.
std::string stored(const TempDir& dir, std::vector<std::string> ids) {
    auto path = dir.file("events.db");
    auto db = archive::open(path);
    REQUIRE(db);
    std::vector<archive::NewEvent> events;
    for (auto& id : ids) {
        archive::NewEvent e;
        e.event_id = id;
        e.scheme = "mailparse";
        e.body = R"({"id":")" + id + R"("})";
        e.trace_id = k_trace;
        events.push_back(std::move(e));
    }
    REQUIRE((*db)->insert_events(events));
    return path;
}

receive::StoredEvent event(const std::string& id) {
    return {id, "mailparse", R"({"id":")" + id + R"("})", k_trace};
}

// Collects the outcomes the forwarder's thread reports.
struct Outcomes {
    std::mutex mutex;
    std::vector<receive::ForwardOutcome> list;
    receive::Forwarder::Observer observer() {
        return [this](const receive::ForwardOutcome& o) {
            std::lock_guard lock(mutex);
            list.push_back(o);
        };
    }
};

} // namespace

TEST_CASE("receive::Forwarder re-signs each event with the primary secret, in order, and "
          "records the outcome on the event") {
    TempDir dir;
    auto path = stored(dir, {"evt_a", "evt_b"});
    RecordingServer app;
    app.answer(200);
    app.answer(422, "missing field: to");
    auto keys = key_store();
    Outcomes outcomes;
    auto archive = archive::open(path); // the receiver's handle
    REQUIRE(archive);
    auto forwarder = receive::Forwarder::start(app.url(), **archive, keys, outcomes.observer());
    REQUIRE(forwarder);
    (*forwarder)->enqueue(event("evt_a"));
    (*forwarder)->enqueue(event("evt_b"));
    (*forwarder)->close(); // forwards what is queued, then stops

    REQUIRE(outcomes.list.size() == 2);
    CHECK(outcomes.list[0].event_id == "evt_a");
    CHECK(outcomes.list[0].delivered);
    CHECK(outcomes.list[0].http_status == 200);
    CHECK(outcomes.list[0].attempts == 1);
    CHECK(outcomes.list[0].reason.empty());
    // A 422 is permanent: no retry, `failed` with the reason.
    CHECK(outcomes.list[1].event_id == "evt_b");
    CHECK_FALSE(outcomes.list[1].delivered);
    CHECK(outcomes.list[1].http_status == 422);
    CHECK(outcomes.list[1].attempts == 1);
    CHECK(outcomes.list[1].reason == "http_422");

    auto requests = app.seen();
    REQUIRE(requests.size() == 2);
    auto set = keys.current(0);
    auto primary = std::vector<keys::Key>{set->raw[0]};
    auto older = std::vector<keys::Key>{set->raw[1]};
    for (std::size_t i = 0; i < 2; ++i) {
        const auto& r = requests[i];
        std::string id = i == 0 ? "evt_a" : "evt_b";
        CHECK(r.body == R"({"id":")" + id + R"("})");
        CHECK(r.header("Idempotency-Key") == id);
        CHECK(r.header("traceparent").starts_with("00-" + k_trace + "-"));
        auto headers = util::parse_header_block(r.head, "request");
        REQUIRE(headers);
        auto ts = std::stoll(std::string(headers->find("X-Signature-Timestamp").value()));
        CHECK(test::verify_ok(sig::Scheme::mailparse, *headers, primary, r.body, ts).ok());
        CHECK_FALSE(test::verify_ok(sig::Scheme::mailparse, *headers, older, r.body, ts).ok());
    }

    auto db = archive::open(path);
    REQUIRE(db);
    auto a = (*db)->get_event("evt_a");
    REQUIRE(a);
    REQUIRE(*a);
    CHECK((*a)->status == archive::EventStatus::delivered);
    auto b = (*db)->get_event("evt_b");
    REQUIRE(b);
    REQUIRE(*b);
    CHECK((*b)->status == archive::EventStatus::failed);
    CHECK((*b)->last_error == "http_422");
    auto attempts = (*db)->attempts_for("evt_b");
    REQUIRE(attempts);
    REQUIRE(attempts->size() == 1);
    const auto& row = attempts->front();
    CHECK(row.target == app.url());
    CHECK(row.attempt == 1);
    CHECK(row.http_status == 422);
    CHECK(row.outcome == archive::AttemptOutcome::failed);
    CHECK(row.reason == "http_422");
    CHECK(row.detail == "missing field: to"); // what the application said
    auto delivered = (*db)->attempts_for("evt_a");
    REQUIRE(delivered);
    REQUIRE(delivered->size() == 1);
    CHECK(delivered->front().outcome == archive::AttemptOutcome::delivered);
    CHECK(delivered->front().detail.empty());
}

TEST_CASE("receive::Forwarder forwards nothing enqueued after close") {
    TempDir dir;
    auto path = stored(dir, {"evt_late"});
    RecordingServer app;
    auto keys = key_store();
    Outcomes outcomes;
    auto archive = archive::open(path); // the receiver's handle
    REQUIRE(archive);
    auto forwarder = receive::Forwarder::start(app.url(), **archive, keys, outcomes.observer());
    REQUIRE(forwarder);
    (*forwarder)->close();
    (*forwarder)->enqueue(event("evt_late"));
    (*forwarder)->close(); // a second close is harmless
    CHECK(outcomes.list.empty());
    CHECK(app.seen().empty());
}

TEST_CASE("receive::Forwarder fails to start when it cannot open its own connection to the "
          "archive, naming it") {
    TempDir dir;
    auto keys = key_store();
    auto folder = dir.path / "gone";
    std::filesystem::create_directories(folder);
    auto path = (folder / "events.db").string();
    auto archive = archive::open(path);
    REQUIRE(archive);
    std::filesystem::remove_all(folder); // its connection of its own cannot be opened now
    auto forwarder = receive::Forwarder::start("http://127.0.0.1:9/", **archive, keys, {});
    REQUIRE_FALSE(forwarder);
    CHECK(forwarder.error().message.find(path) != std::string::npos);
}
