#include <algorithm>
#include <filesystem>
#include <fstream>

#include <SQLiteCpp/SQLiteCpp.h>

#include <hookctl/mime/parse.hpp>
#include <hookctl/replay/source.hpp>
#include <hookctl/util/signals.hpp>

namespace hookctl::replay {
namespace {

namespace fs = std::filesystem;

archive::EventFilter effective_filter(const SourceSpec& spec) {
    archive::EventFilter filter = spec.filter;
    if (filter.statuses.empty() && filter.event_ids.empty()) {
        filter.statuses = {archive::EventStatus::failed, archive::EventStatus::dead};
    }
    return filter;
}

Result<archive::Archive> open_source_archive(const std::string& path) {
    archive::OpenOptions options;
    options.mode = archive::Mode::read_write; // migrates an older file; never creates one
    auto opened = archive::Archive::open(path, options);
    if (!opened) {
        return fail(ExitCode::usage, "cannot read source archive: " + opened.error().message);
    }
    return opened;
}

ReplayEvent from_archive(const archive::Event& e) {
    ReplayEvent out;
    out.seq = e.seq;
    out.event_id = e.event_id;
    out.org_id = e.org_id;
    out.received_at_ms = e.received_at_ms;
    out.trace_id = e.trace_id;
    out.body = e.body;
    return out;
}

Result<void> reparse(ReplayEvent& event, const archive::Event& stored) {
    if (!stored.raw_mime) {
        return {}; // no raw MIME kept: the stored JSON is sent as it is
    }
    mime::ParseOptions options;
    options.org_id = stored.org_id;
    options.received_at = archive::format_time_ms(stored.received_at_ms);
    if (!stored.trace_id.empty()) {
        options.trace_id = stored.trace_id;
    }
    auto parsed = mime::parse_message(*stored.raw_mime, options);
    if (!parsed) {
        return fail(parsed.error().code,
                    "re-parsing event " + stored.event_id + ": " + parsed.error().message);
    }
    event.body = parsed->dump();
    return {};
}

std::string sql_error(const SourceSpec& spec, const std::exception& e) {
    return "--query over " + spec.path + " failed: " + e.what() +
           " (the query must return columns event_id and payload; optional: headers, org_id, "
           "received_at)";
}

// Runs the query, mapping each row by column name.
Result<std::uint64_t> walk_query(const SourceSpec& spec, std::int64_t after_seq,
                                 const EventVisitor* visit) {
    std::uint64_t count = 0;
    try {
        SQLite::Database db(spec.path, SQLite::OPEN_READONLY);
        db.setBusyTimeout(5000);
        SQLite::Statement statement(db, spec.query);
        auto column = [&](const char* name) -> int {
            for (int i = 0; i < statement.getColumnCount(); ++i) {
                if (std::string_view(statement.getColumnName(i)) == name) {
                    return i;
                }
            }
            return -1;
        };
        int id_col = column("event_id");
        int payload_col = column("payload");
        if (id_col < 0 || payload_col < 0) {
            return fail(ExitCode::usage, "--query over " + spec.path + ": the result has no " +
                                             (id_col < 0 ? "event_id" : "payload") +
                                             " column (alias yours: SELECT id AS event_id, "
                                             "body AS payload ...)");
        }
        int org_col = column("org_id");
        int received_col = column("received_at");
        std::int64_t seq = 0;
        while (statement.executeStep()) {
            ++seq;
            ++count;
            if (visit == nullptr || seq <= after_seq) {
                continue;
            }
            ReplayEvent event;
            event.seq = seq;
            event.event_id = statement.getColumn(id_col).getString();
            if (event.event_id.empty()) {
                return fail(ExitCode::usage, "--query over " + spec.path + ": row " +
                                                 std::to_string(seq) + " has an empty event_id");
            }
            const auto payload = statement.getColumn(payload_col);
            event.body.assign(static_cast<const char*>(payload.getBlob()),
                              static_cast<std::size_t>(payload.getBytes()));
            if (org_col >= 0) {
                event.org_id = statement.getColumn(org_col).getString();
            }
            if (received_col >= 0) {
                const auto received = statement.getColumn(received_col);
                if (received.isInteger()) {
                    event.received_at_ms = received.getInt64();
                } else if (!received.isNull()) {
                    auto ms = archive::parse_time_ms(received.getString());
                    if (ms) {
                        event.received_at_ms = *ms;
                    }
                }
            }
            auto go_on = (*visit)(std::move(event));
            if (!go_on) {
                return std::unexpected(go_on.error());
            }
            if (!*go_on) {
                break;
            }
        }
    } catch (const SQLite::Exception& e) {
        return fail(ExitCode::usage, sql_error(spec, e));
    }
    return count;
}

struct StopWalk {};

Result<std::uint64_t> walk_mime(const SourceSpec& spec, std::int64_t after_seq,
                                const EventVisitor* visit) {
    std::uint64_t count = 0;
    std::int64_t seq = 0;
    bool stopped = false;
    auto walked = mime::for_each_message(
        spec.path, [&](std::string_view raw, const std::string& label) -> Result<void> {
            ++seq;
            ++count;
            if (visit == nullptr || seq <= after_seq) {
                return {};
            }
            mime::ParseOptions options;
            options.org_id = spec.org_id;
            auto parsed = mime::parse_message(raw, options);
            if (!parsed) {
                return fail(parsed.error().code, label + ": " + parsed.error().message);
            }
            ReplayEvent event;
            event.seq = seq;
            event.event_id = parsed->value("event_id", mime::event_id_for(raw));
            event.org_id = parsed->value("org_id", spec.org_id);
            event.trace_id = parsed->value("trace_id", "");
            event.body = parsed->dump();
            auto go_on = (*visit)(std::move(event));
            if (!go_on) {
                return std::unexpected(go_on.error());
            }
            if (!*go_on) {
                stopped = true;
                return fail(ExitCode::aborted, "stopped");
            }
            return {};
        });
    if (!walked && !stopped) {
        return std::unexpected(walked.error());
    }
    return count;
}

} // namespace

std::string SourceSpec::describe() const {
    switch (kind) {
    case SourceKind::archive:
        return "archive " + path;
    case SourceKind::query:
        return "query over " + path;
    case SourceKind::mime:
        return "mime " + path;
    }
    return path;
}

Result<SourceKind> detect_source_kind(const std::string& path, bool has_query) {
    std::error_code ec;
    auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
        return fail(ExitCode::usage, "cannot read --from " + path + ": no such file or directory");
    }
    if (has_query) {
        return SourceKind::query;
    }
    if (fs::is_directory(status)) {
        return SourceKind::mime;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return fail(ExitCode::usage, "cannot read --from " + path + ": permission denied?");
    }
    char magic[16] = {};
    in.read(magic, sizeof magic);
    if (in.gcount() == 16 &&
        std::string_view(magic, 16) == std::string_view("SQLite format 3\0", 16)) {
        return SourceKind::archive;
    }
    return SourceKind::mime;
}

