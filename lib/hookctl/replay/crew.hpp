#pragma once

// hookctl::replay::Crew: what a worker of a run shared by several workers (replay --join;
// hookctl-replay(1), WORKERS) takes from the run instead of deciding alone (ARCHITECTURE.md,
// "Seams"): its send slots (the run's rate is the total over the workers), the pauses a 429
// asks of every worker, and whether another worker stopped the run. The real one is SharedRun
// (shared.hpp, on the run's PostgreSQL archive); unit tests hand out slots on fake time.

#include <chrono>
#include <optional>
#include <string>

#include <hookctl/util/clock.hpp>

namespace hookctl::replay {

class Crew {
public:
    using Time = util::Clock::SteadyTime;

    virtual ~Crew() = default;

    // When the first send slot this worker holds is due; nothing when it holds none (taking
    // one asks for more, and the sender is woken when they come).
    virtual std::optional<Time> next_due() = 0;
    // Takes the first slot held if it is due at `now` and returns when it was due; nothing
    // when none is due (or none is held). A slot missed by more than a few milliseconds is
    // dropped, never sent late in a burst: the run's rate holds in every second.
    virtual std::optional<Time> try_take(Time now) = 0;
    // The target asked to wait `pause` (429 Retry-After): no worker sends before it is over.
    virtual void pause(std::chrono::milliseconds pause) = 0;
    // Why the run was stopped for every worker (another worker's circuit breaker), or nothing.
    virtual std::optional<std::string> halted() = 0;
};

} // namespace hookctl::replay
