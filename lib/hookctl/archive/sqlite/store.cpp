#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <sqlite3.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <nlohmann/json.hpp>

#include <hookctl/archive/archive.hpp>
#include <hookctl/archive/sqlite/schema.hpp>
#include <hookctl/archive/sqlite/store.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/time.hpp>
#include <hookctl/util/units.hpp>

namespace hookctl::archive::sqlite {

// The SQLite backend: one connection to an archive file.
class SqliteStore final : public Store {
public:
    struct Impl;
    explicit SqliteStore(std::unique_ptr<Impl> impl);
    ~SqliteStore() override;

    const std::string& path() const override;
    Result<std::unique_ptr<Store>> another(const OpenOptions& options) const override;
    int schema_version() const override;

    Result<void> begin() override;
    Result<void> commit() override;
    void rollback() override;
    bool in_transaction() const override;
    Result<std::vector<InsertResult>> insert_events(std::span<const NewEvent> events) override;
    Result<std::uint64_t> for_each_event(const EventFilter& filter,
                                         const std::function<bool(const Event&)>& visit) override;
    Result<std::string> event_query_plan(const EventFilter& filter) override;
    Result<std::uint64_t> count_events(const EventFilter& filter) override;
    Result<std::optional<Event>> get_event(std::string_view event_id) override;
    Result<std::vector<std::string>> mark_events(std::span<const std::string> event_ids,
                                                 EventStatus status,
                                                 std::string_view reason) override;
    Result<void> record_attempts(std::span<const Attempt> attempts) override;
    Result<std::vector<Attempt>> attempts_for(std::string_view event_id,
                                              std::string_view run_id) override;
    Result<Run> create_run(const NewRun& run) override;
    Result<void> update_run(std::string_view run_id, const RunProgress& progress, RunState state,
                            std::string_view last_error) override;
    Result<std::optional<Run>> get_run(std::string_view run_id) override;
    Result<std::vector<Run>> list_runs() override;
    Result<void> set_run_options(std::string_view run_id, std::string_view options_json) override;
    Result<std::int64_t> select_run_items(std::string_view run_id, const EventFilter& filter,
                                          bool by_received_at) override;
    Result<void> add_run_items(std::string_view run_id, std::span<const RunItem> items) override;
    Result<std::uint64_t>
    for_each_run_item(std::string_view run_id, std::int64_t after_item, std::uint64_t limit,
                      const std::function<bool(const RunItemCopy&)>& visit) override;
    Result<bool> copy_run(const Run& run) override;
    Result<std::uint64_t> copy_run_items(std::string_view run_id,
                                         std::span<const RunItemCopy> items) override;
    Result<std::uint64_t> copy_attempts(std::span<const Attempt> attempts) override;
    Result<std::uint64_t>
    for_each_pending_event(std::string_view run_id, std::int64_t after_item, std::uint64_t limit,
                           const std::function<bool(const RunItem&, const Event&)>& visit) override;
    Result<std::optional<RunItem>> find_run_item(std::string_view run_id, std::int64_t item,
                                                 std::string_view event_id) override;
    Result<ItemCounts> count_run_items(std::string_view run_id) override;
    Result<void> settle_items(std::span<const ItemVerdict> verdicts) override;
    Result<std::vector<AttemptCount>> count_attempts(std::string_view run_id) override;
    Result<void> log_requests(std::span<const RequestLog> entries) override;
    Result<std::vector<RequestCount>> request_counts() override;
    Result<Stats> stats(const EventFilter& filter, std::string_view run_id) override;
    Result<void> checkpoint(std::optional<std::chrono::milliseconds> max_wait) override;
    Result<std::int64_t> data_version() override;
    Result<HighWater> high_water() override;
    Result<std::uint64_t> for_each_attempt(
        std::int64_t after_id, std::uint64_t limit,
        const std::function<bool(const Attempt&, std::string_view org_id)>& visit) override;
    Result<std::vector<std::int64_t>> add_reparses(std::span<const NewReparse> reparses) override;
    Result<std::vector<Reparse>> reparses_of(std::string_view event_id, bool with_body) override;
    const EncryptionState& encryption() const override;
    Result<std::string> prepare_body_writes() override;
    Result<EncryptionState> reload_encryption() override;
    Result<void> record_encryption(const EncryptionState& state) override;
    Result<std::vector<StoredValue>> stored_values(StoredTable table, std::int64_t after_row,
                                                   std::size_t limit) override;
    Result<void> replace_stored_values(std::span<const StoredValue> values) override;
    Result<std::int64_t> last_stored_row(StoredTable table) override;
    const BodyCodec& codec() const override;

private:
    std::unique_ptr<Impl> m_impl;
};

namespace {

using json = nlohmann::json;

// What to do about a SQLite failure, by its primary result code.
std::string_view advice(int code) {
    switch (code) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return " (another process holds the archive's lock; wait for it or stop it, then retry)";
    case SQLITE_READONLY:
        return " (the file or its directory is read-only; give write permission or pass another "
               "--archive)";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return " (the file is not a hookctl archive or is corrupt; move it aside and pass "
               "another --archive, or restore it from a copy)";
    case SQLITE_FULL:
        return " (the disk is full; free space and retry)";
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return " (check that the path exists and that its directory is writable)";
    case SQLITE_IOERR:
        return " (an I/O error; check the disk and the filesystem)";
    default:
        return "";
    }
}

Error db_error(const std::string& path, std::string_view what, const SQLite::Exception& e) {
    int code = e.getErrorCode() & 0xff;
    return Error{ExitCode::environment, "archive " + path + ": " + std::string(what) +
                                            " failed: " + e.what() + std::string(advice(code))};
}

// Runs `body` (returning Result<T>), turning SQLite and other exceptions into Errors.
template <class F>
auto guarded(const std::string& path, std::string_view what, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const SQLite::Exception& e) {
        return std::unexpected(db_error(path, what, e));
    } catch (const std::exception& e) {
        return fail(ExitCode::environment,
                    "archive " + path + ": " + std::string(what) + " failed: " + e.what());
    }
}

std::string headers_to_json(const util::HeaderList& headers) {
    json array = json::array();
    for (const auto& [name, value] : headers.entries()) {
        array.push_back(json::array({name, value}));
    }
    return array.dump(-1, ' ', false, json::error_handler_t::replace);
}

util::HeaderList headers_from_json(std::string_view text) {
    util::HeaderList headers;
    auto parsed = json::parse(text, nullptr, false);
    if (!parsed.is_array()) {
        return headers;
    }
    for (const auto& pair : parsed) {
        if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string()) {
            headers.add(pair[0].get<std::string>(), pair[1].get<std::string>());
        }
    }
    return headers;
}

