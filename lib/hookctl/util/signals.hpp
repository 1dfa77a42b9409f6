#pragma once

namespace hookctl::util {

// Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in the calling thread. Worker threads call it first so
// a shutdown signal always reaches the thread that handles it (or, late in shutdown, none, and it
// stays pending) instead of killing the process with the default action.
void block_stop_signals();

} // namespace hookctl::util
