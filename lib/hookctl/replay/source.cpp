#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include <SQLiteCpp/SQLiteCpp.h>

#include <hookctl/archive/har.hpp>
#include <hookctl/archive/postgres/query.hpp>
#include <hookctl/mime/parse.hpp>
#include <hookctl/replay/source.hpp>
#include <hookctl/util/file.hpp>
#include <hookctl/util/signals.hpp>
#include <hookctl/util/time.hpp>

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

// A source of kind archive is read through the handle its command opened once.
std::unexpected<Error> not_opened(const SourceSpec& spec) {
    return fail(ExitCode::environment, "replay: the source archive " + spec.path +
                                           " was not opened (a bug: please report it)");
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
    options.received_at = util::format_time_ms(stored.received_at_ms);
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

std::unexpected<Error> missing_column(const SourceSpec& spec, bool id_missing) {
    return fail(ExitCode::usage, "--query over " + spec.path + ": the result has no " +
                                     (id_missing ? "event_id" : "payload") +
                                     " column (alias yours: SELECT id AS event_id, body AS "
                                     "payload ...)");
}

std::unexpected<Error> empty_event_id(const SourceSpec& spec, std::int64_t row) {
    return fail(ExitCode::usage, "--query over " + spec.path + ": row " + std::to_string(row) +
                                     " has an empty event_id");
}

// The query over a PostgreSQL database: the same columns by name as over SQLite. An integer
// received_at is Unix milliseconds, a timestamp is itself, text is parsed as RFC 3339.
Result<std::uint64_t> walk_pg_query(const SourceSpec& spec, const EventVisitor* visit) {
    namespace pg = archive::postgres;
    int id_col = -1, payload_col = -1, org_col = -1, received_col = -1;
    pg::ColumnKind received_kind = pg::ColumnKind::text;
    auto columns = [&](const std::vector<pg::QueryColumn>& shape) -> Result<void> {
        for (std::size_t i = 0; i < shape.size(); ++i) {
            const int c = static_cast<int>(i);
            const auto& name = shape[i].name;
            if (name == "event_id" && id_col < 0) {
                id_col = c;
            } else if (name == "payload" && payload_col < 0) {
                payload_col = c;
            } else if (name == "org_id" && org_col < 0) {
                org_col = c;
            } else if (name == "received_at" && received_col < 0) {
                received_col = c;
                received_kind = shape[i].kind;
            }
        }
        if (id_col < 0 || payload_col < 0) {
            return missing_column(spec, id_col < 0);
        }
        return {};
    };
    auto row = [&](std::int64_t number, pg::QueryRow& values) -> Result<bool> {
        if (visit == nullptr) {
            return true;
        }
        ReplayEvent event;
        event.seq = number;
        event.event_id = values[static_cast<std::size_t>(id_col)].value_or("");
        if (event.event_id.empty()) {
            return empty_event_id(spec, number);
        }
        event.body = std::move(values[static_cast<std::size_t>(payload_col)]).value_or("");
        if (org_col >= 0) {
            event.org_id = values[static_cast<std::size_t>(org_col)].value_or("");
        }
        if (received_col >= 0 && values[static_cast<std::size_t>(received_col)]) {
            const std::string& received = *values[static_cast<std::size_t>(received_col)];
            if (received_kind == pg::ColumnKind::integer) {
                std::int64_t ms = 0;
                auto [end, ec] =
                    std::from_chars(received.data(), received.data() + received.size(), ms);
                if (ec == std::errc() && end == received.data() + received.size()) {
                    event.received_at_ms = ms;
                }
            } else if (auto ms = util::parse_time_ms(received)) {
                event.received_at_ms = *ms;
            }
        }
        return (*visit)(std::move(event));
    };
    auto walked = pg::query_rows(spec.path, spec.query, columns, row);
    if (!walked) {
        auto error = walked.error();
        if (!error.message.starts_with("--query")) {
            error.message = "--query over " + error.message;
        }
        if (error.code == ExitCode::usage && !error.message.ends_with(")")) {
            error.message += " (the query must return columns event_id and payload; optional: "
                             "headers, org_id, received_at)";
        }
        return std::unexpected(error);
    }
    return walked;
}

// Runs the query, mapping each row by column name; `visit` null only counts.
Result<std::uint64_t> walk_query(const SourceSpec& spec, const EventVisitor* visit) {
    if (archive::is_server_uri(spec.path)) {
        return walk_pg_query(spec, visit);
    }
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
            return missing_column(spec, id_col < 0);
        }
        int org_col = column("org_id");
        int received_col = column("received_at");
        std::int64_t seq = 0;
        while (statement.executeStep()) {
            ++seq;
            ++count;
            if (visit == nullptr) {
                continue;
            }
            ReplayEvent event;
            event.seq = seq;
            event.event_id = statement.getColumn(id_col).getString();
            if (event.event_id.empty()) {
                return empty_event_id(spec, seq);
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
                    auto ms = util::parse_time_ms(received.getString());
                    if (ms) {
                        event.received_at_ms = *ms;
                    }
                }
            }
            auto go_on = (*visit)(std::move(event));
            HOOKCTL_RETURN_IF_ERROR(go_on);
            if (!*go_on) {
                break;
            }
        }
    } catch (const SQLite::Exception& e) {
        return fail(ExitCode::usage, sql_error(spec, e));
    }
    return count;
}