// Percent-encodes what a `file:` URI path cannot hold verbatim.
std::string uri_escape(const std::string& path) {
    std::string out;
    for (unsigned char c : path) {
        if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f) {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string column_bytes(const SQLite::Column& column) {
    if (column.isNull()) {
        return {};
    }
    const auto* data = static_cast<const char*>(column.getBlob());
    int size = column.getBytes();
    return data == nullptr ? std::string() : std::string(data, static_cast<std::size_t>(size));
}

std::string column_text(const SQLite::Column& column) {
    return column.isNull() ? std::string() : column.getString();
}

void bind_blob(SQLite::Statement& stmt, int index, const std::string& bytes) {
    if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw std::length_error("a body of " + std::to_string(bytes.size()) +
                                " bytes is larger than the archive can hold (2 GiB)");
    }
    stmt.bindNoCopy(index, static_cast<const void*>(bytes.data()), static_cast<int>(bytes.size()));
}

template <class T, class F> std::string json_list(const std::vector<T>& items, F&& to_text) {
    json array = json::array();
    for (const auto& item : items) {
        array.push_back(std::string(to_text(item)));
    }
    return array.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The WHERE clause of `filter` and a binder per `?`, in order.
struct BoundWhere {
    std::string sql;
    std::vector<std::function<void(SQLite::Statement&, int)>> binders;
};

BoundWhere where_clause(const EventFilter& filter, bool honour_after_seq) {
    BoundWhere w;
    auto add_text = [&](const std::string& clause, std::string value) {
        w.sql += clause;
        w.binders.push_back([v = std::move(value)](SQLite::Statement& s, int i) { s.bind(i, v); });
    };
    auto add_int = [&](const std::string& clause, std::int64_t value) {
        w.sql += clause;
        w.binders.push_back([value](SQLite::Statement& s, int i) { s.bind(i, value); });
    };
    // Paging by seq (`seq > ? ORDER BY seq LIMIT n`) must walk the primary key: with the
    // status or received_at index SQLite would collect and sort every match for each page,
    // O(N) a page and O(N^2) a run (a 1,000,000-event replay slowed to a few hundred a
    // second). A unary + keeps those columns off their indexes for paged reads.
    const std::string col = honour_after_seq && filter.after_seq ? " AND +" : " AND ";
    w.sql = " WHERE 1";
    if (!filter.statuses.empty()) {
        add_text(col + "status IN (SELECT value FROM json_each(?))",
                 json_list(filter.statuses, [](EventStatus s) { return to_string(s); }));
    }
    if (filter.since_ms) {
        add_int(col + "received_at_ms >= ?", *filter.since_ms);
    }
    if (filter.until_ms) {
        add_int(col + "received_at_ms < ?", *filter.until_ms);
    }
    if (!filter.org_ids.empty()) {
        add_text(" AND org_id IN (SELECT value FROM json_each(?))",
                 json_list(filter.org_ids, [](const std::string& s) { return s; }));
    }
    if (!filter.event_ids.empty()) {
        add_text(" AND event_id IN (SELECT value FROM json_each(?))",
                 json_list(filter.event_ids, [](const std::string& s) { return s; }));
    }
    if (honour_after_seq && filter.after_seq) {
        add_int(" AND seq > ?", *filter.after_seq);
    }
    return w;
}

// The columns read_event reads, in its order; `events` and `bodies` name the two tables (their
// aliases in a join), `bodies` empty to read no bytes.
std::string event_columns(const std::string& events, const std::string& bodies) {
    std::string out;
    auto add = [&](const std::string& table, const char* column) {
        out += (out.empty() ? "" : ", ") + table + "." + column;
    };
    for (const char* c : {"seq", "event_id", "received_at_ms", "org_id", "scheme", "headers"}) {
        add(events, c);
    }
    if (bodies.empty()) {
        out += ", NULL, NULL";
    } else {
        add(bodies, "body");
        add(bodies, "raw_mime");
    }
    for (const char* c : {"status", "attempts", "last_error", "updated_at_ms", "trace_id", "source",
                          "verified_by", "client_identity"}) {
        add(events, c);
    }
    return out;
}
constexpr int k_event_column_count = 16;

std::string event_select(bool with_body) {
    return "SELECT " + event_columns("events", with_body ? "event_bodies" : "") +
           (with_body ? " FROM events LEFT JOIN event_bodies USING (seq)" : " FROM events");
}

Event read_event(SQLite::Statement& stmt) {
    Event e;
    e.seq = stmt.getColumn(0).getInt64();
    e.event_id = column_text(stmt.getColumn(1));
    e.received_at_ms = stmt.getColumn(2).getInt64();
    e.org_id = column_text(stmt.getColumn(3));
    e.scheme = column_text(stmt.getColumn(4));
    e.headers = headers_from_json(column_text(stmt.getColumn(5)));
    e.body = column_bytes(stmt.getColumn(6));
    if (!stmt.getColumn(7).isNull()) {
        e.raw_mime = column_bytes(stmt.getColumn(7));
    }
    auto status = parse_event_status(column_text(stmt.getColumn(8)));
    e.status = status ? *status : EventStatus::received;
    e.attempts = stmt.getColumn(9).getInt64();
    e.last_error = column_text(stmt.getColumn(10));
    e.updated_at_ms = stmt.getColumn(11).getInt64();
    e.trace_id = column_text(stmt.getColumn(12));
    e.source = column_text(stmt.getColumn(13));
    e.verified_by = column_text(stmt.getColumn(14));
    e.client_identity = column_text(stmt.getColumn(15));
    return e;
}

constexpr const char* k_run_columns =
    "run_id, kind, source, target, options, state, total, done, delivered, failed, cursor, "
    "created_at_ms, updated_at_ms, last_error, started_by, paused_until_ms";

Run read_run(SQLite::Statement& stmt) {
    Run r;
    r.run_id = column_text(stmt.getColumn(0));
    r.kind = column_text(stmt.getColumn(1));
    r.source = column_text(stmt.getColumn(2));
    r.target = column_text(stmt.getColumn(3));
    r.options_json = column_text(stmt.getColumn(4));
    auto state = parse_run_state(column_text(stmt.getColumn(5)));
    r.state = state ? *state : RunState::failed;
    r.progress.total = stmt.getColumn(6).getInt64();
    r.progress.done = stmt.getColumn(7).getInt64();
    r.progress.delivered = stmt.getColumn(8).getInt64();
    r.progress.dead = stmt.getColumn(9).getInt64();
    r.progress.cursor = stmt.getColumn(10).getInt64();
    r.created_at_ms = stmt.getColumn(11).getInt64();
    r.updated_at_ms = stmt.getColumn(12).getInt64();
    r.last_error = column_text(stmt.getColumn(13));
    r.started_by = column_text(stmt.getColumn(14));
    r.progress.paused_until_ms = stmt.getColumn(15).getInt64();
    return r;
}

// Reads archive_meta into `codec`'s state. Fails (exit 4) on rows this hookctl cannot read.
Result<void> refresh_encryption(SQLite::Database& db, BodyCodec& codec, const std::string& path) {
    std::map<std::string, std::string> meta;
    SQLite::Statement stmt(db, "SELECT key, value FROM archive_meta");
    while (stmt.executeStep()) {
        meta[column_text(stmt.getColumn(0))] = column_text(stmt.getColumn(1));
    }
    auto state = encryption_from_meta(meta);
    if (!state) {
        return fail(state.error().code, "archive " + path + ": " + state.error().message);
    }
    codec.set_state(std::move(*state));
    return {};
}

Result<void> write_encryption(SQLite::Database& db, const EncryptionState& state) {
    SQLite::Statement upsert(db, "INSERT INTO archive_meta (key, value) VALUES (?1, ?2) "
                                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    SQLite::Statement remove(db, "DELETE FROM archive_meta WHERE key = ?1");
    for (const auto& [key, value] : encryption_to_meta(state)) {
        auto& stmt = value.empty() ? remove : upsert;
        stmt.reset();
        stmt.bind(1, key);
        if (!value.empty()) {
            stmt.bind(2, value);
        }
        stmt.exec();
    }
    return {};
}

// With the write lock held: the state read again, and whether this handle may store values
// (an empty archive given a key is recorded as encrypted). See BodyCodec::check_write.
Result<void> prepare_writes(SQLite::Database& db, BodyCodec& codec, const std::string& path) {
    if (auto fresh = refresh_encryption(db, codec, path); !fresh) {
        return fresh;
    }
    bool has_values = false;
    if (!codec.state().encrypted && codec.cipher()) {
        has_values = db.execAndGet("SELECT EXISTS (SELECT 1 FROM event_bodies) OR "
                                   "EXISTS (SELECT 1 FROM event_reparses)")
                         .getInt() != 0;
    }
    auto checked = codec.check_write(has_values);
    HOOKCTL_RETURN_IF_ERROR(checked);
    if (*checked) {
        if (auto written = write_encryption(db, **checked); !written) {
            return written;
        }
        codec.set_state(std::move(**checked));
    }
    return {};
}

// The stored value `stored` of `field` of `event_id` as bytes (see BodyCodec::decode), the
// state read again first when it may be stale.
Result<std::string> open_value(SQLite::Database& db, BodyCodec& codec, const std::string& path,
                               std::string stored, std::string_view field,
                               std::string_view event_id, StoredTable table, std::int64_t row) {
    if (codec.stale_for(stored)) {
        if (auto fresh = refresh_encryption(db, codec, path); !fresh) {
            return std::unexpected(fresh.error());
        }
    }
    return codec.decode(std::move(stored), field, event_id, table, row);
}

// Opens the body and raw MIME of `e` as read by read_event.
Result<void> open_values(SQLite::Database& db, BodyCodec& codec, const std::string& path,
                         Event& e) {
    if (!codec.state().encrypted && !codec.stale_for(e.body) &&
        !(e.raw_mime && codec.stale_for(*e.raw_mime))) {
        return {}; // an archive in clear: the bytes are the values
    }
    auto body = open_value(db, codec, path, std::move(e.body), k_field_body, e.event_id,
                           StoredTable::bodies, e.seq);
    HOOKCTL_RETURN_IF_ERROR(body);
    e.body = std::move(*body);
    if (e.raw_mime) {
        auto mime = open_value(db, codec, path, std::move(*e.raw_mime), k_field_raw_mime,
                               e.event_id, StoredTable::bodies, e.seq);
        HOOKCTL_RETURN_IF_ERROR(mime);
        e.raw_mime = std::move(*mime);
    }
    return {};
}

} // namespace

// ---------------------------------------------------------------------------------------------

struct SqliteStore::Impl {
    std::string path;
    SQLite::Database db; // declared before the statements: destroyed after them
    int version = 0;
    bool in_transaction = false;
    BodyCodec codec; // encryption at rest: the keys given and the state last read
    std::optional<SQLite::Statement> insert_event;
    std::optional<SQLite::Statement> insert_body;
    std::optional<SQLite::Statement> mark_event;
    std::optional<SQLite::Statement> insert_attempt;
    std::optional<SQLite::Statement> count_attempt;
    std::optional<SQLite::Statement> count_attempt_status;
    std::optional<SQLite::Statement> count_item_attempt;
    std::optional<SQLite::Statement> find_item_at;
    std::optional<SQLite::Statement> find_item_by_id;
    std::optional<SQLite::Statement> insert_request;

    // `open_name` is what SQLite opens: `path`, or a `file:` URI.
    Impl(std::string p, const std::string& open_name, int flags, int busy_ms)
        : path(std::move(p))
        , db(open_name, flags, busy_ms)
        , busy_timeout_ms(busy_ms) {}

    int busy_timeout_ms;

    ~Impl() {
        insert_event.reset();
        insert_body.reset();
        mark_event.reset();
        insert_attempt.reset();
        count_attempt.reset();
        count_attempt_status.reset();
        count_item_attempt.reset();
        find_item_at.reset();
        find_item_by_id.reset();
        insert_request.reset();
        if (in_transaction) {
            try {
                db.exec("ROLLBACK");
            } catch (...) { // closing rolls back anyway
            }
        }
    }

    SQLite::Statement& prepared(std::optional<SQLite::Statement>& slot, const char* sql) {
        if (!slot) {
            slot.emplace(db, sql);
        }
        slot->reset();
        slot->clearBindings();
        return *slot;
    }
};

namespace {

// One write: its own IMMEDIATE transaction, or a savepoint inside an explicit transaction.
class WriteScope {
public:
    WriteScope(SQLite::Database& db, bool in_transaction)
        : m_db(db)
        , m_own(!in_transaction) {
        m_db.exec(m_own ? "BEGIN IMMEDIATE" : "SAVEPOINT hookctl_write");
    }
    WriteScope(const WriteScope&) = delete;
    WriteScope& operator=(const WriteScope&) = delete;
    ~WriteScope() {
        if (m_done) {
            return;
        }
        try {
            if (m_own) {
                m_db.exec("ROLLBACK");
            } else {
                m_db.exec("ROLLBACK TO hookctl_write");
                m_db.exec("RELEASE hookctl_write");
            }
        } catch (...) { // nothing better to do while unwinding
        }
    }
    void commit() {
        m_db.exec(m_own ? "COMMIT" : "RELEASE hookctl_write");
        m_done = true;
    }

private:
    SQLite::Database& m_db;
    bool m_own;
    bool m_done = false;
};

int read_int_pragma(SQLite::Database& db, const char* pragma) {
    return db.execAndGet(std::string("PRAGMA ") + pragma).getInt();
}

} // namespace

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl)
    : m_impl(std::move(impl)) {}
SqliteStore::~SqliteStore() = default;

const std::string& SqliteStore::path() const {
    return m_impl->path;
}

Result<std::unique_ptr<Store>> SqliteStore::another(const OpenOptions& options) const {
    if (options.cipher || !m_impl->codec.cipher()) {
        return sqlite::open(m_impl->path, options);
    }
    OpenOptions same_keys = options;
    same_keys.cipher = m_impl->codec.cipher();
    return sqlite::open(m_impl->path, same_keys);
}

int SqliteStore::schema_version() const {
    return m_impl->version;
}

Result<std::unique_ptr<Store>> open(const std::string& path, const OpenOptions& options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    if (path.empty()) {
        return fail(ExitCode::usage, "archive path is empty: pass --archive FILE");
    }
    if (exists && fs::is_directory(path, ec)) {
        return fail(ExitCode::environment,
                    "archive " + path + " is a directory: pass the path of an archive file");
    }
    if (!exists && options.mode != Mode::create) {
        return fail(ExitCode::environment,
                    "archive " + path +
                        " does not exist: pass the right --archive, or create one with "
                        "`hookctl events import --archive " +
                        path + " FILE` or `hookctl listen --archive " + path + "`");
    }
    int flags = SQLite::OPEN_NOMUTEX;
    switch (options.mode) {
    case Mode::create:
        flags |= SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE;
        break;
    case Mode::read_write:
        flags |= SQLite::OPEN_READWRITE;
        break;
    case Mode::read_only:
        flags |= SQLite::OPEN_READONLY;
        break;
    }
    const bool writing = options.mode != Mode::read_only;
    // A reader that can create neither the -shm nor the -wal file (a read-only directory)
    // retries with `immutable=1`: no writer can be active there either.
    bool immutable = false;
    for (;;) {
        try {
            const std::string open_name =
                immutable ? "file:" + uri_escape(path) + "?immutable=1" : path;
            auto impl = std::make_unique<SqliteStore::Impl>(
                path, open_name, immutable ? flags | SQLite::OPEN_URI : flags,
                static_cast<int>(options.busy_timeout.count()));
            auto& db = impl->db;
            if (writing && sqlite3_db_readonly(db.getHandle(), "main") == 1) {
                return fail(ExitCode::environment,
                            "archive " + path +
                                " is read-only (file permissions or a read-only filesystem) and "
                                "this command writes to it: give write permission, or copy the "
                                "file somewhere writable and pass that --archive");
            }
            // The first read of the file: a corrupt or foreign file fails here.
            int app_id = read_int_pragma(db, "application_id");
            int version = read_int_pragma(db, "user_version");
            if (app_id != 0 && app_id != k_application_id) {
                char hex[16];
                std::snprintf(hex, sizeof hex, "0x%08x", static_cast<unsigned>(app_id));
                return fail(ExitCode::environment,
                            "archive " + path +
                                " is a SQLite database of another application "
                                "(application_id " +
                                hex + "), not a hookctl archive: pass another --archive");
            }
            if (app_id == 0 && version == 0 &&
                db.execAndGet("SELECT count(*) FROM sqlite_master").getInt() > 0) {
                return fail(
                    ExitCode::environment,
                    "archive " + path +
                        " is a SQLite database but not a hookctl archive (it has tables and "
                        "no hookctl schema version): pass another --archive");
            }
            if (version > k_schema_version) {
                return fail(ExitCode::environment,
                            "archive " + path + " has schema version " + std::to_string(version) +
                                ", written by a newer hookctl (this one knows up to version " +
                                std::to_string(k_schema_version) + "): upgrade hookctl");
            }
            if (!writing && version < k_schema_version) {
                return fail(ExitCode::environment,
                            "archive " + path + " has schema version " + std::to_string(version) +
                                " and this hookctl reads version " +
                                std::to_string(k_schema_version) +
                                ": migrate it once with `hookctl events migrate --archive " + path +
                                "` (needs write access)");
            }
            if (writing) {
                auto mode = db.execAndGet("PRAGMA journal_mode=WAL").getString();
                if (mode != "wal") {
                    return fail(ExitCode::environment,
                                "archive " + path +
                                    ": could not switch to WAL mode (journal mode is " + mode +
                                    "); the filesystem may lack shared memory support (NFS?): put "
                                    "the archive on a local disk");
                }
                db.exec(options.synchronous_full ? "PRAGMA synchronous=FULL"
                                                 : "PRAGMA synchronous=NORMAL");
                if (version < k_schema_version) {
                    db.exec("BEGIN IMMEDIATE");
                    try {
                        // Another process may have migrated while we waited for the lock.
                        version = read_int_pragma(db, "user_version");
                        auto steps = schema::migrations();
                        for (int v = version; v < k_schema_version; ++v) {
                            db.exec(std::string(steps[static_cast<std::size_t>(v)]));
                        }
                        db.exec("PRAGMA user_version=" + std::to_string(k_schema_version));
                        db.exec("PRAGMA application_id=" + std::to_string(k_application_id));
                        db.exec("COMMIT");
                    } catch (...) {
                        try {
                            db.exec("ROLLBACK");
                        } catch (...) { // the original error matters more
                        }
                        throw;
                    }
                    version = k_schema_version;
                }
            }
            impl->version = version;
            impl->codec = BodyCodec(options.cipher, path);
            if (auto read = refresh_encryption(db, impl->codec, path); !read) {
                return std::unexpected(read.error());
            }
            if (auto key = impl->codec.check_key(); !key) {
                return std::unexpected(key.error());
            }
            if (options.cipher && writing) {
                // Pages freed by this handle are zeroed: a body in clear replaced by its sealed
                // form (events rekey) leaves no copy in the file's free pages.
                db.exec("PRAGMA secure_delete=ON");
            }
            return std::make_unique<SqliteStore>(std::move(impl));
        } catch (const SQLite::Exception& e) {
            int code = e.getErrorCode() & 0xff;
            if (!writing && !immutable && (code == SQLITE_CANTOPEN || code == SQLITE_READONLY)) {
                immutable = true;
                continue;
            }
            return std::unexpected(db_error(path, "open", e));
        } catch (const std::exception& e) {
            return fail(ExitCode::environment, "archive " + path + ": open failed: " + e.what());
        }
    }
}

Result<void> SqliteStore::begin() {
    auto& impl = *m_impl;
    if (impl.in_transaction) {
        return fail(ExitCode::usage, "archive " + impl.path + ": a transaction is already open");
    }
    return guarded(impl.path, "begin transaction", [&]() -> Result<void> {
        impl.db.exec("BEGIN IMMEDIATE");
        impl.in_transaction = true;
        return {};
    });
}

Result<void> SqliteStore::commit() {
    auto& impl = *m_impl;
    if (!impl.in_transaction) {
        return fail(ExitCode::usage, "archive " + impl.path + ": no transaction to commit");
    }
    return guarded(impl.path, "commit", [&]() -> Result<void> {
        try {
            impl.db.exec("COMMIT");
        } catch (...) {
            rollback();
            throw;
        }
        impl.in_transaction = false;
        return {};
    });
}

void SqliteStore::rollback() {
    auto& impl = *m_impl;
    if (!impl.in_transaction) {
        return;
    }
    impl.in_transaction = false;
    try {
        impl.db.exec("ROLLBACK");
    } catch (...) { // SQLite already rolled back (e.g. after an I/O error)
    }
}

bool SqliteStore::in_transaction() const {
    return m_impl->in_transaction;
}

Result<std::vector<InsertResult>> SqliteStore::insert_events(std::span<const NewEvent> events) {
    auto& impl = *m_impl;
    for (const auto& e : events) {
        if (e.event_id.empty()) {
            return fail(ExitCode::usage,
                        "archive " + impl.path + ": an event without an event_id cannot be stored");
        }
    }
    return guarded(impl.path, "insert events", [&]() -> Result<std::vector<InsertResult>> {
        std::vector<InsertResult> results;
        results.reserve(events.size());
        std::string headers;
        const std::int64_t now = util::unix_now_ms();
        WriteScope write(impl.db, impl.in_transaction);
        if (auto ready = prepare_writes(impl.db, impl.codec, impl.path); !ready) {
            return std::unexpected(ready.error());
        }
        const bool sealing = impl.codec.state().encrypted;
        std::string sealed_body;
        std::optional<std::string> sealed_mime;
        for (const auto& e : events) {
            auto& stmt = impl.prepared(
                impl.insert_event,
                "INSERT INTO events (event_id, received_at_ms, org_id, scheme, headers, status, "
                "attempts, last_error, updated_at_ms, trace_id, source, verified_by, "
                "client_identity) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
                "ON CONFLICT (event_id) DO NOTHING");
            headers = headers_to_json(e.headers);
            stmt.bindNoCopy(1, e.event_id);
            stmt.bind(2, static_cast<std::int64_t>(e.received_at_ms));
            stmt.bindNoCopy(3, e.org_id);
            stmt.bindNoCopy(4, e.scheme);
            stmt.bindNoCopy(5, headers);
            stmt.bind(6, std::string(to_string(e.status)));
            stmt.bind(7, static_cast<std::int64_t>(e.attempts));
            stmt.bindNoCopy(8, e.last_error);
            stmt.bind(9, static_cast<std::int64_t>(e.updated_at_ms.value_or(now)));
            stmt.bindNoCopy(10, e.trace_id);
            stmt.bindNoCopy(11, e.source);
            stmt.bindNoCopy(12, e.verified_by);
            stmt.bindNoCopy(13, e.client_identity);
            int changed = stmt.exec();
            if (changed == 1) {
                if (sealing) {
                    auto b = impl.codec.encode(e.body, k_field_body, e.event_id);
                    HOOKCTL_RETURN_IF_ERROR(b);
                    sealed_body = std::move(*b);
                    sealed_mime.reset();
                    if (e.raw_mime) {
                        auto m = impl.codec.encode(*e.raw_mime, k_field_raw_mime, e.event_id);
                        HOOKCTL_RETURN_IF_ERROR(m);
                        sealed_mime = std::move(*m);
                    }
                }
                const std::string& body_bytes = sealing ? sealed_body : e.body;
                const std::optional<std::string>& mime_bytes = sealing ? sealed_mime : e.raw_mime;
                auto& body = impl.prepared(
                    impl.insert_body,
                    "INSERT INTO event_bodies (seq, body, raw_mime) VALUES (?1, ?2, ?3)");
                body.bind(1, impl.db.getLastInsertRowid());
                bind_blob(body, 2, body_bytes);
                if (mime_bytes) {
                    bind_blob(body, 3, *mime_bytes);
                } else {
                    body.bind(3);
                }
                body.exec();
            }
            results.push_back(changed == 1 ? InsertResult::inserted : InsertResult::duplicate);
        }
        write.commit();
        return results;
    });
}

namespace {

// The statement for_each_event runs for `filter`, bound, optionally under EXPLAIN QUERY PLAN.
SQLite::Statement event_query(SQLite::Database& db, const EventFilter& filter, bool explain) {
    auto where = where_clause(filter, true);
    std::string sql = event_select(filter.with_body) + where.sql + " ORDER BY seq";
    if (filter.limit) {
        sql += " LIMIT " + std::to_string(*filter.limit);
    }
    SQLite::Statement stmt(db, explain ? "EXPLAIN QUERY PLAN " + sql : sql);
    for (std::size_t i = 0; i < where.binders.size(); ++i) {
        where.binders[i](stmt, static_cast<int>(i + 1));
    }
    return stmt;
}

} // namespace

Result<std::string> SqliteStore::event_query_plan(const EventFilter& filter) {
    auto& impl = *m_impl;
    return guarded(impl.path, "explain the event query", [&]() -> Result<std::string> {
        auto stmt = event_query(impl.db, filter, true);
        std::string plan;
        while (stmt.executeStep()) {
            plan += stmt.getColumn(3).getString() + "\n";
        }
        return plan;
    });
}

Result<std::uint64_t> SqliteStore::for_each_event(const EventFilter& filter,
                                                  const std::function<bool(const Event&)>& visit) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read events", [&]() -> Result<std::uint64_t> {
        auto stmt = event_query(impl.db, filter, false);
        std::uint64_t visited = 0;
        while (stmt.executeStep()) {
            ++visited;
            Event event = read_event(stmt);
            if (filter.with_body) {
                if (auto opened = open_values(impl.db, impl.codec, impl.path, event); !opened) {
                    return std::unexpected(opened.error());
                }
            }
            if (!visit(event)) {
                break;
            }
        }
        return visited;
    });
}

