#include <chrono>

#include <hookctl/archive/archive.hpp>
#include <hookctl/http/client.hpp>
#include <hookctl/http/deliver.hpp>
#include <hookctl/http/retry.hpp>
#include <hookctl/receive/forward.hpp>
#include <hookctl/util/signals.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::receive {

struct Forwarder::Impl {
    std::string url;
    std::unique_ptr<archive::Store> archive;
    http::Client client;
    KeyStore& keys;
    Observer observer;
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<StoredEvent> queue;
    bool closing = false;
    std::thread worker;

    void run() {
        for (;;) {
            StoredEvent event;
            {
                std::unique_lock lock(mutex);
                wake.wait(lock, [this] { return closing || !queue.empty(); });
                if (queue.empty()) {
                    return;
                }
                event = std::move(queue.front());
                queue.pop_front();
            }
            forward(event);
        }
    }

    void forward(const StoredEvent& event) {
        ForwardOutcome outcome;
        outcome.event_id = event.event_id;
        auto now_s = util::unix_now_s();
        http::Endpoint endpoint;
        endpoint.url = url;
        auto scheme = sig::parse_scheme(event.scheme);
        endpoint.scheme = scheme ? *scheme : sig::Scheme::mailparse;
        auto set = keys.current(now_s);
        const auto& candidates = set->for_scheme(endpoint.scheme);
        if (!candidates.empty()) {
            endpoint.keys.push_back(candidates.front()); // the primary: "the same secret"
        }
        util::HeaderList extra;
        extra.add("traceparent", http::make_traceparent(event.trace_id));
        http::RetryPolicy policy;
        policy.retries = 3; // a local application: a few quick retries, then `failed`
        policy.backoff_base = std::chrono::milliseconds(200);
        policy.backoff_max = std::chrono::milliseconds(2000);
        std::vector<archive::Attempt> attempts;
        auto result = http::deliver(
            client, endpoint, event.event_id, event.body, extra, policy,
            [&](const http::Attempt& a) {
                archive::Attempt row;
                row.event_id = event.event_id;
                row.target = url;
                row.attempt = a.number;
                row.at_ms = util::unix_now_ms();
                row.http_status = static_cast<int>(a.response.status);
                row.latency_ms = static_cast<double>(a.response.latency.count()) / 1000.0;
                row.outcome = a.response.ok() ? archive::AttemptOutcome::delivered
                                              : archive::AttemptOutcome::retry;
                row.reason = a.response.ok() ? std::string() : a.decision.reason;
                if (!a.response.ok()) {
                    row.detail = a.response.status != 0
                                     ? a.response.body.substr(0, archive::k_detail_limit)
                                     : a.response.transport_error;
                }
                attempts.push_back(std::move(row));
            });
        if (!result) {
            outcome.reason = result.error().message;
        } else {
            outcome.delivered = result->delivered;
            outcome.reason = result->delivered ? "" : result->reason;
            outcome.attempts = static_cast<int>(result->attempts.size());
            if (!result->attempts.empty()) {
                const auto& last = result->attempts.back().response;
                outcome.http_status = static_cast<int>(last.status);
                if (!outcome.delivered) {
                    outcome.detail = last.transport_error;
                }
            }
        }
        if (attempts.empty()) {
            archive::Attempt row;
            row.event_id = event.event_id;
            row.target = url;
            row.outcome = archive::AttemptOutcome::failed;
            row.reason = outcome.reason;
            attempts.push_back(std::move(row));
        }
        attempts.back().outcome = outcome.delivered ? archive::AttemptOutcome::delivered
                                                    : archive::AttemptOutcome::failed;
        attempts.back().new_status =
            outcome.delivered ? archive::EventStatus::delivered : archive::EventStatus::failed;
        if (!outcome.delivered) {
            attempts.back().reason = outcome.reason;
        }
        auto recorded = archive->record_attempts(attempts);
        if (!recorded && outcome.reason.empty()) {
            outcome.reason = "delivered, but not recorded: " + recorded.error().message;
        }
        if (observer) {
            observer(outcome);
        }
    }

    Impl(std::string u, std::unique_ptr<archive::Store> a, http::Client c, KeyStore& k, Observer o)
        : url(std::move(u))
        , archive(std::move(a))
        , client(std::move(c))
        , keys(k)
        , observer(std::move(o)) {}
};

Forwarder::Forwarder(std::unique_ptr<Impl> impl)
    : m_impl(std::move(impl)) {
    m_impl->worker = std::thread([impl = m_impl.get()] {
        util::block_stop_signals();
        impl->run();
    });
}

Forwarder::~Forwarder() {
    close();
}

Result<std::unique_ptr<Forwarder>> Forwarder::start(std::string url, const archive::Store& archive,
                                                    KeyStore& keys, Observer observer,
                                                    const http::ClientOptions& client_options) {
    archive::OpenOptions options;
    options.mode = archive::Mode::create;
    auto opened = archive.another(options);
    HOOKCTL_RETURN_IF_ERROR(opened);
    auto client = http::Client::create(client_options);
    HOOKCTL_RETURN_IF_ERROR(client);
    auto impl = std::make_unique<Impl>(std::move(url), std::move(*opened), std::move(*client), keys,
                                       std::move(observer));
    return std::unique_ptr<Forwarder>(new Forwarder(std::move(impl)));
}

void Forwarder::enqueue(StoredEvent event) {
    {
        std::lock_guard lock(m_impl->mutex);
        if (m_impl->closing) {
            return;
        }
        m_impl->queue.push_back(std::move(event));
    }
    m_impl->wake.notify_one();
}

void Forwarder::close() {
    if (!m_impl) {
        return;
    }
    {
        std::lock_guard lock(m_impl->mutex);
        m_impl->closing = true;
    }
    m_impl->wake.notify_all();
    if (m_impl->worker.joinable()) {
        m_impl->worker.join();
    }
}

} // namespace hookctl::receive
