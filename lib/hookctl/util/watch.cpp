#include <condition_variable>
#include <mutex>
#include <sys/stat.h>

#include <hookctl/util/signals.hpp>
#include <hookctl/util/watch.hpp>

namespace hookctl::util {
namespace {

struct Stamp {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0; // also moves on chmod/chown: a keyring made readable is refused

    bool operator==(const Stamp&) const = default;
};

Stamp stamp_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return {};
    }
    auto ns = [](const timespec& t) {
        return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
    };
    return {true, st.st_dev, st.st_ino, st.st_size, ns(st.st_mtim), ns(st.st_ctim)};
}

} // namespace

FileWatcher::FileWatcher(std::vector<std::string> paths, std::chrono::milliseconds interval,
                         std::function<void()> on_change) {
    if (paths.empty()) {
        return;
    }
    // The first stamps are taken before the constructor returns, so a change made right after
    // it is seen even when the thread has not run yet.
    std::vector<Stamp> first;
    first.reserve(paths.size());
    for (const auto& path : paths) {
        first.push_back(stamp_of(path));
    }
    m_thread = std::jthread([paths = std::move(paths), last = std::move(first), interval,
                             on_change = std::move(on_change)](std::stop_token stop) mutable {
        block_stop_signals();
        std::mutex mutex;
        std::condition_variable_any wake;
        std::unique_lock lock(mutex);
        while (!stop.stop_requested()) {
            wake.wait_for(lock, stop, interval, [] { return false; });
            if (stop.stop_requested()) {
                break;
            }
            bool changed = false;
            for (std::size_t i = 0; i < paths.size(); ++i) {
                auto now = stamp_of(paths[i]);
                if (!(now == last[i])) {
                    last[i] = now;
                    changed = true;
                }
            }
            if (changed) {
                on_change();
            }
        }
    });
}

FileWatcher::~FileWatcher() = default; // jthread requests stop and joins

} // namespace hookctl::util