Result<std::uint64_t> SqliteStore::count_events(const EventFilter& filter) {
    auto& impl = *m_impl;
    return guarded(impl.path, "count events", [&]() -> Result<std::uint64_t> {
        auto where = where_clause(filter, true);
        SQLite::Statement stmt(impl.db, "SELECT count(*) FROM events" + where.sql);
        for (std::size_t i = 0; i < where.binders.size(); ++i) {
            where.binders[i](stmt, static_cast<int>(i + 1));
        }
        stmt.executeStep();
        return static_cast<std::uint64_t>(stmt.getColumn(0).getInt64());
    });
}

Result<std::optional<Event>> SqliteStore::get_event(std::string_view event_id) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read event", [&]() -> Result<std::optional<Event>> {
        SQLite::Statement stmt(impl.db, event_select(true) + " WHERE event_id = ?");
        stmt.bind(1, std::string(event_id));
        if (!stmt.executeStep()) {
            return std::nullopt;
        }
        Event event = read_event(stmt);
        if (auto opened = open_values(impl.db, impl.codec, impl.path, event); !opened) {
            return std::unexpected(opened.error());
        }
        return event;
    });
}

Result<std::vector<std::string>> SqliteStore::mark_events(std::span<const std::string> event_ids,
                                                          EventStatus status,
                                                          std::string_view reason) {
    auto& impl = *m_impl;
    return guarded(impl.path, "mark events", [&]() -> Result<std::vector<std::string>> {
        std::vector<std::string> missing;
        const std::string status_text(to_string(status));
        const std::string reason_text(reason);
        const std::int64_t now = util::unix_now_ms();
        WriteScope write(impl.db, impl.in_transaction);
        for (const auto& id : event_ids) {
            auto& stmt =
                impl.prepared(impl.mark_event, "UPDATE events SET status = ?1, last_error = ?2, "
                                               "updated_at_ms = ?3 WHERE event_id = ?4");
            stmt.bind(1, status_text);
            stmt.bind(2, reason_text);
            stmt.bind(3, static_cast<std::int64_t>(now));
            stmt.bind(4, id);
            if (stmt.exec() == 0) {
                missing.push_back(id);
            }
        }
        write.commit();
        return missing;
    });
}

