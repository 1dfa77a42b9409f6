#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <hookctl/util/error.hpp>
#include <hookctl/util/headers.hpp>

namespace hookctl::receive {

// An event as the receiver accepted it, ready to be stored.
struct IncomingEvent {
    std::string event_id;
    std::string org_id;
    std::string scheme;              // the scheme it was verified with
    std::int64_t received_at_ms = 0; // Unix milliseconds
    util::HeaderList headers;        // as received
    std::string body;                // raw bytes, as signed
    std::string trace_id;            // from traceparent, may be empty
    std::string verified_by;         // fingerprint of the key that verified it
    std::string client_identity;     // verified TLS client certificate subject, may be empty
};

enum class StoreResult { inserted, duplicate, failed };

// Where accepted events go: the archive, or a fake in tests. `insert_batch` stores every event
// in one transaction (one commit for the batch; it may move from `events`) and says for each
// whether it was new or a
// duplicate of a stored event id (also within the batch); on error nothing is stored.
class EventStore {
public:
    virtual ~EventStore() = default;
    virtual Result<std::vector<StoreResult>> insert_batch(std::vector<IncomingEvent>& events) = 0;
    // Whether the store can be reached now (a database server that may be down); called by the
    // writer thread while it is idle.
    virtual Result<void> check() { return {}; }
};

// Group commit: one writer thread takes every event queued since its last transaction and
// stores them in one `insert_batch`, so durability costs one commit per batch, not per request,
// and the request threads never touch the archive. `done` runs on the writer thread after the
// commit (or the failure) with the event's result; when the store fails, every event of the
// batch gets `failed`, and so does every event queued while it was being tried (it would wait
// as long again for the same archive: a locked archive answers each request within one lock
// wait, not one per batch ahead of it); the next event submitted is tried afresh.
class GroupCommitter {
public:
    using Done = std::function<void(StoreResult)>;
    // Called on the writer thread after each transaction with the batch size (metrics).
    using BatchObserver = std::function<void(std::size_t size, const Error* error)>;

    // `probe_every`: while no event is queued for that long, the writer checks the store
    // (EventStore::check), so health follows an archive that went away or came back without
    // traffic (a load balancer that took the receiver out sends none).
    GroupCommitter(EventStore& store, std::size_t max_batch, BatchObserver observer = {},
                   std::chrono::milliseconds probe_every = std::chrono::seconds(2));
    GroupCommitter(const GroupCommitter&) = delete;
    GroupCommitter& operator=(const GroupCommitter&) = delete;
    // Commits what is queued, then stops the writer.
    ~GroupCommitter();

    void submit(IncomingEvent event, Done done);

    // Commits everything queued and stops the writer; later submits fail at once.
    void close();

    std::uint64_t batches() const;

    // False while the last write or check of the store failed; `why` says what failed then.
    bool healthy(std::string* why = nullptr) const;

private:
    void run();

    struct Pending {
        IncomingEvent event;
        Done done;
    };
    EventStore& m_store;
    std::size_t m_max_batch;
    BatchObserver m_observer;
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    std::vector<Pending> m_queue;
    bool m_closing = false;
    std::uint64_t m_batches = 0;
    std::chrono::milliseconds m_probe_every;
    bool m_healthy = true;
    std::string m_health_error;
    std::thread m_writer;
};

} // namespace hookctl::receive