Result<std::uint64_t> count_events(const SourceSpec& spec) {
    switch (spec.kind) {
    case SourceKind::archive: {
        auto db = open_source_archive(spec.path);
        if (!db) {
            return std::unexpected(db.error());
        }
        auto filter = effective_filter(spec);
        auto n = db->count_events(filter);
        if (!n) {
            return std::unexpected(n.error());
        }
        return filter.limit ? std::min(*n, *filter.limit) : *n;
    }
    case SourceKind::query:
        return walk_query(spec, 0, nullptr);
    case SourceKind::mime:
        return walk_mime(spec, 0, nullptr);
    }
    return 0;
}

Result<void> for_each_event(const SourceSpec& spec, std::int64_t after_seq,
                            const EventVisitor& visit) {
    if (spec.kind == SourceKind::query) {
        auto done = walk_query(spec, after_seq, &visit);
        return done ? Result<void>{} : std::unexpected(done.error());
    }
    if (spec.kind == SourceKind::mime) {
        auto done = walk_mime(spec, after_seq, &visit);
        return done ? Result<void>{} : std::unexpected(done.error());
    }
    auto db = open_source_archive(spec.path);
    if (!db) {
        return std::unexpected(db.error());
    }
    archive::EventFilter filter = effective_filter(spec);
    std::uint64_t left = filter.limit.value_or(UINT64_MAX);

    if (spec.ordered) {
        // received_at order across the selection: sort (seq, received_at) pairs, then read
        // each body by id. Only the ids are held in memory.
        struct Key {
            std::int64_t received_at_ms;
            std::int64_t seq;
            std::string event_id;
        };
        std::vector<Key> keys;
        archive::EventFilter light = filter;
        light.with_body = false;
        light.after_seq = after_seq > 0 ? std::optional<std::int64_t>(after_seq) : std::nullopt;
        auto listed = db->for_each_event(light, [&](const archive::Event& e) {
            keys.push_back({e.received_at_ms, e.seq, e.event_id});
            return true;
        });
        if (!listed) {
            return std::unexpected(listed.error());
        }
        std::stable_sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
            return a.received_at_ms != b.received_at_ms ? a.received_at_ms < b.received_at_ms
                                                        : a.seq < b.seq;
        });
        for (const auto& key : keys) {
            auto stored = db->get_event(key.event_id);
            if (!stored) {
                return std::unexpected(stored.error());
            }
            if (!*stored) {
                continue;
            }
            ReplayEvent event = from_archive(**stored);
            if (spec.reparse) {
                auto ok = reparse(event, **stored);
                if (!ok) {
                    return ok;
                }
            }
            auto go_on = visit(std::move(event));
            if (!go_on) {
                return std::unexpected(go_on.error());
            }
            if (!*go_on) {
                return {};
            }
        }
        return {};
    }

    // Pages of events in seq order, so no read transaction stays open for the whole run.
    std::int64_t cursor = after_seq;
    constexpr std::uint64_t k_page = 256;
    while (left > 0) {
        archive::EventFilter page = filter;
        page.after_seq = cursor;
        page.limit = std::min(k_page, left);
        std::vector<ReplayEvent> events;
        std::vector<archive::Event> stored_for_reparse;
        auto visited = db->for_each_event(page, [&](const archive::Event& e) {
            events.push_back(from_archive(e));
            if (spec.reparse) {
                stored_for_reparse.push_back(e);
            }
            return true;
        });
        if (!visited) {
            return std::unexpected(visited.error());
        }
        if (events.empty()) {
            break;
        }
        for (std::size_t i = 0; i < events.size(); ++i) {
            cursor = events[i].seq;
            left -= 1;
            if (spec.reparse) {
                auto ok = reparse(events[i], stored_for_reparse[i]);
                if (!ok) {
                    return ok;
                }
            }
            auto go_on = visit(std::move(events[i]));
            if (!go_on) {
                return std::unexpected(go_on.error());
            }
            if (!*go_on) {
                return {};
            }
        }
    }
    return {};
}

