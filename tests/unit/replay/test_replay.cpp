// replay::dry_run, start_run and resume_run over one archive handle: the source is counted,
// the run recorded and sent, and the run looked up again through the handle the command opened,
// against a real HTTP server on loopback and a real archive file.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <hookctl/archive/archive.hpp>
#include <hookctl/replay/replay.hpp>

#include "../loopback_server.hpp"
#include "../temp_dir.hpp"

using namespace hookctl;

namespace {

namespace fs = std::filesystem;
using testing::RecordingServer;
using testing::TempDir;

// Points $XDG_STATE_HOME (where runs are indexed) at `dir` for the test's life.
class StateHome {
public:
    explicit StateHome(const fs::path& dir) {
        if (const char* old = std::getenv("XDG_STATE_HOME"); old != nullptr) {
            m_old = old;
        }
        ::setenv("XDG_STATE_HOME", dir.c_str(), 1);
    }
    ~StateHome() {
        if (m_old) {
            ::setenv("XDG_STATE_HOME", m_old->c_str(), 1);
        } else {
            ::unsetenv("XDG_STATE_HOME");
        }
    }
    StateHome(const StateHome&) = delete;
    StateHome& operator=(const StateHome&) = delete;

private:
    std::optional<std::string> m_old;
};

std::string make_archive(const TempDir& dir, const std::vector<std::string>& failed_ids) {
    auto path = dir.file("events.db");
    auto db = archive::open(path);
    REQUIRE(db);
    std::vector<archive::NewEvent> events;
    for (const auto& id : failed_ids) {
        archive::NewEvent e;
        e.event_id = id;
        e.received_at_ms = 1000;
        e.body = R"({"id":")" + id + R"("})";
        e.status = archive::EventStatus::failed;
        events.push_back(std::move(e));
    }
    REQUIRE((*db)->insert_events(events));
    return path;
}

replay::Plan plan_for(const TempDir& dir, const std::string& archive_path, const std::string& url) {
    replay::Plan plan;
    plan.source.kind = replay::SourceKind::archive;
    plan.source.path = archive_path;
    plan.delivery.to = url;
    auto secret = dir.file("secret");
    std::ofstream(secret) << "0123456789abcdef0123456789abcdef";
    fs::permissions(secret, fs::perms::owner_read | fs::perms::owner_write);
    plan.delivery.secrets = {{keys::SecretSource::Kind::file, secret}};
    plan.delivery.retries = 0;
    plan.rate = util::Rate{}; // max: as fast as the target answers
    return plan;
}

} // namespace

TEST_CASE("replay: one archive handle serves the dry run's count, the run's records and the "
          "resume's run lookup") {
    TempDir dir;
    StateHome state(dir.path / "state");
    auto path = make_archive(dir, {"e1", "e2"});
    RecordingServer target;
    target.answer(200);
    target.answer(200);
    auto plan = plan_for(dir, path, target.url());
    replay::Invocation how;
    how.started_by = "test@host";

    // What `replay --from` opens, once.
    auto opened = replay::open_source_archive(plan.source);
    REQUIRE(opened);
    archive::Store& store = **opened;

    // The dry run counts and lists through the handle: with the file moved away, a count that
    // opened the path again would fail.
    auto moved = dir.file("moved.db");
    fs::rename(path, moved);
    auto dry = replay::dry_run(plan, how, &store);
    REQUIRE(dry);
    CHECK(dry->count == 2);
    REQUIRE(dry->first.size() == 2);
    CHECK(dry->first[0].event_id == "e1");
    fs::rename(moved, path);

    // The run is recorded and sent through the same handle (its threads take connections of
    // their own through it).
    std::atomic<int> stop{0};
    auto ran = replay::start_run(plan, store, how, {}, stop);
    REQUIRE(ran);
    CHECK(ran->recorded);
    CHECK(ran->end == replay::RunEnd::completed);
    CHECK(ran->archive_path == path);
    CHECK(ran->progress.run_delivered == 2);
    CHECK(ran->progress.pending == 0);
    CHECK(target.seen().size() == 2);

    // What the recorder committed, read through the handle.
    auto run = store.get_run(ran->progress.run_id);
    REQUIRE(run);
    REQUIRE(run->has_value());
    CHECK((*run)->state == archive::RunState::completed);
    auto e1 = store.get_event("e1");
    REQUIRE(e1);
    CHECK((*e1)->status == archive::EventStatus::delivered);

    // A resume looks the run up through the handle: completed, nothing to resume.
    auto resumed = replay::resume_run(ran->progress.run_id, {}, store, how, {}, stop);
    REQUIRE_FALSE(resumed);
    CHECK(resumed.error().code == ExitCode::usage);
    CHECK(resumed.error().message.find("already completed") != std::string::npos);
}
