#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace hookctl::util {

// Watches files for changes by polling stat(): device, inode, size, modification and status
// change times, so
// an atomic replace (write a temporary file, rename it over) is seen as well as an edit in
// place, and a file that disappears or comes back counts as a change. Calls `on_change` from
// its own thread (which blocks the stop signals) at most once per poll, after the change.
// Polling keeps it simple and works on every filesystem; a few stat() calls per interval cost
// nothing next to a receiver's work. Stops and joins in the destructor.
class FileWatcher {
public:
    FileWatcher(std::vector<std::string> paths, std::chrono::milliseconds interval,
                std::function<void()> on_change);
    ~FileWatcher();

    FileWatcher(const FileWatcher&) = delete;
    FileWatcher& operator=(const FileWatcher&) = delete;

private:
    std::jthread m_thread;
};

} // namespace hookctl::util