Prefetch::Prefetch(SourceSpec spec, std::int64_t after_seq, std::size_t max_events,
                   std::size_t max_bytes, std::function<void()> wake)
    : m_max_events(std::max<std::size_t>(1, max_events))
    , m_max_bytes(max_bytes)
    , m_wake(std::move(wake)) {
    m_thread = std::thread([this, spec = std::move(spec), after_seq] {
        util::block_stop_signals(); // SIGINT reaches the sending thread and wakes its poll
        read(spec, after_seq);
    });
}

Prefetch::~Prefetch() {
    {
        std::lock_guard lock(m_mutex);
        m_cancelled = true;
    }
    m_room.notify_all();
    m_thread.join();
}

void Prefetch::read(const SourceSpec& spec, std::int64_t after_seq) {
    auto walked = for_each_event(spec, after_seq, [&](ReplayEvent&& event) -> Result<bool> {
        std::unique_lock lock(m_mutex);
        // Full (either bound; an empty queue always takes one, however big): wait until the
        // sender took half, so the two threads hand over in batches, not event by event.
        if (!m_queue.empty() && (m_queue.size() >= m_max_events || m_queued_bytes >= m_max_bytes)) {
            m_reader_waiting = true;
            m_room.wait(lock, [&] { return m_cancelled || below_low_water(); });
            m_reader_waiting = false;
        }
        if (m_cancelled) {
            return false;
        }
        bool was_empty = m_queue.empty();
        m_queued_bytes += event.body.size();
        m_queue.push_back(std::move(event));
        lock.unlock();
        if (was_empty && m_wake) {
            m_wake();
        }
        return true;
    });
    {
        std::lock_guard lock(m_mutex);
        if (!walked) {
            m_error = walked.error();
        }
        m_finished = true;
    }
    if (m_wake) {
        m_wake();
    }
}

std::optional<ReplayEvent> Prefetch::try_pop(bool skip_if_busy) {
    std::optional<ReplayEvent> out;
    {
        std::unique_lock lock(m_mutex, std::defer_lock);
        if (skip_if_busy) {
            if (!lock.try_lock()) {
                return out;
            }
        } else {
            lock.lock();
        }
        if (m_queue.empty()) {
            return out;
        }
        out = std::move(m_queue.front());
        m_queue.pop_front();
        m_queued_bytes -= out->body.size();
        if (!m_reader_waiting || !below_low_water()) {
            return out;
        }
    }
    m_room.notify_one();
    return out;
}

bool Prefetch::below_low_water() const {
    return m_queue.size() <= m_max_events / 2 && m_queued_bytes <= m_max_bytes / 2;
}

bool Prefetch::done() const {
    std::lock_guard lock(m_mutex);
    return m_finished && m_queue.empty();
}

std::optional<Error> Prefetch::error() const {
    std::lock_guard lock(m_mutex);
    return m_error;
}

} // namespace hookctl::replay