Result<void> SqliteStore::record_attempts(std::span<const Attempt> attempts) {
    auto& impl = *m_impl;
    return guarded(impl.path, "record attempts", [&]() -> Result<void> {
        WriteScope write(impl.db, impl.in_transaction);
        for (const auto& a : attempts) {
            auto& ins = impl.prepared(
                impl.insert_attempt,
                "INSERT INTO attempts (run_id, event_id, target, attempt, at_ms, http_status, "
                "latency_ms, outcome, reason, detail) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
            ins.bindNoCopy(1, a.run_id);
            ins.bindNoCopy(2, a.event_id);
            ins.bindNoCopy(3, a.target);
            ins.bind(4, static_cast<std::int64_t>(a.attempt));
            ins.bind(5, static_cast<std::int64_t>(a.at_ms));
            ins.bind(6, a.http_status);
            ins.bind(7, a.latency_ms);
            ins.bind(8, std::string(to_string(a.outcome)));
            ins.bindNoCopy(9, a.reason);
            ins.bindNoCopy(10, a.detail);
            ins.exec();
            if (a.new_status) {
                auto& upd = impl.prepared(impl.count_attempt_status,
                                          "UPDATE events SET attempts = attempts + 1, "
                                          "updated_at_ms = ?1, status = ?3, last_error = ?4 "
                                          "WHERE event_id = ?2");
                upd.bind(1, static_cast<std::int64_t>(a.at_ms));
                upd.bindNoCopy(2, a.event_id);
                upd.bind(3, std::string(to_string(*a.new_status)));
                upd.bind(4, *a.new_status == EventStatus::delivered ? std::string() : a.reason);
                upd.exec();
            } else {
                auto& upd =
                    impl.prepared(impl.count_attempt, "UPDATE events SET attempts = attempts + 1, "
                                                      "updated_at_ms = ?1 WHERE event_id = ?2");
                upd.bind(1, static_cast<std::int64_t>(a.at_ms));
                upd.bindNoCopy(2, a.event_id);
                upd.exec();
            }
            if (a.item > 0) {
                auto& item = impl.prepared(impl.count_item_attempt,
                                           "UPDATE run_items SET attempts = attempts + 1, "
                                           "state = coalesce(?1, state) WHERE run_id = ?2 AND "
                                           "item = ?3");
                if (a.item_state) {
                    item.bind(1, std::string(to_string(*a.item_state)));
                } else {
                    item.bind(1);
                }
                item.bindNoCopy(2, a.run_id);
                item.bind(3, static_cast<std::int64_t>(a.item));
                item.exec();
            }
        }
        write.commit();
        return {};
    });
}

namespace {

// An attempt's stored outcome text as the enum; an archive holding any other text was not
// written by this hookctl.
Result<AttemptOutcome> read_outcome(const std::string& path, const SQLite::Column& column) {
    auto text = column_text(column);
    if (auto outcome = parse_attempt_outcome(text)) {
        return *outcome;
    }
    return fail(ExitCode::environment,
                "archive " + path + " holds an attempt with the unknown outcome '" + text +
                    "' (written by another hookctl version? use that version to read it)");
}

} // namespace

Result<std::vector<Attempt>> SqliteStore::attempts_for(std::string_view event_id,
                                                       std::string_view run_id) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read attempts", [&]() -> Result<std::vector<Attempt>> {
        std::string sql = "SELECT run_id, event_id, target, attempt, at_ms, http_status, "
                          "latency_ms, outcome, reason, detail FROM attempts WHERE event_id = ?1";
        if (!run_id.empty()) {
            sql += " AND run_id = ?2";
        }
        sql += " ORDER BY at_ms, id";
        SQLite::Statement stmt(impl.db, sql);
        stmt.bind(1, std::string(event_id));
        if (!run_id.empty()) {
            stmt.bind(2, std::string(run_id));
        }
        std::vector<Attempt> out;
        while (stmt.executeStep()) {
            Attempt a;
            a.run_id = column_text(stmt.getColumn(0));
            a.event_id = column_text(stmt.getColumn(1));
            a.target = column_text(stmt.getColumn(2));
            a.attempt = stmt.getColumn(3).getInt64();
            a.at_ms = stmt.getColumn(4).getInt64();
            a.http_status = stmt.getColumn(5).getInt();
            a.latency_ms = stmt.getColumn(6).getDouble();
            auto outcome = read_outcome(impl.path, stmt.getColumn(7));
            HOOKCTL_RETURN_IF_ERROR(outcome);
            a.outcome = *outcome;
            a.reason = column_text(stmt.getColumn(8));
            a.detail = column_text(stmt.getColumn(9));
            out.push_back(std::move(a));
        }
        return out;
    });
}

