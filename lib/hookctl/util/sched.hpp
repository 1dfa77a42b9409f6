#pragma once

#include <chrono>

namespace hookctl::util {

// Asks the kernel to run the calling thread in short slices of `slice` (Linux 6.12 and later,
// the EEVDF scheduler: sched_setattr with sched_runtime on an ordinary, SCHED_OTHER thread;
// no privilege needed). A thread that sleeps to a deadline and then works briefly (a pacer)
// is then picked soon after it wakes instead of waiting out another thread's longer slice.
// Only a hint: false when the kernel does not take it, and nothing else changes.
bool request_short_slice(std::chrono::microseconds slice);

} // namespace hookctl::util
