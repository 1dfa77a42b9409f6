#include <algorithm>
#include <cstdio>
#include <deque>
#include <sys/stat.h>

#include <hookctl/archive/follow.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::archive {
namespace {

constexpr std::uint64_t k_page = 512;

void sort_by_time(std::vector<TailRecord>& records) {
    std::stable_sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
        if (a.at_ms != b.at_ms) {
            return a.at_ms < b.at_ms;
        }
        if (a.kind != b.kind) {
            return a.kind == TailRecord::Kind::event;
        }
        return a.cursor < b.cursor;
    });
}

std::string dash(const std::string& text) {
    return text.empty() ? "-" : text;
}

} // namespace

TailRecord record_of(const Event& event) {
    TailRecord r;
    r.kind = TailRecord::Kind::event;
    r.cursor = event.seq;
    r.at_ms = event.received_at_ms;
    r.event_id = event.event_id;
    r.org_id = event.org_id;
    r.status = std::string(to_string(event.status));
    r.reason = !event.last_error.empty()  ? event.last_error
               : event.source == "listen" ? "accepted"
               : event.source.empty()     ? "stored"
                                          : "stored by " + event.source;
    r.verified_by = event.verified_by;
    r.source = event.source;
    return r;
}

TailRecord record_of(const Attempt& attempt, std::string_view org_id) {
    TailRecord r;
    r.kind = TailRecord::Kind::attempt;
    r.cursor = attempt.id;
    r.at_ms = attempt.at_ms;
    r.event_id = attempt.event_id;
    r.org_id = std::string(org_id);
    r.status = std::string(to_string(attempt.outcome));
    r.reason = !attempt.reason.empty()   ? attempt.reason
               : attempt.http_status > 0 ? "http_" + std::to_string(attempt.http_status)
                                         : "";
    r.latency_ms = attempt.latency_ms;
    r.run_id = attempt.run_id;
    r.target = attempt.target;
    r.attempt = attempt.attempt;
    r.http_status = attempt.http_status;
    r.detail = attempt.detail;
    return r;
}

bool matches(const TailFilter& filter, const TailRecord& record, std::string_view payload) {
    if (!filter.statuses.empty() && std::find(filter.statuses.begin(), filter.statuses.end(),
                                              record.status) == filter.statuses.end()) {
        return false;
    }
    if (!filter.org_ids.empty() && std::find(filter.org_ids.begin(), filter.org_ids.end(),
                                             record.org_id) == filter.org_ids.end()) {
        return false;
    }
    if (filter.since_ms && record.at_ms < *filter.since_ms) {
        return false;
    }
    return filter.grep.empty() || payload.find(filter.grep) != std::string_view::npos;
}

std::string format_line(const TailRecord& r) {
    std::string latency = "-";
    if (r.latency_ms) {
        char text[32];
        std::snprintf(text, sizeof text, "%.1fms", *r.latency_ms);
        latency = text;
    }
    std::string line = util::format_time_ms(r.at_ms) + "  " + dash(r.event_id) + "  " +
                       dash(r.org_id) + "  " + dash(r.status) + "  " + dash(r.reason) + "  " +
                       latency + "  " + (r.verified_by.empty() ? "-" : "key " + r.verified_by);
    if (r.kind == TailRecord::Kind::attempt) {
        line += "  attempt " + std::to_string(r.attempt) + " to " + dash(r.target);
        if (!r.run_id.empty()) {
            line += " (run " + r.run_id + ")";
        }
    }
    return line;
}

nlohmann::json to_json(const TailRecord& r) {
    nlohmann::json doc = {{"type", r.kind == TailRecord::Kind::event ? "event" : "attempt"},
                          {"at", util::format_time_ms(r.at_ms)},
                          {"event_id", r.event_id},
                          {"org_id", r.org_id},
                          {"status", r.status},
                          {"reason", r.reason},
                          {"latency_ms", nullptr},
                          {"verified_by", nullptr}};
    if (r.latency_ms) {
        doc["latency_ms"] = *r.latency_ms;
    }
    if (!r.verified_by.empty()) {
        doc["verified_by"] = r.verified_by;
    }
    if (r.kind == TailRecord::Kind::event) {
        doc["seq"] = r.cursor;
        doc["source"] = r.source;
    } else {
        doc["attempt_id"] = r.cursor;
        doc["run_id"] = r.run_id;
        doc["target"] = r.target;
        doc["attempt"] = r.attempt;
        doc["http_status"] = r.http_status;
        doc["detail"] = r.detail;
    }
    return doc;
}