Result<Run> SqliteStore::create_run(const NewRun& run) {
    auto& impl = *m_impl;
    if (run.kind.empty()) {
        return fail(ExitCode::usage, "archive " + impl.path + ": a run needs a kind");
    }
    Run created;
    created.run_id =
        run.run_id.empty() ? "run_" + util::hex_encode(util::random_bytes(8)) : run.run_id;
    created.kind = run.kind;
    created.source = run.source;
    created.target = run.target;
    created.options_json = run.options_json.empty() ? "{}" : run.options_json;
    created.created_at_ms = created.updated_at_ms = util::unix_now_ms();
    return guarded(impl.path, "create run", [&]() -> Result<Run> {
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement exists(impl.db, "SELECT 1 FROM runs WHERE run_id = ?");
        exists.bind(1, created.run_id);
        if (exists.executeStep()) {
            return fail(ExitCode::usage, "archive " + impl.path + ": run id " + created.run_id +
                                             " already exists: choose another id");
        }
        SQLite::Statement stmt(impl.db, "INSERT INTO runs (run_id, kind, source, target, "
                                        "options, state, created_at_ms, updated_at_ms, "
                                        "started_by) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)");
        stmt.bind(1, created.run_id);
        stmt.bind(2, created.kind);
        stmt.bind(3, created.source);
        stmt.bind(4, created.target);
        stmt.bind(5, created.options_json);
        stmt.bind(6, static_cast<std::int64_t>(created.created_at_ms));
        stmt.bind(7, static_cast<std::int64_t>(created.updated_at_ms));
        stmt.bind(8, run.started_by);
        stmt.exec();
        write.commit();
        created.started_by = run.started_by;
        return created;
    });
}

Result<void> SqliteStore::update_run(std::string_view run_id, const RunProgress& progress,
                                     RunState state, std::string_view last_error) {
    auto& impl = *m_impl;
    return guarded(impl.path, "update run", [&]() -> Result<void> {
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement stmt(impl.db,
                               "UPDATE runs SET total = ?, done = ?, delivered = ?, failed = ?, "
                               "cursor = ?, state = ?, last_error = ?, updated_at_ms = ?, "
                               "paused_until_ms = ? WHERE run_id = ?");
        stmt.bind(1, static_cast<std::int64_t>(progress.total));
        stmt.bind(2, static_cast<std::int64_t>(progress.done));
        stmt.bind(3, static_cast<std::int64_t>(progress.delivered));
        stmt.bind(4, static_cast<std::int64_t>(progress.dead));
        stmt.bind(5, static_cast<std::int64_t>(progress.cursor));
        stmt.bind(6, std::string(to_string(state)));
        stmt.bind(7, std::string(last_error));
        stmt.bind(8, static_cast<std::int64_t>(util::unix_now_ms()));
        stmt.bind(9, static_cast<std::int64_t>(progress.paused_until_ms));
        stmt.bind(10, std::string(run_id));
        if (stmt.exec() == 0) {
            return fail(ExitCode::usage, "archive " + impl.path + ": no run with id " +
                                             std::string(run_id) +
                                             " (list runs with `hookctl replay --list`)");
        }
        write.commit();
        return {};
    });
}

Result<std::optional<Run>> SqliteStore::get_run(std::string_view run_id) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read run", [&]() -> Result<std::optional<Run>> {
        SQLite::Statement stmt(impl.db, std::string("SELECT ") + k_run_columns +
                                            " FROM runs WHERE run_id = ?");
        stmt.bind(1, std::string(run_id));
        if (!stmt.executeStep()) {
            return std::nullopt;
        }
        return read_run(stmt);
    });
}

Result<std::vector<Run>> SqliteStore::list_runs() {
    auto& impl = *m_impl;
    return guarded(impl.path, "list runs", [&]() -> Result<std::vector<Run>> {
        SQLite::Statement stmt(impl.db, std::string("SELECT ") + k_run_columns +
                                            " FROM runs ORDER BY created_at_ms DESC, rowid DESC");
        std::vector<Run> out;
        while (stmt.executeStep()) {
            out.push_back(read_run(stmt));
        }
        return out;
    });
}

Result<void> SqliteStore::set_run_options(std::string_view run_id, std::string_view options_json) {
    auto& impl = *m_impl;
    return guarded(impl.path, "update run options", [&]() -> Result<void> {
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement stmt(impl.db,
                               "UPDATE runs SET options = ?, updated_at_ms = ? WHERE run_id = ?");
        stmt.bind(1, std::string(options_json));
        stmt.bind(2, static_cast<std::int64_t>(util::unix_now_ms()));
        stmt.bind(3, std::string(run_id));
        if (stmt.exec() == 0) {
            return fail(ExitCode::usage,
                        "archive " + impl.path + ": no run with id " + std::string(run_id));
        }
        write.commit();
        return {};
    });
}

Result<std::int64_t> SqliteStore::select_run_items(std::string_view run_id,
                                                   const EventFilter& filter, bool by_received_at) {
    auto& impl = *m_impl;
    return guarded(impl.path, "select the run's events", [&]() -> Result<std::int64_t> {
        auto where = where_clause(filter, false);
        const std::string order = by_received_at ? "received_at_ms, seq" : "seq";
        std::string sql = "INSERT INTO run_items (run_id, item, event_id, seq) SELECT ?, "
                          "row_number() OVER (ORDER BY " +
                          order + "), event_id, seq FROM events" + where.sql + " ORDER BY " + order;
        if (filter.limit) {
            sql += " LIMIT " + std::to_string(*filter.limit);
        }
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement stmt(impl.db, sql);
        stmt.bind(1, std::string(run_id));
        for (std::size_t i = 0; i < where.binders.size(); ++i) {
            where.binders[i](stmt, static_cast<int>(i + 2));
        }
        auto selected = static_cast<std::int64_t>(stmt.exec());
        write.commit();
        return selected;
    });
}

Result<void> SqliteStore::add_run_items(std::string_view run_id, std::span<const RunItem> items) {
    auto& impl = *m_impl;
    return guarded(impl.path, "record the run's selection", [&]() -> Result<void> {
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement stmt(impl.db, "INSERT INTO run_items (run_id, item, event_id, seq, "
                                        "state, attempts) VALUES (?, ?, ?, ?, ?, ?)");
        const std::string id(run_id);
        for (const auto& item : items) {
            stmt.reset();
            stmt.bind(1, id);
            stmt.bind(2, static_cast<std::int64_t>(item.item));
            stmt.bind(3, item.event_id);
            stmt.bind(4, static_cast<std::int64_t>(item.seq));
            stmt.bind(5, std::string(to_string(item.state)));
            stmt.bind(6, static_cast<std::int64_t>(item.attempts));
            stmt.exec();
        }
        write.commit();
        return {};
    });
}

