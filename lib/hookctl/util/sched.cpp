#include <cerrno>
#include <cstdint>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <hookctl/util/sched.hpp>

namespace hookctl::util {
namespace {

// The kernel's struct sched_attr (include/uapi/linux/sched/types.h); glibc 2.36 has no
// wrapper for sched_setattr.
struct SchedAttr {
    std::uint32_t size;
    std::uint32_t sched_policy;
    std::uint64_t sched_flags;
    std::int32_t sched_nice;
    std::uint32_t sched_priority;
    std::uint64_t sched_runtime;
    std::uint64_t sched_deadline;
    std::uint64_t sched_period;
};

} // namespace

bool request_short_slice(std::chrono::microseconds slice) {
#ifdef SYS_sched_setattr
    if (::sched_getscheduler(0) != SCHED_OTHER) {
        return false; // a batch, idle or real-time thread keeps what it was given
    }
    errno = 0;
    int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    if (nice == -1 && errno != 0) {
        return false;
    }
    SchedAttr attr{};
    attr.size = sizeof attr;
    attr.sched_policy = SCHED_OTHER;
    attr.sched_nice = nice; // unchanged: `nice hookctl ...` stays niced
    attr.sched_runtime =
        static_cast<std::uint64_t>(std::chrono::nanoseconds(slice).count()); // the slice
    return ::syscall(SYS_sched_setattr, 0, &attr, 0U) == 0;
#else
    (void)slice;
    return false;
#endif
}

} // namespace hookctl::util
