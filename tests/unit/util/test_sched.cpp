#include <algorithm>
#include <cerrno>
#include <sched.h>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

#include <doctest/doctest.h>

#include <hookctl/util/sched.hpp>

using namespace std::chrono_literals;

TEST_CASE("util::request_short_slice keeps the thread's policy and nice value") {
    // On a thread of its own: the hint applies to the calling thread only.
    int policy_after = -1;
    int nice_after = 0;
    errno = 0;
    const int nice_before = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    int nice_other = 0;
    const int nice_target = std::min(nice_before + 5, 19); // 19 is the weakest
    int niced = -1;
    std::thread t([&] {
        niced = ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice_target);
        (void)hookctl::util::request_short_slice(100us); // a hint: refused on older kernels
        policy_after = ::sched_getscheduler(0);
        errno = 0;
        nice_after = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    });
    t.join();
    REQUIRE(niced == 0);
    errno = 0;
    nice_other = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    CHECK(policy_after == SCHED_OTHER);
    CHECK(nice_after == nice_target); // not reset to 0, which root could do by accident
    CHECK(nice_other == nice_before); // the test's own thread is untouched
}