namespace {

RunItem read_run_item(SQLite::Statement& stmt, int first) {
    RunItem item;
    item.item = stmt.getColumn(first).getInt64();
    item.event_id = column_text(stmt.getColumn(first + 1));
    item.seq = stmt.getColumn(first + 2).getInt64();
    item.state =
        parse_item_state(column_text(stmt.getColumn(first + 3))).value_or(ItemState::pending);
    item.attempts = stmt.getColumn(first + 4).getInt64();
    return item;
}

} // namespace

Result<std::uint64_t> SqliteStore::for_each_pending_event(
    std::string_view run_id, std::int64_t after_item, std::uint64_t limit,
    const std::function<bool(const RunItem&, const Event&)>& visit) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read the run's events", [&]() -> Result<std::uint64_t> {
        // The events columns first (read_event's order), then the item's.
        const std::string columns = event_columns("e", "b");
        SQLite::Statement stmt(
            impl.db, "SELECT " + columns +
                         ", i.item, i.event_id, i.seq, i.state, i.attempts FROM run_items i "
                         "LEFT JOIN events e ON e.seq = i.seq AND e.event_id = i.event_id "
                         "LEFT JOIN event_bodies b ON b.seq = e.seq "
                         "WHERE i.run_id = ?1 AND i.item > ?2 AND i.state = 'pending' "
                         "ORDER BY i.item LIMIT ?3");
        stmt.bind(1, std::string(run_id));
        stmt.bind(2, static_cast<std::int64_t>(after_item));
        stmt.bind(3, static_cast<std::int64_t>(
                         std::min<std::uint64_t>(limit, std::numeric_limits<std::int64_t>::max())));
        std::uint64_t visited = 0;
        while (stmt.executeStep()) {
            ++visited;
            auto item = read_run_item(stmt, k_event_column_count);
            Event event;
            if (!stmt.getColumn(1).isNull()) {
                event = read_event(stmt);
                if (auto opened = open_values(impl.db, impl.codec, impl.path, event); !opened) {
                    return std::unexpected(opened.error());
                }
            }
            if (!visit(item, event)) {
                break;
            }
        }
        return visited;
    });
}

// --- copying between archives ------------------------------------------------------------------

Result<std::uint64_t>
SqliteStore::for_each_run_item(std::string_view run_id, std::int64_t after_item,
                               std::uint64_t limit,
                               const std::function<bool(const RunItemCopy&)>& visit) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read the run's items", [&]() -> Result<std::uint64_t> {
        SQLite::Statement stmt(impl.db,
                               "SELECT i.item, i.event_id, i.seq, i.state, i.attempts, EXISTS "
                               "(SELECT 1 FROM events e WHERE e.seq = i.seq AND e.event_id = "
                               "i.event_id) FROM run_items i WHERE i.run_id = ?1 AND i.item > ?2 "
                               "ORDER BY i.item LIMIT ?3");
        stmt.bind(1, std::string(run_id));
        stmt.bind(2, static_cast<std::int64_t>(after_item));
        stmt.bind(3, static_cast<std::int64_t>(std::min<std::uint64_t>(limit, INT64_MAX)));
        std::uint64_t visited = 0;
        while (stmt.executeStep()) {
            RunItemCopy copy{read_run_item(stmt, 0), stmt.getColumn(5).getInt() != 0};
            ++visited;
            if (!visit(copy)) {
                break;
            }
        }
        return visited;
    });
}

Result<bool> SqliteStore::copy_run(const Run& run) {
    auto& impl = *m_impl;
    return guarded(impl.path, "copy run", [&]() -> Result<bool> {
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement stmt(impl.db,
                               "INSERT INTO runs (run_id, kind, source, target, options, state, "
                               "total, done, delivered, failed, cursor, created_at_ms, "
                               "updated_at_ms, last_error, started_by, paused_until_ms) VALUES "
                               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                               "?15, ?16) ON CONFLICT (run_id) DO NOTHING");
        stmt.bind(1, run.run_id);
        stmt.bind(2, run.kind);
        stmt.bind(3, run.source);
        stmt.bind(4, run.target);
        stmt.bind(5, run.options_json);
        stmt.bind(6, std::string(to_string(run.state)));
        stmt.bind(7, static_cast<std::int64_t>(run.progress.total));
        stmt.bind(8, static_cast<std::int64_t>(run.progress.done));
        stmt.bind(9, static_cast<std::int64_t>(run.progress.delivered));
        stmt.bind(10, static_cast<std::int64_t>(run.progress.dead));
        stmt.bind(11, static_cast<std::int64_t>(run.progress.cursor));
        stmt.bind(12, static_cast<std::int64_t>(run.created_at_ms));
        stmt.bind(13, static_cast<std::int64_t>(run.updated_at_ms));
        stmt.bind(14, run.last_error);
        stmt.bind(15, run.started_by);
        stmt.bind(16, static_cast<std::int64_t>(run.progress.paused_until_ms));
        const bool stored = stmt.exec() == 1;
        write.commit();
        return stored;
    });
}

Result<std::uint64_t> SqliteStore::copy_run_items(std::string_view run_id,
                                                  std::span<const RunItemCopy> items) {
    auto& impl = *m_impl;
    return guarded(impl.path, "copy the run's items", [&]() -> Result<std::uint64_t> {
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement stmt(impl.db,
                               "INSERT INTO run_items (run_id, item, event_id, seq, state, "
                               "attempts) VALUES (?1, ?2, ?3, CASE WHEN ?7 THEN coalesce((SELECT "
                               "seq FROM events WHERE event_id = ?3), ?4) ELSE ?4 END, ?5, ?6) "
                               "ON CONFLICT (run_id, item) DO NOTHING");
        const std::string id(run_id);
        std::uint64_t stored = 0;
        for (const auto& [item, of_event] : items) {
            stmt.reset();
            stmt.bind(1, id);
            stmt.bind(2, static_cast<std::int64_t>(item.item));
            stmt.bind(3, item.event_id);
            stmt.bind(4, static_cast<std::int64_t>(item.seq));
            stmt.bind(5, std::string(to_string(item.state)));
            stmt.bind(6, static_cast<std::int64_t>(item.attempts));
            stmt.bind(7, of_event ? 1 : 0);
            stored += static_cast<std::uint64_t>(stmt.exec());
        }
        write.commit();
        return stored;
    });
}

Result<std::uint64_t> SqliteStore::copy_attempts(std::span<const Attempt> attempts) {
    auto& impl = *m_impl;
    return guarded(impl.path, "copy attempts", [&]() -> Result<std::uint64_t> {
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement stmt(impl.db,
                               "INSERT INTO attempts (run_id, event_id, target, attempt, at_ms, "
                               "http_status, latency_ms, outcome, reason, detail) SELECT ?1, ?2, "
                               "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE NOT EXISTS (SELECT 1 FROM "
                               "attempts WHERE run_id = ?1 AND event_id = ?2 AND target = ?3 AND "
                               "attempt = ?4 AND at_ms = ?5)");
        std::uint64_t stored = 0;
        for (const auto& a : attempts) {
            stmt.reset();
            stmt.bind(1, a.run_id);
            stmt.bind(2, a.event_id);
            stmt.bind(3, a.target);
            stmt.bind(4, static_cast<std::int64_t>(a.attempt));
            stmt.bind(5, static_cast<std::int64_t>(a.at_ms));
            stmt.bind(6, a.http_status);
            stmt.bind(7, a.latency_ms);
            stmt.bind(8, std::string(to_string(a.outcome)));
            stmt.bind(9, a.reason);
            stmt.bind(10, a.detail);
            stored += static_cast<std::uint64_t>(stmt.exec());
        }
        write.commit();
        return stored;
    });
}

Result<std::optional<RunItem>>
SqliteStore::find_run_item(std::string_view run_id, std::int64_t item, std::string_view event_id) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read a run item", [&]() -> Result<std::optional<RunItem>> {
        auto& at = impl.prepared(impl.find_item_at,
                                 "SELECT item, event_id, seq, state, attempts FROM run_items "
                                 "WHERE run_id = ?1 AND item = ?2 AND event_id = ?3");
        at.bind(1, std::string(run_id));
        at.bind(2, static_cast<std::int64_t>(item));
        at.bind(3, std::string(event_id));
        if (at.executeStep()) {
            return read_run_item(at, 0);
        }
        auto& by_id = impl.prepared(impl.find_item_by_id,
                                    "SELECT item, event_id, seq, state, attempts FROM run_items "
                                    "WHERE run_id = ?1 AND event_id = ?2 ORDER BY "
                                    "state != 'pending', item LIMIT 1");
        by_id.bind(1, std::string(run_id));
        by_id.bind(2, std::string(event_id));
        if (by_id.executeStep()) {
            return read_run_item(by_id, 0);
        }
        return std::nullopt;
    });
}

Result<ItemCounts> SqliteStore::count_run_items(std::string_view run_id) {
    auto& impl = *m_impl;
    return guarded(impl.path, "count the run's items", [&]() -> Result<ItemCounts> {
        SQLite::Statement stmt(impl.db,
                               "SELECT state, count(*) FROM run_items WHERE run_id = ? GROUP BY 1");
        stmt.bind(1, std::string(run_id));
        ItemCounts counts;
        while (stmt.executeStep()) {
            auto state = parse_item_state(column_text(stmt.getColumn(0)));
            auto n = stmt.getColumn(1).getInt64();
            (state == ItemState::delivered ? counts.delivered
             : state == ItemState::dead    ? counts.dead
                                           : counts.pending) += n;
        }
        return counts;
    });
}

