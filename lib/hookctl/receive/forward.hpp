#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <hookctl/http/client.hpp>
#include <hookctl/receive/keyset.hpp>
#include <hookctl/sig/scheme.hpp>
#include <hookctl/util/error.hpp>

namespace hookctl::archive {
class Store;
}

namespace hookctl::receive {

// An event stored by the receiver, to be forwarded to the local application.
struct StoredEvent {
    std::string event_id;
    std::string scheme; // the scheme it was verified with
    std::string body;
    std::string trace_id;
};

// What one forward did, for the log.
struct ForwardOutcome {
    std::string event_id;
    bool delivered = false;
    int http_status = 0;
    std::string reason; // e.g. `http_500`, `connect_refused` (empty when delivered)
    std::string detail; // the last transport error in words (a TLS problem and its fix), if any
    int attempts = 0;
};

// `listen --forward-to URL`: a thread that re-signs each stored event with the same scheme and
// the current primary secret (a fresh timestamp per attempt), POSTs it with hookctl's HTTP
// client (keep-alive, retries with backoff on 408/429/5xx and connection errors), and records
// every attempt on the event in the archive (its status becomes `delivered` or `failed` with
// the reason). Events are forwarded one at a time, in the order they were stored.
class Forwarder {
public:
    using Observer = std::function<void(const ForwardOutcome&)>;

    // Opens a connection of its own to `archive` (the receiver's archive, through its handle)
    // and an HTTP client with `client_options` (the CAs trusted: --cacert/--capath). Fails
    // (exit 4) when either cannot be opened.
    static Result<std::unique_ptr<Forwarder>> start(std::string url, const archive::Store& archive,
                                                    KeyStore& keys, Observer observer,
                                                    const http::ClientOptions& client_options = {});
    ~Forwarder();

    void enqueue(StoredEvent event);
    // Forwards what is queued (each with its retries), then stops.
    void close();

private:
    struct Impl;
    explicit Forwarder(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

} // namespace hookctl::receive
