#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <hookctl/archive/copy.hpp>

namespace hookctl::archive {
namespace {

NewEvent as_new(const Event& e) {
    NewEvent n;
    n.event_id = e.event_id;
    n.received_at_ms = e.received_at_ms;
    n.org_id = e.org_id;
    n.scheme = e.scheme;
    n.headers = e.headers;
    n.body = e.body;
    n.raw_mime = e.raw_mime;
    n.status = e.status;
    n.attempts = e.attempts;
    n.last_error = e.last_error;
    n.trace_id = e.trace_id;
    n.source = e.source;
    n.verified_by = e.verified_by;
    n.client_identity = e.client_identity;
    n.updated_at_ms = e.updated_at_ms;
    return n;
}

class Copier {
public:
    Copier(Store& from, Store& to, const CopyOptions& options)
        : m_from(from)
        , m_to(to)
        , m_options(options)
        , m_batch(std::max<std::size_t>(1, options.batch)) {}

    Result<CopyProgress> run() {
        if (auto ready = m_to.prepare_body_writes(); !ready) {
            return std::unexpected(ready.error());
        }
        EventFilter all;
        auto total = m_from.count_events(all);
        HOOKCTL_RETURN_IF_ERROR(total);
        m_progress.events_total = *total;
        for (auto step : {&Copier::events, &Copier::runs, &Copier::attempts}) {
            if (auto done = (this->*step)(); !done) {
                return std::unexpected(done.error());
            }
        }
        m_progress.finished = true;
        if (m_options.progress) {
            m_options.progress(m_progress);
        }
        return m_progress;
    }

private:
    // After a committed batch: false when the caller asked to stop.
    Result<void> committed() {
        if (m_options.progress && !m_options.progress(m_progress)) {
            return fail(ExitCode::aborted,
                        "copy from " + m_from.path() + " to " + m_to.path() +
                            " interrupted after " + std::to_string(m_progress.events.copied) +
                            " event(s), " + std::to_string(m_progress.runs.copied) + " run(s), " +
                            std::to_string(m_progress.attempts.copied) +
                            " attempt(s) copied: run the same command again to copy the rest");
        }
        return {};
    }

    Result<void> flush_events(std::vector<NewEvent>& batch) {
        if (batch.empty()) {
            return {};
        }
        auto results = m_to.insert_events(batch);
        HOOKCTL_RETURN_IF_ERROR(results);
        for (auto r : *results) {
            ++(r == InsertResult::inserted ? m_progress.events.copied : m_progress.events.present);
        }
        m_progress.events.read += batch.size();
        batch.clear();
        return committed();
    }

    Result<void> events() {
        m_progress.stage = "events";
        std::vector<NewEvent> batch;
        batch.reserve(m_batch);
        std::optional<Error> failed;
        EventFilter all;
        all.with_body = true;
        auto visited = m_from.for_each_event(all, [&](const Event& e) {
            batch.push_back(as_new(e));
            if (batch.size() >= m_batch) {
                if (auto done = flush_events(batch); !done) {
                    failed = done.error();
                    return false;
                }
            }
            return true;
        });
        if (failed) {
            return std::unexpected(*failed);
        }
        HOOKCTL_RETURN_IF_ERROR(visited);
        return flush_events(batch);
    }

    Result<void> runs() {
        m_progress.stage = "runs";
        auto listed = m_from.list_runs();
        HOOKCTL_RETURN_IF_ERROR(listed);
        // Oldest first, so the destination lists them in the same order.
        for (auto it = listed->rbegin(); it != listed->rend(); ++it) {
            auto stored = m_to.copy_run(*it);
            HOOKCTL_RETURN_IF_ERROR(stored);
            ++m_progress.runs.read;
            ++(*stored ? m_progress.runs.copied : m_progress.runs.present);
            std::int64_t after = 0;
            while (true) {
                std::vector<RunItemCopy> items;
                auto read = m_from.for_each_run_item(it->run_id, after, m_batch,
                                                     [&](const RunItemCopy& item) {
                                                         items.push_back(item);
                                                         return true;
                                                     });
                HOOKCTL_RETURN_IF_ERROR(read);
                if (items.empty()) {
                    break;
                }
                after = items.back().item.item;
                auto copied = m_to.copy_run_items(it->run_id, items);
                HOOKCTL_RETURN_IF_ERROR(copied);
                m_progress.run_items.read += items.size();
                m_progress.run_items.copied += *copied;
                m_progress.run_items.present += items.size() - *copied;
                if (auto done = committed(); !done) {
                    return done;
                }
                if (items.size() < m_batch) {
                    break;
                }
            }
            if (auto done = committed(); !done) {
                return done;
            }
        }
        return {};
    }

    Result<void> attempts() {
        m_progress.stage = "attempts";
        std::int64_t after = 0;
        while (true) {
            std::vector<Attempt> batch;
            auto read =
                m_from.for_each_attempt(after, m_batch, [&](const Attempt& a, std::string_view) {
                    batch.push_back(a);
                    return true;
                });
            HOOKCTL_RETURN_IF_ERROR(read);
            if (batch.empty()) {
                break;
            }
            after = batch.back().id;
            auto copied = m_to.copy_attempts(batch);
            HOOKCTL_RETURN_IF_ERROR(copied);
            m_progress.attempts.read += batch.size();
            m_progress.attempts.copied += *copied;
            m_progress.attempts.present += batch.size() - *copied;
            if (auto done = committed(); !done) {
                return done;
            }
            if (batch.size() < m_batch) {
                break;
            }
        }
        return {};
    }

    Store& m_from;
    Store& m_to;
    const CopyOptions& m_options;
    std::size_t m_batch;
    CopyProgress m_progress;
};

} // namespace

Result<CopyProgress> copy(Store& from, Store& to, const CopyOptions& options) {
    return Copier(from, to, options).run();
}

} // namespace hookctl::archive