Result<void> SqliteStore::settle_items(std::span<const ItemVerdict> verdicts) {
    auto& impl = *m_impl;
    return guarded(impl.path, "settle run items", [&]() -> Result<void> {
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement item(impl.db,
                               "UPDATE run_items SET state = ? WHERE run_id = ? AND item = ?");
        SQLite::Statement event(impl.db, "UPDATE events SET status = ?, last_error = ?, "
                                         "updated_at_ms = ? WHERE event_id = ?");
        const std::int64_t now = util::unix_now_ms();
        for (const auto& v : verdicts) {
            item.reset();
            item.bind(1, std::string(to_string(v.state)));
            item.bind(2, v.run_id);
            item.bind(3, static_cast<std::int64_t>(v.item));
            item.exec();
            if (v.event_status) {
                event.reset();
                event.bind(1, std::string(to_string(*v.event_status)));
                event.bind(2, *v.event_status == EventStatus::delivered ? std::string() : v.reason);
                event.bind(3, now);
                event.bind(4, v.event_id);
                event.exec();
            }
        }
        write.commit();
        return {};
    });
}

Result<std::vector<Store::AttemptCount>> SqliteStore::count_attempts(std::string_view run_id) {
    auto& impl = *m_impl;
    return guarded(
        impl.path, "count the run's attempts", [&]() -> Result<std::vector<AttemptCount>> {
            SQLite::Statement stmt(impl.db, "SELECT outcome, reason, count(*) FROM attempts WHERE "
                                            "run_id = ? GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2");
            stmt.bind(1, std::string(run_id));
            std::vector<AttemptCount> out;
            while (stmt.executeStep()) {
                out.push_back({column_text(stmt.getColumn(0)), column_text(stmt.getColumn(1)),
                               stmt.getColumn(2).getInt64()});
            }
            return out;
        });
}

Result<void> SqliteStore::log_requests(std::span<const RequestLog> entries) {
    auto& impl = *m_impl;
    return guarded(impl.path, "log requests", [&]() -> Result<void> {
        WriteScope write(impl.db, impl.in_transaction);
        for (const auto& r : entries) {
            auto& stmt = impl.prepared(impl.insert_request,
                                       "INSERT INTO requests (at_ms, event_id, http_status, "
                                       "reason, injected, latency_ms, trace_id) VALUES "
                                       "(?, ?, ?, ?, ?, ?, ?)");
            stmt.bind(1, static_cast<std::int64_t>(r.at_ms));
            stmt.bindNoCopy(2, r.event_id);
            stmt.bind(3, r.http_status);
            stmt.bindNoCopy(4, r.reason);
            stmt.bind(5, r.injected ? 1 : 0);
            stmt.bind(6, r.latency_ms);
            stmt.bindNoCopy(7, r.trace_id);
            stmt.exec();
        }
        write.commit();
        return {};
    });
}

Result<std::vector<Store::RequestCount>> SqliteStore::request_counts() {
    auto& impl = *m_impl;
    return guarded(impl.path, "count requests", [&]() -> Result<std::vector<RequestCount>> {
        SQLite::Statement stmt(impl.db, "SELECT http_status, reason, injected, count(*) FROM "
                                        "requests GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2");
        std::vector<RequestCount> out;
        while (stmt.executeStep()) {
            out.push_back({stmt.getColumn(0).getInt(), column_text(stmt.getColumn(1)),
                           stmt.getColumn(2).getInt() != 0, stmt.getColumn(3).getInt64()});
        }
        return out;
    });
}

Result<Stats> SqliteStore::stats(const EventFilter& filter, std::string_view run_id) {
    auto& impl = *m_impl;
    return guarded(impl.path, "compute statistics", [&]() -> Result<Stats> {
        Stats stats;
        auto where = where_clause(filter, true);
        auto grouped = [&](const std::string& key, const std::string& order) {
            std::vector<std::pair<std::string, std::int64_t>> rows;
            SQLite::Statement stmt(impl.db, "SELECT " + key + ", count(*) FROM events" + where.sql +
                                                " GROUP BY 1 ORDER BY " + order);
            for (std::size_t i = 0; i < where.binders.size(); ++i) {
                where.binders[i](stmt, static_cast<int>(i + 1));
            }
            while (stmt.executeStep()) {
                rows.emplace_back(column_text(stmt.getColumn(0)), stmt.getColumn(1).getInt64());
            }
            return rows;
        };
        auto statuses = grouped("status", "1");
        for (auto s : {EventStatus::received, EventStatus::delivered, EventStatus::failed,
                       EventStatus::dead}) {
            std::int64_t n = 0;
            for (const auto& [name, count] : statuses) {
                if (name == to_string(s)) {
                    n = count;
                }
            }
            stats.by_status.emplace_back(std::string(to_string(s)), n);
            stats.total += n;
        }
        stats.by_org = grouped("org_id", "2 DESC, 1");
        stats.by_day = grouped("strftime('%Y-%m-%d', received_at_ms / 1000, 'unixepoch')", "1");

        std::string attempt_where = run_id.empty() ? "" : " WHERE run_id = ?1";
        {
            SQLite::Statement stmt(impl.db, "SELECT outcome, count(*) FROM attempts" +
                                                attempt_where + " GROUP BY 1 ORDER BY 2 DESC, 1");
            if (!run_id.empty()) {
                stmt.bind(1, std::string(run_id));
            }
            while (stmt.executeStep()) {
                auto n = stmt.getColumn(1).getInt64();
                stats.attempts_by_outcome.emplace_back(column_text(stmt.getColumn(0)), n);
                stats.attempts += n;
            }
        }
        // Latency of the attempts that got an HTTP response (nearest-rank percentiles).
        std::string latency_where =
            run_id.empty() ? " WHERE http_status > 0" : " WHERE http_status > 0 AND run_id = ?1";
        {
            SQLite::Statement stmt(impl.db, "SELECT count(*), max(latency_ms) FROM attempts" +
                                                latency_where);
            if (!run_id.empty()) {
                stmt.bind(1, std::string(run_id));
            }
            stmt.executeStep();
            stats.latency.count = stmt.getColumn(0).getInt64();
            stats.latency.max = stmt.getColumn(1).isNull() ? 0 : stmt.getColumn(1).getDouble();
        }
        if (stats.latency.count > 0) {
            SQLite::Statement stmt(impl.db, "SELECT latency_ms FROM attempts" + latency_where +
                                                " ORDER BY latency_ms LIMIT 1 OFFSET ?9");
            auto percentile = [&](double p) {
                auto rank = static_cast<std::int64_t>(
                    std::ceil(p * static_cast<double>(stats.latency.count)));
                rank = std::clamp<std::int64_t>(rank, 1, stats.latency.count);
                stmt.reset();
                if (!run_id.empty()) {
                    stmt.bind(1, std::string(run_id));
                }
                stmt.bind(9, static_cast<std::int64_t>(rank - 1));
                return stmt.executeStep() ? stmt.getColumn(0).getDouble() : 0.0;
            };
            stats.latency.p50 = percentile(0.50);
            stats.latency.p95 = percentile(0.95);
            stats.latency.p99 = percentile(0.99);
        }
        return stats;
    });
}

Result<void> SqliteStore::checkpoint(std::optional<std::chrono::milliseconds> max_wait) {
    auto& impl = *m_impl;
    return guarded(impl.path, "checkpoint", [&]() -> Result<void> {
        if (!max_wait) {
            impl.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
            return {};
        }
        impl.db.setBusyTimeout(static_cast<int>(max_wait->count()));
        try {
            impl.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        } catch (...) {
            impl.db.setBusyTimeout(impl.busy_timeout_ms);
            throw;
        }
        impl.db.setBusyTimeout(impl.busy_timeout_ms);
        return {};
    });
}

// --- following (events tail) ------------------------------------------------------------------

Result<std::int64_t> SqliteStore::data_version() {
    auto& impl = *m_impl;
    return guarded(impl.path, "read the data version", [&]() -> Result<std::int64_t> {
        return impl.db.execAndGet("PRAGMA data_version").getInt64();
    });
}

Result<Store::HighWater> SqliteStore::high_water() {
    auto& impl = *m_impl;
    return guarded(impl.path, "read the last rows", [&]() -> Result<HighWater> {
        HighWater out;
        out.seq = impl.db.execAndGet("SELECT coalesce(max(seq), 0) FROM events").getInt64();
        out.attempt_id = impl.db.execAndGet("SELECT coalesce(max(id), 0) FROM attempts").getInt64();
        return out;
    });
}

