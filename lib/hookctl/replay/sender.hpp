#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include <hookctl/http/client.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::replay {

// How the replay engine sends requests (ARCHITECTURE.md, "Seams"): the real one drives
// libcurl's multi interface (http::Client); unit tests answer from a seeded fault schedule on
// fake time. Driven from one thread.
class Sender {
public:
    using Completion = std::function<void(http::Response&&)>;

    virtual ~Sender() = default;

    // Queues `request`; `done` runs from inside poll_until() when it finishes.
    virtual void start(http::Request request, Completion done) = 0;
    // Drives requests until `deadline`, returning early when at least one finished (its
    // completion has run) or wakeup() was called. Fails (exit 4) when the transport fails.
    virtual Result<void> poll_until(std::chrono::steady_clock::time_point deadline) = 0;
    // Requests started and not yet completed.
    virtual std::size_t in_flight() const = 0;
    // Makes a poll in progress (or the next one) return; thread-safe.
    virtual void wakeup() = 0;
};

// The Sender over `client` (which must outlive it).
std::unique_ptr<Sender> client_sender(http::Client& client);

} // namespace hookctl::replay