PollSchedule::PollSchedule(Settings settings)
    : m_settings(settings)
    , m_interval(settings.min) {}

PollSchedule::SteadyTime PollSchedule::after_look(SteadyTime now, bool changed) {
    m_interval = changed ? m_settings.min : std::min(m_settings.max, m_interval * 2);
    return now + m_interval;
}

Follower::Follower(std::string path, std::unique_ptr<Store> archive, TailFilter filter)
    : m_path(std::move(path))
    , m_archive(std::move(archive))
    , m_filter(std::move(filter)) {
    struct stat st {};
    if (::stat(m_path.c_str(), &st) == 0) {
        m_dev = st.st_dev;
        m_ino = st.st_ino;
    }
}

Result<Follower> Follower::open(const std::string& path, TailFilter filter) {
    OpenOptions options;
    options.mode = Mode::read_only;
    auto store = archive::open(path, options);
    HOOKCTL_RETURN_IF_ERROR(store);
    return Follower(path, std::move(*store), std::move(filter));
}

bool Follower::gone() const {
    struct stat st {};
    return ::stat(m_path.c_str(), &st) != 0 || st.st_dev != m_dev || st.st_ino != m_ino;
}

Result<bool> Follower::keep(const TailRecord& record, const Event* event) {
    if (m_filter.grep.empty() || event != nullptr) {
        return matches(m_filter, record, event != nullptr ? event->body : std::string_view());
    }
    // An attempt with --grep: its event's payload decides.
    TailFilter without_grep = m_filter;
    without_grep.grep.clear();
    if (!matches(without_grep, record, {})) {
        return false;
    }
    auto stored = m_archive->get_event(record.event_id);
    HOOKCTL_RETURN_IF_ERROR(stored);
    return *stored && matches(m_filter, record, (*stored)->body);
}

Result<std::vector<TailRecord>> Follower::backlog(std::size_t last) {
    auto version = m_archive->data_version();
    HOOKCTL_RETURN_IF_ERROR(version);
    m_version = *version;
    auto high = m_archive->high_water();
    HOOKCTL_RETURN_IF_ERROR(high);
    std::vector<TailRecord> out;
    if (m_filter.since_ms) {
        auto since = read_after(high->seq, high->attempt_id);
        HOOKCTL_RETURN_IF_ERROR(since);
        out = std::move(*since);
    } else if (last > 0) {
        const bool body = !m_filter.grep.empty();
        // Newest first, window by window, until `last` pass the filter or the start is reached.
        std::deque<TailRecord> events;
        std::int64_t window = std::max<std::int64_t>(256, static_cast<std::int64_t>(last) * 4);
        for (std::int64_t hi = high->seq; hi > 0 && events.size() < last;) {
            std::int64_t lo = std::max<std::int64_t>(0, hi - window);
            EventFilter page;
            page.after_seq = lo;
            page.limit = static_cast<std::uint64_t>(hi - lo);
            page.with_body = body;
            std::vector<TailRecord> chunk;
            auto read = m_archive->for_each_event(page, [&](const Event& e) {
                if (e.seq > hi) {
                    return false;
                }
                auto record = record_of(e);
                if (matches(m_filter, record, e.body)) {
                    chunk.push_back(std::move(record));
                }
                return true;
            });
            HOOKCTL_RETURN_IF_ERROR(read);
            events.insert(events.begin(), chunk.begin(), chunk.end());
            hi = lo;
            window = std::min<std::int64_t>(window * 2, 65536);
        }
        std::deque<TailRecord> attempts;
        window = std::max<std::int64_t>(256, static_cast<std::int64_t>(last) * 4);
        for (std::int64_t hi = high->attempt_id; hi > 0 && attempts.size() < last;) {
            std::int64_t lo = std::max<std::int64_t>(0, hi - window);
            std::vector<TailRecord> raw;
            auto read = m_archive->for_each_attempt(lo, static_cast<std::uint64_t>(hi - lo),
                                                    [&](const Attempt& a, std::string_view org) {
                                                        if (a.id > hi) {
                                                            return false;
                                                        }
                                                        raw.push_back(record_of(a, org));
                                                        return true;
                                                    });
            HOOKCTL_RETURN_IF_ERROR(read);
            std::vector<TailRecord> chunk;
            for (auto& record : raw) {
                auto kept = keep(record, nullptr);
                HOOKCTL_RETURN_IF_ERROR(kept);
                if (*kept) {
                    chunk.push_back(std::move(record));
                }
            }
            attempts.insert(attempts.begin(), chunk.begin(), chunk.end());
            hi = lo;
            window = std::min<std::int64_t>(window * 2, 65536);
        }
        out.assign(events.begin(), events.end());
        out.insert(out.end(), attempts.begin(), attempts.end());
        sort_by_time(out);
        if (out.size() > last) {
            out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(last));
        }
    }
    m_seq = high->seq;
    m_attempt = high->attempt_id;
    return out;
}