Result<std::uint64_t> SqliteStore::for_each_attempt(
    std::int64_t after_id, std::uint64_t limit,
    const std::function<bool(const Attempt&, std::string_view org_id)>& visit) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read attempts", [&]() -> Result<std::uint64_t> {
        SQLite::Statement stmt(impl.db,
                               "SELECT a.id, a.run_id, a.event_id, a.target, a.attempt, a.at_ms, "
                               "a.http_status, a.latency_ms, a.outcome, a.reason, a.detail, "
                               "coalesce(e.org_id, '') FROM attempts a LEFT JOIN events e "
                               "ON e.event_id = a.event_id WHERE a.id > ?1 ORDER BY a.id LIMIT ?2");
        stmt.bind(1, static_cast<std::int64_t>(after_id));
        stmt.bind(2, static_cast<std::int64_t>(std::min<std::uint64_t>(limit, INT64_MAX)));
        std::uint64_t visited = 0;
        while (stmt.executeStep()) {
            Attempt a;
            a.id = stmt.getColumn(0).getInt64();
            a.run_id = column_text(stmt.getColumn(1));
            a.event_id = column_text(stmt.getColumn(2));
            a.target = column_text(stmt.getColumn(3));
            a.attempt = stmt.getColumn(4).getInt64();
            a.at_ms = stmt.getColumn(5).getInt64();
            a.http_status = stmt.getColumn(6).getInt();
            a.latency_ms = stmt.getColumn(7).getDouble();
            auto outcome = read_outcome(impl.path, stmt.getColumn(8));
            HOOKCTL_RETURN_IF_ERROR(outcome);
            a.outcome = *outcome;
            a.reason = column_text(stmt.getColumn(9));
            a.detail = column_text(stmt.getColumn(10));
            ++visited;
            if (!visit(a, column_text(stmt.getColumn(11)))) {
                break;
            }
        }
        return visited;
    });
}

// --- re-parses ------------------------------------------------------------------------------

Result<std::vector<std::int64_t>> SqliteStore::add_reparses(std::span<const NewReparse> reparses) {
    auto& impl = *m_impl;
    return guarded(impl.path, "store re-parses", [&]() -> Result<std::vector<std::int64_t>> {
        WriteScope write(impl.db, impl.in_transaction);
        if (auto ready = prepare_writes(impl.db, impl.codec, impl.path); !ready) {
            return std::unexpected(ready.error());
        }
        SQLite::Statement find(impl.db,
                               "SELECT e.seq, coalesce((SELECT max(version) FROM event_reparses r "
                               "WHERE r.seq = e.seq), 0) FROM events e WHERE e.event_id = ?1");
        SQLite::Statement insert(impl.db,
                                 "INSERT INTO event_reparses (seq, version, parser, created_at_ms, "
                                 "divergent, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
        const std::int64_t now = util::unix_now_ms();
        std::vector<std::int64_t> versions;
        for (const auto& r : reparses) {
            find.reset();
            find.bind(1, r.event_id);
            if (!find.executeStep()) {
                return fail(ExitCode::usage, "archive " + impl.path + ": no event with id '" +
                                                 r.event_id + "' to store a re-parse of");
            }
            const std::int64_t seq = find.getColumn(0).getInt64();
            const std::int64_t version = find.getColumn(1).getInt64() + 1;
            auto body = impl.codec.encode(r.body, reparse_field(version), r.event_id);
            HOOKCTL_RETURN_IF_ERROR(body);
            insert.reset();
            insert.bind(1, seq);
            insert.bind(2, version);
            insert.bind(3, r.parser);
            insert.bind(4, now);
            insert.bind(5, json(r.divergent).dump());
            bind_blob(insert, 6, *body);
            insert.exec();
            versions.push_back(version);
        }
        write.commit();
        return versions;
    });
}

Result<std::vector<Reparse>> SqliteStore::reparses_of(std::string_view event_id, bool with_body) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read re-parses", [&]() -> Result<std::vector<Reparse>> {
        SQLite::Statement stmt(impl.db,
                               std::string("SELECT r.id, r.version, r.parser, r.created_at_ms, "
                                           "r.divergent, ") +
                                   (with_body ? "r.body" : "NULL") +
                                   " FROM event_reparses r JOIN events e ON e.seq = r.seq "
                                   "WHERE e.event_id = ?1 ORDER BY r.version");
        stmt.bind(1, std::string(event_id));
        std::vector<Reparse> out;
        while (stmt.executeStep()) {
            Reparse r;
            r.version = stmt.getColumn(1).getInt64();
            r.parser = column_text(stmt.getColumn(2));
            r.created_at_ms = stmt.getColumn(3).getInt64();
            auto divergent = json::parse(column_text(stmt.getColumn(4)), nullptr, false);
            if (divergent.is_array()) {
                for (const auto& field : divergent) {
                    if (field.is_string()) {
                        r.divergent.push_back(field.get<std::string>());
                    }
                }
            }
            if (with_body) {
                auto body =
                    open_value(impl.db, impl.codec, impl.path, column_bytes(stmt.getColumn(5)),
                               reparse_field(r.version), event_id, StoredTable::reparses,
                               stmt.getColumn(0).getInt64());
                HOOKCTL_RETURN_IF_ERROR(body);
                r.body = std::move(*body);
            }
            out.push_back(std::move(r));
        }
        return out;
    });
}

// --- encryption at rest ----------------------------------------------------------------------

const EncryptionState& SqliteStore::encryption() const {
    return m_impl->codec.state();
}

const BodyCodec& SqliteStore::codec() const {
    return m_impl->codec;
}

Result<std::string> SqliteStore::prepare_body_writes() {
    auto& impl = *m_impl;
    return guarded(impl.path, "check the archive key", [&]() -> Result<std::string> {
        WriteScope write(impl.db, impl.in_transaction);
        if (auto ready = prepare_writes(impl.db, impl.codec, impl.path); !ready) {
            return std::unexpected(ready.error());
        }
        write.commit();
        return impl.codec.state().encrypted ? impl.codec.cipher()->write_key_id() : std::string();
    });
}

Result<EncryptionState> SqliteStore::reload_encryption() {
    auto& impl = *m_impl;
    return guarded(impl.path, "read archive_meta", [&]() -> Result<EncryptionState> {
        if (auto read = refresh_encryption(impl.db, impl.codec, impl.path); !read) {
            return std::unexpected(read.error());
        }
        return impl.codec.state();
    });
}

Result<void> SqliteStore::record_encryption(const EncryptionState& state) {
    auto& impl = *m_impl;
    return guarded(impl.path, "write archive_meta", [&]() -> Result<void> {
        WriteScope write(impl.db, impl.in_transaction);
        if (auto written = write_encryption(impl.db, state); !written) {
            return written;
        }
        write.commit();
        impl.codec.set_state(state);
        return {};
    });
}

Result<std::vector<StoredValue>>
SqliteStore::stored_values(StoredTable table, std::int64_t after_row, std::size_t limit) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read stored values", [&]() -> Result<std::vector<StoredValue>> {
        const char* sql =
            table == StoredTable::bodies
                ? "SELECT b.seq, e.event_id, b.body, b.raw_mime, 0 FROM event_bodies b "
                  "JOIN events e ON e.seq = b.seq WHERE b.seq > ?1 ORDER BY b.seq LIMIT ?2"
                : "SELECT r.id, e.event_id, r.body, NULL, r.version FROM event_reparses r "
                  "JOIN events e ON e.seq = r.seq WHERE r.id > ?1 ORDER BY r.id LIMIT ?2";
        SQLite::Statement stmt(impl.db, sql);
        stmt.bind(1, static_cast<std::int64_t>(after_row));
        stmt.bind(2,
                  static_cast<std::int64_t>(std::min<std::size_t>(
                      limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()))));
        std::vector<StoredValue> out;
        while (stmt.executeStep()) {
            StoredValue v;
            v.table = table;
            v.row = stmt.getColumn(0).getInt64();
            v.event_id = column_text(stmt.getColumn(1));
            v.field = table == StoredTable::bodies ? std::string(k_field_body)
                                                   : reparse_field(stmt.getColumn(4).getInt64());
            v.bytes = column_bytes(stmt.getColumn(2));
            const bool has_mime = table == StoredTable::bodies && !stmt.getColumn(3).isNull();
            std::string mime = has_mime ? column_bytes(stmt.getColumn(3)) : std::string();
            out.push_back(std::move(v));
            if (has_mime) {
                StoredValue m = out.back();
                m.field = std::string(k_field_raw_mime);
                m.bytes = std::move(mime);
                out.push_back(std::move(m));
            }
        }
        return out;
    });
}

Result<void> SqliteStore::replace_stored_values(std::span<const StoredValue> values) {
    auto& impl = *m_impl;
    return guarded(impl.path, "rewrite stored values", [&]() -> Result<void> {
        WriteScope write(impl.db, impl.in_transaction);
        SQLite::Statement body(impl.db, "UPDATE event_bodies SET body = ?1 WHERE seq = ?2");
        SQLite::Statement mime(impl.db, "UPDATE event_bodies SET raw_mime = ?1 WHERE seq = ?2");
        SQLite::Statement reparse(impl.db, "UPDATE event_reparses SET body = ?1 WHERE id = ?2");
        for (const auto& v : values) {
            auto& stmt = v.table == StoredTable::reparses ? reparse
                         : v.field == k_field_raw_mime    ? mime
                                                          : body;
            stmt.reset();
            bind_blob(stmt, 1, v.bytes);
            stmt.bind(2, static_cast<std::int64_t>(v.row));
            stmt.exec();
        }
        write.commit();
        return {};
    });
}

Result<std::int64_t> SqliteStore::last_stored_row(StoredTable table) {
    auto& impl = *m_impl;
    return guarded(impl.path, "read the last stored row", [&]() -> Result<std::int64_t> {
        return impl.db
            .execAndGet(table == StoredTable::bodies
                            ? "SELECT coalesce(max(seq), 0) FROM event_bodies"
                            : "SELECT coalesce(max(id), 0) FROM event_reparses")
            .getInt64();
    });
}

} // namespace hookctl::archive::sqlite
