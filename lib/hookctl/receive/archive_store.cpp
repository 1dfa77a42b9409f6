#include <hookctl/archive/archive.hpp>
#include <hookctl/receive/archive_store.hpp>

namespace hookctl::receive {
namespace {

class ArchiveStore final : public EventStore {
public:
    explicit ArchiveStore(std::unique_ptr<archive::Store> archive)
        : m_archive(std::move(archive)) {}

    Result<std::vector<StoreResult>> insert_batch(std::vector<IncomingEvent>& events) override {
        m_batch.clear();
        m_batch.reserve(events.size());
        for (auto& e : events) {
            archive::NewEvent n;
            n.event_id = std::move(e.event_id);
            n.received_at_ms = e.received_at_ms;
            n.org_id = std::move(e.org_id);
            n.scheme = std::move(e.scheme);
            n.headers = std::move(e.headers);
            n.body = std::move(e.body);
            n.trace_id = std::move(e.trace_id);
            n.verified_by = std::move(e.verified_by);
            n.client_identity = std::move(e.client_identity);
            n.source = "listen";
            m_batch.push_back(std::move(n));
        }
        auto inserted = m_archive->insert_events(m_batch);
        if (!inserted) {
            // A write that failed (a full disk, most often) leaves the WAL as large as it grew:
            // move what it holds into the database and truncate it, so the space it held is
            // free for the next batch. Without waiting: when another process holds the lock,
            // the next batch must not wait for it twice.
            (void)m_archive->checkpoint(std::chrono::milliseconds(0));
            return std::unexpected(inserted.error());
        }
        std::vector<StoreResult> out;
        out.reserve(inserted->size());
        for (auto r : *inserted) {
            out.push_back(r == archive::InsertResult::inserted ? StoreResult::inserted
                                                               : StoreResult::duplicate);
        }
        return out;
    }

    Result<void> check() override { return m_archive->ping(); }

private:
    std::unique_ptr<archive::Store> m_archive;
    std::vector<archive::NewEvent> m_batch;
};

} // namespace

archive::OpenOptions archive_store_options(bool synchronous_full,
                                           std::chrono::milliseconds lock_wait,
                                           std::shared_ptr<const archive::BodyCipher> cipher) {
    archive::OpenOptions options;
    options.mode = archive::Mode::create;
    options.synchronous_full = synchronous_full;
    options.busy_timeout = lock_wait;
    options.cipher = std::move(cipher);
    return options;
}

Result<std::unique_ptr<EventStore>> archive_event_store(std::unique_ptr<archive::Store> store) {
    // Refused now rather than as a 503 for every event: bodies this store could not write.
    if (auto ready = store->prepare_body_writes(); !ready) {
        return std::unexpected(ready.error());
    }
    return std::make_unique<ArchiveStore>(std::move(store));
}

Result<std::unique_ptr<EventStore>>
open_archive_store(const std::string& path, bool synchronous_full,
                   std::chrono::milliseconds lock_wait,
                   std::shared_ptr<const archive::BodyCipher> cipher) {
    auto opened =
        archive::open(path, archive_store_options(synchronous_full, lock_wait, std::move(cipher)));
    HOOKCTL_RETURN_IF_ERROR(opened);
    return archive_event_store(std::move(*opened));
}

} // namespace hookctl::receive