Result<std::vector<TailRecord>> Follower::read_after(std::int64_t seq_high,
                                                     std::int64_t attempt_high) {
    std::vector<TailRecord> out;
    const bool body = !m_filter.grep.empty();
    for (bool more = true; more;) {
        EventFilter page;
        page.after_seq = m_seq;
        page.limit = k_page;
        page.with_body = body;
        page.since_ms = m_filter.since_ms; // rows before it are skipped by SQLite
        std::uint64_t seen = 0;
        auto read = m_archive->for_each_event(page, [&](const Event& e) {
            if (seq_high > 0 && e.seq > seq_high) {
                return false;
            }
            ++seen;
            m_seq = e.seq;
            auto record = record_of(e);
            if (matches(m_filter, record, e.body)) {
                out.push_back(std::move(record));
            }
            return true;
        });
        HOOKCTL_RETURN_IF_ERROR(read);
        more = seen == k_page;
    }
    for (bool more = true; more;) {
        std::vector<TailRecord> raw;
        auto read = m_archive->for_each_attempt(m_attempt, k_page,
                                                [&](const Attempt& a, std::string_view org) {
                                                    if (attempt_high > 0 && a.id > attempt_high) {
                                                        return false;
                                                    }
                                                    m_attempt = a.id;
                                                    raw.push_back(record_of(a, org));
                                                    return true;
                                                });
        HOOKCTL_RETURN_IF_ERROR(read);
        more = raw.size() == k_page;
        for (auto& record : raw) {
            auto kept = keep(record, nullptr);
            HOOKCTL_RETURN_IF_ERROR(kept);
            if (*kept) {
                out.push_back(std::move(record));
            }
        }
    }
    sort_by_time(out);
    return out;
}

Result<std::vector<TailRecord>> Follower::poll(bool& changed) {
    auto version = m_archive->data_version();
    HOOKCTL_RETURN_IF_ERROR(version);
    changed = *version != m_version;
    if (!changed) {
        return std::vector<TailRecord>{};
    }
    m_version = *version;
    return read_after(0, 0);
}

Result<FollowEnd> follow(Follower& follower, PollSchedule& schedule, const util::Clock& clock,
                         util::Waiter& waiter,
                         const std::function<bool(const std::vector<TailRecord>&)>& print) {
    auto next = clock.steady() + schedule.settings().min;
    for (;;) {
        if (!waiter.wait_until(next)) {
            return FollowEnd::stopped;
        }
        if (follower.gone()) {
            return FollowEnd::archive_gone;
        }
        bool changed = false;
        auto records = follower.poll(changed);
        HOOKCTL_RETURN_IF_ERROR(records);
        if (!records->empty() && !print(*records)) {
            return FollowEnd::stopped;
        }
        next = schedule.after_look(clock.steady(), changed);
    }
}

} // namespace hookctl::archive