// Walks the messages of a MIME source. `want(position, event_id)` (null: every message) says
// which to visit; those are parsed (unless `parse` is false: then only seq and event_id are
// set) and passed to `visit`. Returns how many messages there were.
using WantMessage = std::function<Result<bool>(std::int64_t position, const std::string& id)>;
Result<std::uint64_t> walk_mime(const SourceSpec& spec, bool parse, const WantMessage* want,
                                const EventVisitor* visit) {
    std::uint64_t count = 0;
    std::int64_t seq = 0;
    bool stopped = false;
    auto walked = mime::for_each_message(
        spec.path, [&](std::string_view raw, const std::string& label) -> Result<void> {
            ++seq;
            ++count;
            if (visit == nullptr) {
                return {};
            }
            ReplayEvent event;
            event.seq = seq;
            event.event_id = mime::event_id_for(raw);
            if (want != nullptr) {
                auto wanted = (*want)(seq, event.event_id);
                HOOKCTL_RETURN_IF_ERROR(wanted);
                if (!*wanted) {
                    return {};
                }
            }
            event.org_id = spec.org_id;
            if (parse) {
                mime::ParseOptions options;
                options.org_id = spec.org_id;
                auto parsed = mime::parse_message(raw, options);
                if (!parsed) {
                    return fail(parsed.error().code, label + ": " + parsed.error().message);
                }
                event.event_id = parsed->value("event_id", event.event_id);
                event.org_id = parsed->value("org_id", spec.org_id);
                event.trace_id = parsed->value("trace_id", "");
                event.body = parsed->dump();
            }
            auto go_on = (*visit)(std::move(event));
            HOOKCTL_RETURN_IF_ERROR(go_on);
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

// Walks the request bodies of a HAR file, each numbered by its entry. An event id the entry does
// not carry is made from the body, as `send` makes one. `visit` null only counts.
Result<std::uint64_t> walk_har(const SourceSpec& spec, const WantMessage* want,
                               const EventVisitor* visit) {
    auto text = util::read_file(spec.path);
    if (!text) {
        return fail(ExitCode::usage,
                    "cannot read --from " + spec.path + ": " + text.error().message);
    }
    auto requests = archive::read_har(*text, spec.path);
    HOOKCTL_RETURN_IF_ERROR(requests);
    if (visit == nullptr) {
        return requests->size();
    }
    for (auto& r : *requests) {
        ReplayEvent event;
        event.seq = r.entry;
        event.event_id = !r.event_id.empty() ? r.event_id : mime::event_id_for(r.body);
        if (want != nullptr) {
            auto wanted = (*want)(event.seq, event.event_id);
            HOOKCTL_RETURN_IF_ERROR(wanted);
            if (!*wanted) {
                continue;
            }
        }
        event.org_id = std::move(r.org_id);
        event.received_at_ms = r.started_ms;
        event.trace_id = std::move(r.trace_id);
        event.body = std::move(r.body);
        auto go_on = (*visit)(std::move(event));
        HOOKCTL_RETURN_IF_ERROR(go_on);
        if (!*go_on) {
            break;
        }
    }
    return requests->size();
}

// Walks a foreign (query), MIME or HAR source.
Result<void> walk_foreign(const SourceSpec& spec, bool parse, const WantMessage* want,
                          const EventVisitor& visit) {
    if (spec.kind == SourceKind::har) {
        auto done = walk_har(spec, want, &visit);
        return done ? Result<void>{} : std::unexpected(done.error());
    }
    if (spec.kind == SourceKind::query) {
        EventVisitor filtered = [&](ReplayEvent&& e) -> Result<bool> {
            if (want != nullptr) {
                auto wanted = (*want)(e.seq, e.event_id);
                HOOKCTL_RETURN_IF_ERROR(wanted);
                if (!*wanted) {
                    return true;
                }
            }
            return visit(std::move(e));
        };
        auto done = walk_query(spec, &filtered);
        return done ? Result<void>{} : std::unexpected(done.error());
    }
    auto done = walk_mime(spec, parse, want, &visit);
    return done ? Result<void>{} : std::unexpected(done.error());
}

// The pending items of a run in item order, read page by page as a cursor walks them.
class PendingItems {
public:
    PendingItems(archive::Store& store, std::string run_id)
        : m_store(store)
        , m_run_id(std::move(run_id)) {}

    // The first pending item not yet consumed, or nullopt at the end.
    Result<const archive::RunItem*> front() {
        if (m_page.empty() && !m_end) {
            auto read = m_store.for_each_pending_event(
                m_run_id, m_after, 512, [&](const archive::RunItem& item, const archive::Event&) {
                    m_page.push_back(item);
                    return true;
                });
            HOOKCTL_RETURN_IF_ERROR(read);
            m_end = m_page.empty();
            if (!m_page.empty()) {
                m_after = m_page.back().item;
            }
        }
        return m_page.empty() ? nullptr : &m_page.front();
    }
    void pop() { m_page.pop_front(); }

private:
    archive::Store& m_store;
    std::string m_run_id;
    std::int64_t m_after = 0;
    std::deque<archive::RunItem> m_page;
    bool m_end = false;
};

} // namespace

std::string SourceSpec::describe() const {
    switch (kind) {
    case SourceKind::archive:
        return "archive " + path;
    case SourceKind::query:
        return "query over " + path;
    case SourceKind::mime:
        return "mime " + path;
    case SourceKind::har:
        return "har " + path;
    }
    return path;
}

Result<SourceKind> detect_source_kind(const std::string& path, bool has_query) {
    if (archive::is_server_uri(path)) {
        if (auto checked = archive::check_location(path); !checked) {
            return std::unexpected(checked.error());
        }
        return has_query ? SourceKind::query : SourceKind::archive;
    }
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
    std::string_view head(magic, static_cast<std::size_t>(in.gcount()));
    auto first = head.find_first_not_of(" \t\r\n");
    bool json_object = first != std::string_view::npos && head[first] == '{';
    if (json_object || (path.size() > 4 && (path.ends_with(".har") || path.ends_with(".HAR")))) {
        return SourceKind::har; // an email never starts with `{`
    }
    return SourceKind::mime;
}

Result<std::unique_ptr<archive::Store>> open_source_archive(const SourceSpec& spec) {
    archive::OpenOptions options;
    options.mode = archive::Mode::read_write; // migrates an older file; never creates one
    auto opened = archive::open(spec.path, options);
    if (!opened) {
        return fail(ExitCode::usage, "cannot read source archive: " + opened.error().message);
    }
    if (spec.cipher) { // a key that does not open it fails as in every command (exit 4)
        options.cipher = spec.cipher;
        return (*opened)->another(options);
    }
    return opened;
}

Result<std::uint64_t> count_events(const SourceSpec& spec, archive::Store* archive) {
    std::optional<std::uint64_t> limit = spec.filter.limit;
    std::uint64_t n = 0;
    switch (spec.kind) {
    case SourceKind::archive: {
        if (archive == nullptr) {
            return not_opened(spec);
        }
        auto counted = archive->count_events(effective_filter(spec));
        HOOKCTL_RETURN_IF_ERROR(counted);
        n = *counted;
        break;
    }
    case SourceKind::query: {
        auto counted = walk_query(spec, nullptr);
        HOOKCTL_RETURN_IF_ERROR(counted);
        n = *counted;
        break;
    }
    case SourceKind::mime: {
        auto counted = walk_mime(spec, false, nullptr, nullptr);
        HOOKCTL_RETURN_IF_ERROR(counted);
        n = *counted;
        break;
    }
    case SourceKind::har: {
        auto counted = walk_har(spec, nullptr, nullptr);
        HOOKCTL_RETURN_IF_ERROR(counted);
        n = *counted;
        break;
    }
    }
    return limit ? std::min(n, *limit) : n;
}

Result<void> for_each_event(const SourceSpec& spec, archive::Store* archive,
                            const EventVisitor& visit) {
    std::uint64_t left = spec.filter.limit.value_or(UINT64_MAX);
    EventVisitor limited = [&](ReplayEvent&& e) -> Result<bool> {
        if (left == 0) {
            return false;
        }
        --left;
        return visit(std::move(e));
    };
    if (spec.kind != SourceKind::archive) {
        return walk_foreign(spec, true, nullptr, limited);
    }
    if (archive == nullptr) {
        return not_opened(spec);
    }
    archive::Store& db = *archive;
    // The order of the run's items: seq, or (received_at, seq) with --ordered. Only the
    // ordered walk holds its (seq, received_at) keys in memory.
    archive::EventFilter filter = effective_filter(spec);
    filter.limit.reset();
    std::vector<std::pair<std::int64_t, std::int64_t>> keys;
    if (spec.ordered) {
        archive::EventFilter light = filter;
        light.with_body = false;
        auto listed = db.for_each_event(light, [&](const archive::Event& e) {
            keys.emplace_back(e.received_at_ms, e.seq);
            return true;
        });
        HOOKCTL_RETURN_IF_ERROR(listed);
        std::sort(keys.begin(), keys.end());
    }
    std::optional<Error> failed;
    bool more = true;
    auto each = [&](const archive::Event& stored) {
        ReplayEvent event = from_archive(stored);
        if (spec.reparse) {
            if (auto ok = reparse(event, stored); !ok) {
                failed = ok.error();
                return false;
            }
        }
        auto go_on = limited(std::move(event));
        if (!go_on) {
            failed = go_on.error();
            return false;
        }
        more = *go_on;
        return more;
    };
    if (spec.ordered) {
        for (const auto& [received, seq] : keys) {
            archive::EventFilter one;
            one.after_seq = seq - 1;
            one.limit = 1;
            auto read = db.for_each_event(one, each);
            HOOKCTL_RETURN_IF_ERROR(read);
            if (failed) {
                return std::unexpected(*failed);
            }
            if (!more) {
                break;
            }
        }
        return {};
    }
    // Pages in seq order, so no read transaction stays open for the whole walk.
    std::int64_t cursor = 0;
    while (more) {
        archive::EventFilter page = filter;
        page.after_seq = cursor;
        page.limit = 256;
        std::uint64_t seen = 0;
        auto read = db.for_each_event(page, [&](const archive::Event& e) {
            ++seen;
            cursor = e.seq;
            return each(e);
        });
        HOOKCTL_RETURN_IF_ERROR(read);
        if (failed) {
            return std::unexpected(*failed);
        }
        if (seen == 0) {
            break;
        }
    }
    return {};
}

Result<std::int64_t> select_items(const SourceSpec& spec, archive::Store& store,
                                  std::string_view run_id) {
    if (spec.kind == SourceKind::archive) {
        return store.select_run_items(run_id, effective_filter(spec), spec.ordered);
    }
    // A foreign or MIME source: its events' ids in walk order, in batches.
    std::int64_t selected = 0;
    std::uint64_t left = spec.filter.limit.value_or(UINT64_MAX);
    std::vector<archive::RunItem> batch;
    auto flush = [&]() -> Result<void> {
        auto added = store.add_run_items(run_id, batch);
        batch.clear();
        return added;
    };
    auto walked = walk_foreign(spec, false, nullptr, [&](ReplayEvent&& e) -> Result<bool> {
        if (left == 0) {
            return false;
        }
        --left;
        archive::RunItem item;
        item.item = ++selected;
        item.event_id = std::move(e.event_id);
        item.seq = e.seq;
        batch.push_back(std::move(item));
        if (batch.size() >= 1000) {
            if (auto ok = flush(); !ok) {
                return std::unexpected(ok.error());
            }
        }
        return true;
    });
    HOOKCTL_RETURN_IF_ERROR(walked);
    if (auto ok = flush(); !ok) {
        return std::unexpected(ok.error());
    }
    return selected;
}

Result<std::optional<ReplayEvent>>
pending_event(const SourceSpec& spec, const archive::RunItem& item, const archive::Event& stored) {
    if (stored.event_id.empty()) {
        return std::nullopt;
    }
    ReplayEvent event = from_archive(stored);
    event.item = item.item;
    event.attempts_before = static_cast<int>(item.attempts);
    if (spec.reparse) {
        if (auto ok = reparse(event, stored); !ok) {
            return std::unexpected(ok.error());
        }
    }
    return event;
}

Result<void> for_each_pending(const SourceSpec& spec, archive::Store& store,
                              std::string_view run_id, const EventVisitor& visit,
                              const std::function<void(const archive::RunItem&)>& missing) {
    if (spec.kind == SourceKind::archive) {
        // The run's archive is the source: pending items joined with their events, by page.
        std::int64_t after = 0;
        while (true) {
            std::vector<std::pair<archive::RunItem, archive::Event>> page;
            auto read = store.for_each_pending_event(
                run_id, after, 256, [&](const archive::RunItem& item, const archive::Event& e) {
                    page.emplace_back(item, e);
                    return true;
                });
            HOOKCTL_RETURN_IF_ERROR(read);
            if (page.empty()) {
                return {};
            }
            for (auto& [item, stored] : page) {
                after = item.item;
                auto event = pending_event(spec, item, stored);
                HOOKCTL_RETURN_IF_ERROR(event);
                if (!*event) {
                    missing(item); // deleted from the archive since the run selected it
                    continue;
                }
                auto go_on = visit(std::move(**event));
                HOOKCTL_RETURN_IF_ERROR(go_on);
                if (!*go_on) {
                    return {};
                }
            }
        }
    }
    // A foreign or MIME source: walk it and match each event to its pending item, by position
    // first (the source unchanged), else by event id (rows reordered). Events no pending item
    // claims are not part of the run (delivered already, or new since the run began). Pending
    // items no event claimed by the end are missing from the source.
    std::unordered_set<std::int64_t> taken;
    archive::RunItem matched;
    WantMessage want = [&](std::int64_t position, const std::string& id) -> Result<bool> {
        auto found = store.find_run_item(run_id, position, id);
        HOOKCTL_RETURN_IF_ERROR(found);
        if (!*found || (*found)->state != archive::ItemState::pending ||
            !taken.insert((*found)->item).second) {
            return false;
        }
        matched = **found;
        return true;
    };
    auto walked = walk_foreign(spec, true, &want, [&](ReplayEvent&& e) -> Result<bool> {
        e.item = matched.item;
        e.attempts_before = static_cast<int>(matched.attempts);
        return visit(std::move(e));
    });
    if (!walked) {
        return walked;
    }
    PendingItems pending(store, std::string(run_id));
    while (true) {
        auto front = pending.front();
        HOOKCTL_RETURN_IF_ERROR(front);
        if (*front == nullptr) {
            return {};
        }
        if (!taken.contains((*front)->item)) {
            missing(**front);
        }
        pending.pop();
    }
}

Prefetch::Prefetch(SourceSpec spec, std::unique_ptr<archive::Store> store, std::string run_id,
                   std::size_t max_events, std::size_t max_bytes, std::function<void()> wake)
    : m_max_events(std::max<std::size_t>(1, max_events))
    , m_max_bytes(max_bytes)
    , m_wake(std::move(wake)) {
    m_thread = std::thread([this, spec = std::move(spec), store = std::move(store),
                            run_id = std::move(run_id)]() mutable {
        util::block_stop_signals(); // SIGINT reaches the sending thread and wakes its poll
        read(spec, *store, run_id);
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

void Prefetch::read(const SourceSpec& spec, archive::Store& store, const std::string& run_id) {
    auto missing = [&](const archive::RunItem&) {
        std::lock_guard lock(m_mutex);
        m_missing += 1;
    };
    auto walked = for_each_pending(
        spec, store, run_id,
        [&](ReplayEvent&& event) -> Result<bool> {
            std::unique_lock lock(m_mutex);
            // Full (either bound; an empty queue always takes one, however big): wait until the
            // sender took half, so the two threads hand over in batches, not event by event.
            if (!m_queue.empty() &&
                (m_queue.size() >= m_max_events || m_queued_bytes >= m_max_bytes)) {
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
        },
        missing);
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

std::int64_t Prefetch::missing() const {
    std::lock_guard lock(m_mutex);
    return m_missing;
}

} // namespace hookctl::replay
