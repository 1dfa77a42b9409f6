#include <chrono>
#include <condition_variable>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <thread>

#include <doctest/doctest.h>

#include <hookctl/util/watch.hpp>

#include "../temp_dir.hpp"

namespace fs = std::filesystem;
using namespace hookctl;
using namespace std::chrono_literals;
using testing::TempDir;

namespace {

// Counts the watcher's calls; waits for the next one. The watcher polls on its own thread with
// the real clock, so these tests wait for an event with a generous limit (never a tight bound)
// and poll every millisecond.
class Calls {
public:
    std::function<void()> callback() {
        return [this] {
            std::lock_guard lock(m_mutex);
            ++m_count;
            m_changed.notify_all();
        };
    }
    // True when the count rose above `seen` within 10 s.
    bool wait_above(int seen) {
        std::unique_lock lock(m_mutex);
        return m_changed.wait_for(lock, 10s, [&] { return m_count > seen; });
    }
    int count() {
        std::lock_guard lock(m_mutex);
        return m_count;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_changed;
    int m_count = 0;
};

} // namespace

TEST_CASE("util::FileWatcher sees a file replaced by rename, once per change") {
    TempDir dir;
    auto path = dir.path / "keyring.json";
    dir.write("keyring.json", "one");
    Calls calls;
    util::FileWatcher watcher({path.string()}, 1ms, calls.callback());
    // Same size and the same modification time: a check of the time and size alone misses it.
    dir.write("keyring.json.tmp", "two");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    timespec times[2] = {st.st_atim, st.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, (dir.path / "keyring.json.tmp").c_str(), times, 0) == 0);
    fs::rename(dir.path / "keyring.json.tmp", path);
    REQUIRE(calls.wait_above(0));
    // Nothing changes after it: no more calls, however many polls pass.
    std::this_thread::sleep_for(30ms);
    CHECK(calls.count() == 1);
}

TEST_CASE("util::FileWatcher counts a file that disappears and one that comes back") {
    TempDir dir;
    auto path = dir.path / "secret";
    dir.write("secret", "s");
    Calls calls;
    util::FileWatcher watcher({(dir.path / "absent").string(), path.string()}, 1ms,
                              calls.callback());
    fs::remove(path);
    REQUIRE(calls.wait_above(0));
    int after_removal = calls.count();
    dir.write("absent", "now here");
    REQUIRE(calls.wait_above(after_removal));
}

TEST_CASE("util::FileWatcher sees a change of mode (a keyring made readable to others)") {
    TempDir dir;
    auto path = dir.path / "keyring.json";
    dir.write("keyring.json", "k");
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    Calls calls;
    util::FileWatcher watcher({path.string()}, 1ms, calls.callback());
    fs::permissions(path, fs::perms::others_read, fs::perm_options::add);
    REQUIRE(calls.wait_above(0));
}

TEST_CASE("util::FileWatcher stops at once when destroyed, however long its interval") {
    TempDir dir;
    dir.write("f", "x");
    Calls calls;
    {
        util::FileWatcher watcher({(dir.path / "f").string()}, 1h, calls.callback());
    } // joins here: a watcher that slept out its interval would hang the test
    util::FileWatcher nothing({}, 1ms, calls.callback()); // no paths: no thread at all
    CHECK(calls.count() == 0);
}
