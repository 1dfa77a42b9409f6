#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <libpq-fe.h>
#include <limits>
#include <map>
#include <poll.h>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include <hookctl/archive/archive.hpp>
#include <hookctl/archive/postgres/location.hpp>
#include <hookctl/archive/postgres/pq_ptr.hpp>
#include <hookctl/archive/postgres/schema.hpp>
#include <hookctl/archive/postgres/store.hpp>
#include <hookctl/util/encoding.hpp>
#include <hookctl/util/time.hpp>

namespace hookctl::archive::postgres {
namespace {

using json = nlohmann::json;

// Type OIDs of the parameters sent (binary format).
constexpr Oid k_bool = 16, k_bytea = 17, k_int8 = 20, k_int4 = 23, k_text = 25, k_float8 = 701;
constexpr Oid k_bytea_array = 1001, k_text_array = 1009, k_int8_array = 1016;

// The advisory lock key of schema migrations and of encryption changes ("hkct").
constexpr std::int64_t k_lock_key = k_application_id;

// A failure inside a store call: turned into an Error by guarded().
struct PgFailure {
    Error error;
};

// The parameters of one statement, all in binary format.
class Params {
public:
    Params& text(std::string_view v) { return add(k_text, v); }
    Params& bytes(std::string_view v) { return add(k_bytea, v); }
    Params& i64(std::int64_t v) {
        auto be = std::byteswap(static_cast<std::uint64_t>(v));
        return own(k_int8, std::string(reinterpret_cast<const char*>(&be), 8));
    }
    Params& f64(double v) {
        auto be = std::byteswap(std::bit_cast<std::uint64_t>(v));
        return own(k_float8, std::string(reinterpret_cast<const char*>(&be), 8));
    }
    Params& i32(int v) {
        auto be = std::byteswap(static_cast<std::uint32_t>(v));
        return own(k_int4, std::string(reinterpret_cast<const char*>(&be), 4));
    }
    Params& boolean(bool v) { return own(k_bool, std::string(1, v ? '\1' : '\0')); }
    Params& null(Oid type) {
        m_types.push_back(type);
        m_values.push_back(nullptr);
        m_lengths.push_back(0);
        return *this;
    }
    // An array in binary format (ArrayParam::finish) of type `array_type`.
    Params& array(Oid array_type, std::string v) { return own(array_type, std::move(v)); }
    // A text copied (the caller's string may not outlive the call).
    Params& text_copy(std::string v) { return own(k_text, std::move(v)); }

    int size() const { return static_cast<int>(m_values.size()); }
    const Oid* types() const { return m_types.data(); }
    const char* const* values() const { return m_values.data(); }
    const int* lengths() const { return m_lengths.data(); }
    const int* formats() {
        m_formats.assign(m_values.size(), 1);
        return m_formats.data();
    }

private:
    Params& add(Oid type, std::string_view v) {
        if (v.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
            throw std::length_error("a value of " + std::to_string(v.size()) +
                                    " bytes is larger than the archive can hold (1 GiB)");
        }
        m_types.push_back(type);
        m_values.push_back(v.data() == nullptr ? "" : v.data());
        m_lengths.push_back(static_cast<int>(v.size()));
        return *this;
    }
    Params& own(Oid type, std::string v) {
        m_owned.push_back(std::move(v));
        return add(type, m_owned.back());
    }
    std::vector<Oid> m_types;
    std::vector<const char*> m_values;
    std::vector<int> m_lengths;
    std::vector<int> m_formats;
    std::deque<std::string> m_owned; // stable addresses
};

// A one-dimensional array parameter in PostgreSQL's binary format: a header (dimensions, whether
// it has nulls, the element type, the length and lower bound) then each element as its length
// (-1: null) and its bytes.
class ArrayParam {
public:
    explicit ArrayParam(Oid element)
        : m_element(element) {}
    void add(std::string_view bytes) {
        put32(static_cast<std::uint32_t>(bytes.size()));
        m_data.append(bytes);
        ++m_count;
    }
    void add(std::int64_t value) {
        put32(8);
        auto be = std::byteswap(static_cast<std::uint64_t>(value));
        m_data.append(reinterpret_cast<const char*>(&be), 8);
        ++m_count;
    }
    void add_null() {
        put32(0xffffffffu);
        m_nulls = true;
        ++m_count;
    }
    std::string finish() const {
        std::string out;
        auto put = [&](std::uint32_t v) {
            auto be = std::byteswap(v);
            out.append(reinterpret_cast<const char*>(&be), 4);
        };
        put(1);
        put(m_nulls ? 1 : 0);
        put(m_element);
        put(m_count);
        put(1);
        out += m_data;
        return out;
    }

private:
    void put32(std::uint32_t v) {
        auto be = std::byteswap(v);
        m_data.append(reinterpret_cast<const char*>(&be), 4);
    }
    Oid m_element;
    std::uint32_t m_count = 0;
    bool m_nulls = false;
    std::string m_data;
};

// Reading a binary-format result.
std::string col_text(const PGresult* r, int row, int col) {
    if (PQgetisnull(r, row, col)) {
        return {};
    }
    return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}

std::int64_t col_int(const PGresult* r, int row, int col) {
    if (PQgetisnull(r, row, col)) {
        return 0;
    }
    const char* p = PQgetvalue(r, row, col);
    switch (PQgetlength(r, row, col)) {
    case 8: {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        return static_cast<std::int64_t>(std::byteswap(v));
    }
    case 4: {
        std::uint32_t v;
        std::memcpy(&v, p, 4);
        return static_cast<std::int32_t>(std::byteswap(v));
    }
    case 2: {
        std::uint16_t v;
        std::memcpy(&v, p, 2);
        return static_cast<std::int16_t>(std::byteswap(v));
    }
    case 1:
        return static_cast<unsigned char>(p[0]);
    default:
        return 0;
    }
}

double col_double(const PGresult* r, int row, int col) {
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) {
        return 0;
    }
    std::uint64_t v;
    std::memcpy(&v, PQgetvalue(r, row, col), 8);
    return std::bit_cast<double>(std::byteswap(v));
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

template <class T, class F> std::string json_list(const std::vector<T>& items, F&& to_text) {
    json array = json::array();
    for (const auto& item : items) {
        array.push_back(std::string(to_text(item)));
    }
    return array.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The columns read_event reads, in its order.
std::string event_columns(const std::string& e, const std::string& b) {
    std::string out;
    for (const char* c : {"seq", "event_id", "received_at_ms", "org_id", "scheme", "headers"}) {
        out += (out.empty() ? "" : ", ") + e + "." + c;
    }
    out += b.empty() ? ", NULL::bytea, NULL::bytea" : ", " + b + ".body, " + b + ".raw_mime";
    for (const char* c : {"status", "attempts", "last_error", "updated_at_ms", "trace_id", "source",
                          "verified_by", "client_identity"}) {
        out += ", " + e + "." + c;
    }
    return out;
}
constexpr int k_event_column_count = 16;

Event read_event(const PGresult* r, int row) {
    Event e;
    e.seq = col_int(r, row, 0);
    e.event_id = col_text(r, row, 1);
    e.received_at_ms = col_int(r, row, 2);
    e.org_id = col_text(r, row, 3);
    e.scheme = col_text(r, row, 4);
    e.headers = headers_from_json(col_text(r, row, 5));
    e.body = col_text(r, row, 6);
    if (!PQgetisnull(r, row, 7)) {
        e.raw_mime = col_text(r, row, 7);
    }
    auto status = parse_event_status(col_text(r, row, 8));
    e.status = status ? *status : EventStatus::received;
    e.attempts = col_int(r, row, 9);
    e.last_error = col_text(r, row, 10);
    e.updated_at_ms = col_int(r, row, 11);
    e.trace_id = col_text(r, row, 12);
    e.source = col_text(r, row, 13);
    e.verified_by = col_text(r, row, 14);
    e.client_identity = col_text(r, row, 15);
    return e;
}

constexpr const char* k_run_columns =
    "run_id, kind, source, target, options, state, total, done, delivered, failed, cursor, "
    "created_at_ms, updated_at_ms, last_error, started_by, paused_until_ms";

Run read_run(const PGresult* r, int row) {
    Run run;
    run.run_id = col_text(r, row, 0);
    run.kind = col_text(r, row, 1);
    run.source = col_text(r, row, 2);
    run.target = col_text(r, row, 3);
    run.options_json = col_text(r, row, 4);
    auto state = parse_run_state(col_text(r, row, 5));
    run.state = state ? *state : RunState::failed;
    run.progress.total = col_int(r, row, 6);
    run.progress.done = col_int(r, row, 7);
    run.progress.delivered = col_int(r, row, 8);
    run.progress.dead = col_int(r, row, 9);
    run.progress.cursor = col_int(r, row, 10);
    run.created_at_ms = col_int(r, row, 11);
    run.updated_at_ms = col_int(r, row, 12);
    run.last_error = col_text(r, row, 13);
    run.started_by = col_text(r, row, 14);
    run.progress.paused_until_ms = col_int(r, row, 15);
    return run;
}

RunItem read_run_item(const PGresult* r, int row, int first) {
    RunItem item;
    item.item = col_int(r, row, first);
    item.event_id = col_text(r, row, first + 1);
    item.seq = col_int(r, row, first + 2);
    item.state = parse_item_state(col_text(r, row, first + 3)).value_or(ItemState::pending);
    item.attempts = col_int(r, row, first + 4);
    return item;
}

// The WHERE clause of `filter`, its parameters numbered from `first`.
std::string where_clause(const EventFilter& filter, bool honour_after_seq, Params& params,
                         int first) {
    std::string sql = " WHERE true";
    int n = first;
    auto next = [&] { return "$" + std::to_string(n++); };
    if (!filter.statuses.empty()) {
        sql += " AND status IN (SELECT jsonb_array_elements_text(" + next() + "::jsonb))";
        params.text_copy(json_list(filter.statuses, [](EventStatus s) { return to_string(s); }));
    }
    if (filter.since_ms) {
        sql += " AND received_at_ms >= " + next();
        params.i64(*filter.since_ms);
    }
    if (filter.until_ms) {
        sql += " AND received_at_ms < " + next();
        params.i64(*filter.until_ms);
    }
    if (!filter.org_ids.empty()) {
        sql += " AND org_id IN (SELECT jsonb_array_elements_text(" + next() + "::jsonb))";
        params.text_copy(json_list(filter.org_ids, [](const std::string& s) { return s; }));
    }
    if (!filter.event_ids.empty()) {
        sql += " AND event_id IN (SELECT jsonb_array_elements_text(" + next() + "::jsonb))";
        params.text_copy(json_list(filter.event_ids, [](const std::string& s) { return s; }));
    }
    if (honour_after_seq && filter.after_seq) {
        sql += " AND seq > " + next();
        params.i64(*filter.after_seq);
    }
    return sql;
}

std::int64_t clamp_limit(std::uint64_t limit) {
    return static_cast<std::int64_t>(
        std::min<std::uint64_t>(limit, std::numeric_limits<std::int64_t>::max()));
}

// Rows read per round trip by the streaming reads: memory stays flat for any number of rows.
constexpr std::int64_t k_page = 500;

} // namespace

// ---------------------------------------------------------------------------------------------

class PgStore final : public Store {
public:
    PgStore(std::string uri, OpenOptions options);
    ~PgStore() override;

    // Connects and prepares the schema (open()).
    Result<void> start();

    const std::string& path() const override { return m_display; }
    Result<std::unique_ptr<Store>> another(const OpenOptions& options) const override;
    int schema_version() const override { return m_version; }
    Result<void> begin() override;
    Result<void> commit() override;
    void rollback() override;
    bool in_transaction() const override { return m_in_transaction; }
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
    Result<void> checkpoint(std::optional<std::chrono::milliseconds>) override { return {}; }
    Result<std::int64_t> data_version() override;
    Result<HighWater> high_water() override;
    Result<std::uint64_t> for_each_attempt(
        std::int64_t after_id, std::uint64_t limit,
        const std::function<bool(const Attempt&, std::string_view org_id)>& visit) override;
    Result<std::vector<std::int64_t>> add_reparses(std::span<const NewReparse> reparses) override;
    Result<std::vector<Reparse>> reparses_of(std::string_view event_id, bool with_body) override;
    const EncryptionState& encryption() const override { return m_codec.state(); }
    Result<std::string> prepare_body_writes() override;
    Result<EncryptionState> reload_encryption() override;
    Result<void> record_encryption(const EncryptionState& state) override;
    Result<std::vector<StoredValue>> stored_values(StoredTable table, std::int64_t after_row,
                                                   std::size_t limit) override;
    Result<void> replace_stored_values(std::span<const StoredValue> values) override;
    Result<std::int64_t> last_stored_row(StoredTable table) override;
    const BodyCodec& codec() const override { return m_codec; }
    Result<void> ping() override;

    bool shares_runs() const override { return true; }
    Result<std::uint64_t>
    claim_items(std::string_view run_id, const WorkerLease& lease, std::int64_t after_item,
                std::uint64_t limit,
                const std::function<void(const RunItem&, const Event&)>& visit) override;
    Result<std::int64_t> renew_leases(std::string_view run_id, const WorkerLease& lease,
                                      std::string_view worker_state) override;
    Result<void> release_leases(std::string_view run_id, const WorkerLease& lease,
                                std::string_view worker_state) override;
    Result<SharedRunState> shared_state(std::string_view run_id, std::string_view token) override;
    Result<SlotBlock> reserve_slots(std::string_view run_id, int count,
                                    std::int64_t interval_ns) override;
    Result<void> pause_slots(std::string_view run_id, std::int64_t pause_ms) override;
    Result<RunState> update_shared_run(std::string_view run_id, const WorkerLease& lease,
                                       RunState state, std::string_view last_error,
                                       std::int64_t paused_until_ms) override;
    Result<std::vector<Worker>> list_workers(std::string_view run_id) override;
    Result<bool> wait_for_news(std::string_view run_id,
                               std::chrono::milliseconds max_wait) override;

private:
    // Adds items settled under leases to their workers' counts (token -> delivered, dead).
    void count_settled(std::string_view run_id,
                       const std::map<std::string, std::pair<std::int64_t, std::int64_t>>& settled);
    // Upserts the worker row of `lease` with `state` and a fresh heartbeat.
    void touch_worker(std::string_view run_id, const WorkerLease& lease, std::string_view state);
    void notify_run(std::string_view run_id);
    // Runs `body`, turning failures (thrown as PgFailure or exceptions) into Errors.
    template <class F> auto guarded(std::string_view what, F&& body) -> decltype(body());

    [[noreturn]] void throw_error(std::string_view what, const PGresult* r);
    [[noreturn]] void throw_lost(std::string_view what, const std::string& detail);
    // The connection, (re)connected when it was lost and the reconnect pacer allows.
    PGconn* conn();
    PgResult exec(std::string_view what, std::string_view sql, Params& params);
    PgResult exec(std::string_view what, std::string_view sql) {
        Params none;
        return exec(what, sql, none);
    }
    void exec_simple(std::string_view what, const char* sql);
    const std::string& prepared(std::string_view what, std::string_view sql, const Params& params);

    // One write: its own transaction, or a savepoint inside an explicit one.
    class WriteScope {
    public:
        explicit WriteScope(PgStore& store)
            : m_store(store)
            , m_own(!store.m_in_transaction) {
            m_store.exec_simple("begin a write", m_own ? "BEGIN" : "SAVEPOINT hookctl_write");
        }
        WriteScope(const WriteScope&) = delete;
        WriteScope& operator=(const WriteScope&) = delete;
        ~WriteScope() {
            if (m_done || !m_store.m_conn) {
                return;
            }
            PGconn* c = m_store.m_conn.get();
            PgResult(PQexec(c, m_own ? "ROLLBACK"
                                     : "ROLLBACK TO SAVEPOINT hookctl_write; RELEASE SAVEPOINT "
                                       "hookctl_write"));
        }
        void commit() {
            m_store.exec_simple("commit", m_own ? "COMMIT" : "RELEASE SAVEPOINT hookctl_write");
            m_done = true;
        }
        bool own() const { return m_own; }
        void done() { m_done = true; }

    private:
        PgStore& m_store;
        bool m_own;
        bool m_done = false;
    };

    void refresh_encryption();
    void write_encryption(const EncryptionState& state);
    void prepare_writes();
    std::string open_value(std::string stored, std::string_view field, std::string_view event_id,
                           StoredTable table, std::int64_t row);
    void open_values(Event& e);
    void migrate();

    std::string m_uri;     // as given (no password: refused before)
    std::string m_display; // as shown
    OpenOptions m_options;
    PgConn m_conn;
    ReconnectPacer m_pacer;
    std::unordered_map<std::string, std::string> m_statements; // sql -> prepared name
    int m_version = 0;
    bool m_in_transaction = false;
    BodyCodec m_codec;
    bool m_listening = false; // LISTEN hookctl_runs was sent on this connection
};

PgStore::PgStore(std::string uri, OpenOptions options)
    : m_uri(std::move(uri))
    , m_display(display_uri(m_uri))
    , m_options(std::move(options)) {}

PgStore::~PgStore() {
    if (m_in_transaction && m_conn) {
        PgResult(PQexec(m_conn.get(), "ROLLBACK"));
    }
}

template <class F> auto PgStore::guarded(std::string_view what, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const PgFailure& f) {
        return std::unexpected(f.error);
    } catch (const std::exception& e) {
        return fail(ExitCode::environment,
                    "archive " + m_display + ": " + std::string(what) + " failed: " + e.what());
    }
}

void PgStore::throw_error(std::string_view what, const PGresult* r) {
    if (m_conn && PQstatus(m_conn.get()) == CONNECTION_BAD) {
        throw_lost(what, first_line(PQerrorMessage(m_conn.get())));
    }
    std::string message =
        first_line(r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(m_conn.get()));
    const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string advice;
    std::string_view code = state == nullptr ? "" : state;
    if (code == "42501") {
        advice = " (the database user lacks a privilege on the archive's tables: grant it, or "
                 "connect as the archive's owner)";
    } else if (code == "53100") {
        advice = " (the database server's disk is full: free space there and retry)";
    } else if (code.starts_with("08") || code.starts_with("57P")) {
        advice = " (the server closed the connection or is shutting down; hookctl reconnects on "
                 "the next write)";
    }
    throw PgFailure{Error{ExitCode::environment, "archive " + m_display + ": " + std::string(what) +
                                                     " failed: " + message + advice}};
}

void PgStore::throw_lost(std::string_view what, const std::string& detail) {
    std::string where = m_conn ? server_of(m_conn.get()) : "PostgreSQL";
    m_conn.reset();
    m_statements.clear();
    m_listening = false;
    m_in_transaction = false;
    throw PgFailure{Error{ExitCode::environment, "archive " + m_display + ": " + std::string(what) +
                                                     " failed: lost " + where +
                                                     (detail.empty() ? "" : " (" + detail + ")") +
                                                     "; hookctl reconnects when it is back"}};
}

PGconn* PgStore::conn() {
    if (m_conn && PQstatus(m_conn.get()) == CONNECTION_OK) {
        return m_conn.get();
    }
    if (m_conn) {
        throw_lost("use the connection", first_line(PQerrorMessage(m_conn.get())));
    }
    auto now = ReconnectPacer::Clock::now();
    if (!m_pacer.may_try(now)) {
        throw PgFailure{Error{ExitCode::environment,
                              "archive " + m_display +
                                  ": PostgreSQL is unreachable (the last connection attempt "
                                  "failed moments ago; hookctl tries again shortly)"}};
    }
    PgConn c = connect_to(m_uri);
    if (!c || PQstatus(c.get()) != CONNECTION_OK) {
        m_pacer.failed(now);
        throw PgFailure{
            Error{ExitCode::environment, "archive " + m_display + ": " + connect_failure(c.get())}};
    }
    m_pacer.succeeded();
    m_conn = std::move(c);
    m_statements.clear();
    m_listening = false;
    // Every commit waits for its WAL flush (a 202 is answered only after it), whatever the
    // server's or the database's default; lock waits are bounded like SQLite's busy timeout.
    std::string setup = "SET synchronous_commit = on; SET client_min_messages = warning; "
                        "SET lock_timeout = " +
                        std::to_string(std::max<long long>(1, m_options.busy_timeout.count()));
    if (m_options.mode == Mode::read_only) {
        setup += "; SET default_transaction_read_only = on";
    }
    exec_simple("set up the session", setup.c_str());
    return m_conn.get();
}

void PgStore::exec_simple(std::string_view what, const char* sql) {
    PGconn* c = conn();
    PgResult r(PQexec(c, sql));
    auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw_error(what, r.get());
    }
}

const std::string& PgStore::prepared(std::string_view what, std::string_view sql,
                                     const Params& params) {
    std::string key(sql);
    if (auto it = m_statements.find(key); it != m_statements.end()) {
        return it->second;
    }
    std::string name = "hookctl_" + std::to_string(m_statements.size() + 1);
    PgResult r(PQprepare(conn(), name.c_str(), key.c_str(), params.size(), params.types()));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        throw_error(what, r.get());
    }
    return m_statements.emplace(std::move(key), std::move(name)).first->second;
}

PgResult PgStore::exec(std::string_view what, std::string_view sql, Params& params) {
    const std::string& name = prepared(what, sql, params);
    PgResult r(PQexecPrepared(conn(), name.c_str(), params.size(), params.values(),
                              params.lengths(), params.formats(), 1));
    auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw_error(what, r.get());
    }
    return r;
}

Result<void> PgStore::start() {
    return guarded("open", [&]() -> Result<void> {
        conn();
        migrate();
        m_codec = BodyCodec(m_options.cipher, m_display);
        refresh_encryption();
        if (auto key = m_codec.check_key(); !key) {
            return std::unexpected(key.error());
        }
        return {};
    });
}

void PgStore::migrate() {
    auto read_version = [&]() -> int {
        auto exists =
            exec("read the schema version", "SELECT to_regclass('schema_version') IS NOT NULL, "
                                            "to_regclass('events') IS NOT NULL");
        if (col_int(exists.get(), 0, 0) == 0) {
            if (col_int(exists.get(), 0, 1) != 0) {
                throw PgFailure{Error{
                    ExitCode::environment,
                    "archive " + m_display +
                        ": the database has an `events` table and no hookctl schema version: "
                        "it is not a hookctl archive; pass another database, or a schema of its "
                        "own (`?options=-csearch_path%3Dhookctl`)"}};
            }
            return 0;
        }
        auto r = exec("read the schema version",
                      "SELECT version FROM schema_version WHERE application = 'hookctl'");
        return PQntuples(r.get()) == 0 ? 0 : static_cast<int>(col_int(r.get(), 0, 0));
    };
    int version = read_version();
    const bool writing = m_options.mode != Mode::read_only;
    if (version > schema::k_version) {
        throw PgFailure{Error{ExitCode::environment,
                              "archive " + m_display + " has schema version " +
                                  std::to_string(version) +
                                  ", written by a newer hookctl (this one knows up to version " +
                                  std::to_string(schema::k_version) + "): upgrade hookctl"}};
    }
    if (version == 0 && m_options.mode != Mode::create) {
        throw PgFailure{Error{ExitCode::environment,
                              "archive " + m_display +
                                  " holds no hookctl archive yet: create it with `hookctl "
                                  "listen --archive URI` or `hookctl events import --archive "
                                  "URI FILE`, or pass the right --archive"}};
    }
    if (!writing && version < schema::k_version) {
        throw PgFailure{Error{ExitCode::environment,
                              "archive " + m_display + " has schema version " +
                                  std::to_string(version) + " and this hookctl reads version " +
                                  std::to_string(schema::k_version) +
                                  ": migrate it once with `hookctl events migrate --archive URI`"}};
    }
    if (version < schema::k_version) {
        WriteScope write(*this);
        Params lock;
        lock.i64(k_lock_key);
        exec("lock the schema", "SELECT pg_advisory_xact_lock($1)", lock);
        exec_simple("create the schema version table",
                    "CREATE TABLE IF NOT EXISTS schema_version (application text PRIMARY KEY, "
                    "version integer NOT NULL, migrated_at_ms bigint NOT NULL)");
        // Another process may have migrated while this one waited for the lock.
        version = read_version();
        for (const auto& step : schema::migrations()) {
            if (step.from == version && step.to <= schema::k_version) {
                exec_simple("migrate the schema", std::string(step.sql).c_str());
                version = step.to;
            }
        }
        Params v;
        v.i32(version).i64(util::unix_now_ms());
        exec("record the schema version",
             "INSERT INTO schema_version (application, version, migrated_at_ms) VALUES "
             "('hookctl', $1, $2) ON CONFLICT (application) DO UPDATE SET version = "
             "excluded.version, migrated_at_ms = excluded.migrated_at_ms",
             v);
        write.commit();
    }
    m_version = version;
}

Result<std::unique_ptr<Store>> PgStore::another(const OpenOptions& options) const {
    OpenOptions same = options;
    if (!same.cipher) {
        same.cipher = m_codec.cipher();
    }
    return postgres::open(m_uri, same);
}

Result<void> PgStore::ping() {
    return guarded("reach the server", [&]() -> Result<void> {
        if (m_in_transaction) {
            return {};
        }
        exec_simple("reach the server", "SELECT 1");
        return {};
    });
}

// --- transactions -----------------------------------------------------------------------------

Result<void> PgStore::begin() {
    if (m_in_transaction) {
        return fail(ExitCode::usage, "archive " + m_display + ": a transaction is already open");
    }
    return guarded("begin transaction", [&]() -> Result<void> {
        exec_simple("begin transaction", "BEGIN");
        m_in_transaction = true;
        return {};
    });
}

Result<void> PgStore::commit() {
    if (!m_in_transaction) {
        return fail(ExitCode::usage, "archive " + m_display + ": no transaction to commit");
    }
    return guarded("commit", [&]() -> Result<void> {
        try {
            exec_simple("commit", "COMMIT");
        } catch (...) {
            rollback();
            throw;
        }
        m_in_transaction = false;
        return {};
    });
}

void PgStore::rollback() {
    if (!m_in_transaction) {
        return;
    }
    m_in_transaction = false;
    if (m_conn) {
        PgResult(PQexec(m_conn.get(), "ROLLBACK"));
    }
}

// --- encryption at rest -----------------------------------------------------------------------

void PgStore::refresh_encryption() {
    std::map<std::string, std::string> meta;
    auto r = exec("read archive_meta", "SELECT key, value FROM archive_meta");
    for (int i = 0; i < PQntuples(r.get()); ++i) {
        meta[col_text(r.get(), i, 0)] = col_text(r.get(), i, 1);
    }
    auto state = encryption_from_meta(meta);
    if (!state) {
        throw PgFailure{
            Error{state.error().code, "archive " + m_display + ": " + state.error().message}};
    }
    m_codec.set_state(std::move(*state));
}

void PgStore::write_encryption(const EncryptionState& state) {
    for (const auto& [key, value] : encryption_to_meta(state)) {
        Params p;
        p.text(key);
        if (value.empty()) {
            exec("write archive_meta", "DELETE FROM archive_meta WHERE key = $1", p);
        } else {
            p.text(value);
            exec("write archive_meta",
                 "INSERT INTO archive_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO "
                 "UPDATE SET value = excluded.value",
                 p);
        }
    }
}

// Inside a write: the state read again (under the shared side of the encryption lock, which a
// rekey holds exclusively), and whether this handle may store values.
void PgStore::prepare_writes() {
    Params lock;
    lock.i64(k_lock_key);
    exec("lock archive_meta", "SELECT pg_advisory_xact_lock_shared($1)", lock);
    refresh_encryption();
    bool has_values = false;
    if (!m_codec.state().encrypted && m_codec.cipher()) {
        auto r = exec("look for stored bodies", "SELECT EXISTS (SELECT 1 FROM event_bodies) OR "
                                                "EXISTS (SELECT 1 FROM event_reparses)");
        has_values = col_int(r.get(), 0, 0) != 0;
    }
    auto checked = m_codec.check_write(has_values);
    if (!checked) {
        throw PgFailure{checked.error()};
    }
    if (*checked) {
        write_encryption(**checked);
        m_codec.set_state(std::move(**checked));
    }
}

std::string PgStore::open_value(std::string stored, std::string_view field,
                                std::string_view event_id, StoredTable table, std::int64_t row) {
    if (m_codec.stale_for(stored)) {
        refresh_encryption();
    }
    auto opened = m_codec.decode(std::move(stored), field, event_id, table, row);
    if (!opened) {
        throw PgFailure{opened.error()};
    }
    return std::move(*opened);
}

void PgStore::open_values(Event& e) {
    if (!m_codec.state().encrypted && !m_codec.stale_for(e.body) &&
        !(e.raw_mime && m_codec.stale_for(*e.raw_mime))) {
        return;
    }
    e.body = open_value(std::move(e.body), k_field_body, e.event_id, StoredTable::bodies, e.seq);
    if (e.raw_mime) {
        e.raw_mime = open_value(std::move(*e.raw_mime), k_field_raw_mime, e.event_id,
                                StoredTable::bodies, e.seq);
    }
}

Result<std::string> PgStore::prepare_body_writes() {
    return guarded("check the archive key", [&]() -> Result<std::string> {
        WriteScope write(*this);
        prepare_writes();
        write.commit();
        return m_codec.state().encrypted ? m_codec.cipher()->write_key_id() : std::string();
    });
}

Result<EncryptionState> PgStore::reload_encryption() {
    return guarded("read archive_meta", [&]() -> Result<EncryptionState> {
        if (m_in_transaction) {
            // A rekey: writers wait until it commits.
            Params lock;
            lock.i64(k_lock_key);
            exec("lock archive_meta", "SELECT pg_advisory_xact_lock($1)", lock);
        }
        refresh_encryption();
        return m_codec.state();
    });
}

Result<void> PgStore::record_encryption(const EncryptionState& state) {
    return guarded("write archive_meta", [&]() -> Result<void> {
        WriteScope write(*this);
        Params lock;
        lock.i64(k_lock_key);
        exec("lock archive_meta", "SELECT pg_advisory_xact_lock($1)", lock);
        write_encryption(state);
        write.commit();
        m_codec.set_state(state);
        return {};
    });
}

Result<std::vector<StoredValue>> PgStore::stored_values(StoredTable table, std::int64_t after_row,
                                                        std::size_t limit) {
    return guarded("read stored values", [&]() -> Result<std::vector<StoredValue>> {
        const char* sql =
            table == StoredTable::bodies
                ? "SELECT b.seq, e.event_id, b.body, b.raw_mime, 0::bigint FROM event_bodies b "
                  "JOIN events e ON e.seq = b.seq WHERE b.seq > $1 ORDER BY b.seq LIMIT $2"
                : "SELECT r.id, e.event_id, r.body, NULL::bytea, r.version FROM event_reparses r "
                  "JOIN events e ON e.seq = r.seq WHERE r.id > $1 ORDER BY r.id LIMIT $2";
        Params p;
        p.i64(after_row).i64(clamp_limit(limit));
        auto r = exec("read stored values", sql, p);
        std::vector<StoredValue> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            StoredValue v;
            v.table = table;
            v.row = col_int(r.get(), i, 0);
            v.event_id = col_text(r.get(), i, 1);
            v.field = table == StoredTable::bodies ? std::string(k_field_body)
                                                   : reparse_field(col_int(r.get(), i, 4));
            v.bytes = col_text(r.get(), i, 2);
            const bool has_mime = table == StoredTable::bodies && !PQgetisnull(r.get(), i, 3);
            out.push_back(std::move(v));
            if (has_mime) {
                StoredValue m = out.back();
                m.field = std::string(k_field_raw_mime);
                m.bytes = col_text(r.get(), i, 3);
                out.push_back(std::move(m));
            }
        }
        return out;
    });
}

Result<void> PgStore::replace_stored_values(std::span<const StoredValue> values) {
    return guarded("rewrite stored values", [&]() -> Result<void> {
        WriteScope write(*this);
        for (const auto& v : values) {
            const char* sql = v.table == StoredTable::reparses
                                  ? "UPDATE event_reparses SET body = $1 WHERE id = $2"
                              : v.field == k_field_raw_mime
                                  ? "UPDATE event_bodies SET raw_mime = $1 WHERE seq = $2"
                                  : "UPDATE event_bodies SET body = $1 WHERE seq = $2";
            Params p;
            p.bytes(v.bytes).i64(v.row);
            exec("rewrite stored values", sql, p);
        }
        write.commit();
        return {};
    });
}

Result<std::int64_t> PgStore::last_stored_row(StoredTable table) {
    return guarded("read the last stored row", [&]() -> Result<std::int64_t> {
        auto r =
            exec("read the last stored row",
                 table == StoredTable::bodies ? "SELECT coalesce(max(seq), 0) FROM event_bodies"
                                              : "SELECT coalesce(max(id), 0) FROM event_reparses");
        return col_int(r.get(), 0, 0);
    });
}

// --- events -----------------------------------------------------------------------------------

Result<std::vector<InsertResult>> PgStore::insert_events(std::span<const NewEvent> events) {
    for (const auto& e : events) {
        if (e.event_id.empty()) {
            return fail(ExitCode::usage,
                        "archive " + m_display + ": an event without an event_id cannot be stored");
        }
    }
    return guarded("insert events", [&]() -> Result<std::vector<InsertResult>> {
        // The whole batch is one statement over arrays (one parse, one plan, one executor run
        // for the batch instead of one per event): its first copy of each event id is inserted
        // ON CONFLICT (event_id) DO NOTHING, in event id order (receivers writing overlapping
        // batches then lock the ids in the same order and wait for each other instead of
        // deadlocking), and a body only for an event row that was inserted. It returns the ids
        // it inserted.
        constexpr std::string_view k_insert =
            "WITH input AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], "
            "$5::text[], $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[], "
            "$11::text[], $12::text[], $13::bytea[], $14::bytea[], $15::int8[]) WITH ORDINALITY "
            "AS t(event_id, received_at_ms, org_id, scheme, headers, status, attempts, "
            "last_error, trace_id, source, verified_by, client_identity, body, raw_mime, "
            "updated_at_ms, ord)), "
            "firsts AS (SELECT DISTINCT ON (event_id) * FROM input ORDER BY event_id, ord), "
            "ins AS (INSERT INTO events (event_id, received_at_ms, org_id, scheme, headers, "
            "status, attempts, last_error, updated_at_ms, trace_id, source, verified_by, "
            "client_identity) SELECT event_id, received_at_ms, org_id, scheme, headers, status, "
            "attempts, last_error, updated_at_ms, trace_id, source, verified_by, client_identity "
            "FROM "
            "firsts ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING seq, event_id), "
            "bodies AS (INSERT INTO event_bodies (seq, body, raw_mime) SELECT ins.seq, f.body, "
            "f.raw_mime FROM ins JOIN firsts f USING (event_id)) "
            "SELECT event_id FROM ins";
        const std::int64_t now = util::unix_now_ms();
        WriteScope write(*this);
        prepare_writes();
        const bool sealing = m_codec.state().encrypted;
        std::array<ArrayParam, 15> columns{
            ArrayParam(k_text),  ArrayParam(k_int8),  ArrayParam(k_text), ArrayParam(k_text),
            ArrayParam(k_text),  ArrayParam(k_text),  ArrayParam(k_int8), ArrayParam(k_text),
            ArrayParam(k_text),  ArrayParam(k_text),  ArrayParam(k_text), ArrayParam(k_text),
            ArrayParam(k_bytea), ArrayParam(k_bytea), ArrayParam(k_int8)};
        for (const auto& e : events) {
            columns[0].add(e.event_id);
            columns[1].add(e.received_at_ms);
            columns[2].add(e.org_id);
            columns[3].add(e.scheme);
            columns[4].add(headers_to_json(e.headers));
            columns[5].add(to_string(e.status));
            columns[6].add(e.attempts);
            columns[7].add(e.last_error);
            columns[8].add(e.trace_id);
            columns[9].add(e.source);
            columns[10].add(e.verified_by);
            columns[11].add(e.client_identity);
            if (sealing) {
                auto b = m_codec.encode(e.body, k_field_body, e.event_id);
                HOOKCTL_RETURN_IF_ERROR(b);
                columns[12].add(*b);
            } else {
                columns[12].add(e.body);
            }
            if (!e.raw_mime) {
                columns[13].add_null();
            } else if (sealing) {
                auto m = m_codec.encode(*e.raw_mime, k_field_raw_mime, e.event_id);
                HOOKCTL_RETURN_IF_ERROR(m);
                columns[13].add(*m);
            } else {
                columns[13].add(*e.raw_mime);
            }
            columns[14].add(e.updated_at_ms.value_or(now));
        }
        std::vector<InsertResult> results(events.size(), InsertResult::duplicate);
        if (events.empty()) {
            write.commit();
            return results;
        }
        Params p;
        for (std::size_t i = 0; i < columns.size(); ++i) {
            p.array(i == 1 || i == 6 || i == 14 ? k_int8_array
                    : i >= 12                   ? k_bytea_array
                                                : k_text_array,
                    columns[i].finish());
        }
        auto r = exec("insert events", k_insert, p);
        std::unordered_set<std::string> inserted;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            inserted.insert(col_text(r.get(), i, 0));
        }
        // The first copy of an inserted id in the batch is the one inserted.
        for (std::size_t i = 0; i < events.size(); ++i) {
            if (inserted.erase(events[i].event_id) > 0) {
                results[i] = InsertResult::inserted;
            }
        }
        write.commit();
        return results;
    });
}

Result<std::uint64_t> PgStore::for_each_event(const EventFilter& filter,
                                              const std::function<bool(const Event&)>& visit) {
    return guarded("read events", [&]() -> Result<std::uint64_t> {
        // Paged by seq, so memory stays flat and an early stop costs one page.
        std::uint64_t visited = 0;
        EventFilter page = filter;
        for (;;) {
            std::int64_t n = k_page;
            if (filter.limit) {
                if (visited >= *filter.limit) {
                    break;
                }
                n = std::min<std::int64_t>(n, clamp_limit(*filter.limit - visited));
            }
            Params p;
            std::string sql = "SELECT " + event_columns("e", page.with_body ? "b" : "") +
                              " FROM events e" +
                              (page.with_body ? " LEFT JOIN event_bodies b USING (seq)" : "");
            // The where clause's bare columns are unambiguous in the join (seq by USING).
            sql += where_clause(page, true, p, 1);
            sql += " ORDER BY seq LIMIT $" + std::to_string(p.size() + 1);
            p.i64(n);
            auto r = exec("read events", sql, p);
            const int rows = PQntuples(r.get());
            for (int i = 0; i < rows; ++i) {
                ++visited;
                Event event = read_event(r.get(), i);
                if (page.with_body) {
                    open_values(event);
                }
                page.after_seq = event.seq;
                if (!visit(event)) {
                    return visited;
                }
            }
            if (rows < n) {
                break;
            }
        }
        return visited;
    });
}

Result<std::string> PgStore::event_query_plan(const EventFilter& filter) {
    return guarded("explain the event query", [&]() -> Result<std::string> {
        Params p;
        std::string sql =
            "EXPLAIN SELECT seq FROM events" + where_clause(filter, true, p, 1) + " ORDER BY seq";
        if (filter.limit) {
            sql += " LIMIT $" + std::to_string(p.size() + 1);
            p.i64(clamp_limit(*filter.limit));
        }
        auto r = exec("explain the event query", sql, p);
        std::string plan;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            plan += col_text(r.get(), i, 0) + "\n";
        }
        return plan;
    });
}

Result<std::uint64_t> PgStore::count_events(const EventFilter& filter) {
    return guarded("count events", [&]() -> Result<std::uint64_t> {
        Params p;
        auto r = exec("count events",
                      "SELECT count(*) FROM events" + where_clause(filter, true, p, 1), p);
        return static_cast<std::uint64_t>(col_int(r.get(), 0, 0));
    });
}

Result<std::optional<Event>> PgStore::get_event(std::string_view event_id) {
    return guarded("read event", [&]() -> Result<std::optional<Event>> {
        Params p;
        p.text(event_id);
        auto r =
            exec("read event",
                 "SELECT " + event_columns("e", "b") +
                     " FROM events e LEFT JOIN event_bodies b USING (seq) WHERE e.event_id = $1",
                 p);
        if (PQntuples(r.get()) == 0) {
            return std::nullopt;
        }
        Event event = read_event(r.get(), 0);
        open_values(event);
        return event;
    });
}

Result<std::vector<std::string>> PgStore::mark_events(std::span<const std::string> event_ids,
                                                      EventStatus status, std::string_view reason) {
    return guarded("mark events", [&]() -> Result<std::vector<std::string>> {
        std::vector<std::string> missing;
        const std::int64_t now = util::unix_now_ms();
        WriteScope write(*this);
        for (const auto& id : event_ids) {
            Params p;
            p.text(to_string(status)).text(reason).i64(now).text(id);
            auto r = exec("mark events",
                          "UPDATE events SET status = $1, last_error = $2, updated_at_ms = $3 "
                          "WHERE event_id = $4",
                          p);
            if (std::string_view(PQcmdTuples(r.get())) == "0") {
                missing.push_back(id);
            }
        }
        write.commit();
        return missing;
    });
}

// --- attempts ---------------------------------------------------------------------------------

Result<void> PgStore::record_attempts(std::span<const Attempt> attempts) {
    return guarded("record attempts", [&]() -> Result<void> {
        WriteScope write(*this);
        // Items settled under a lease, per worker token: (delivered, dead).
        std::map<std::string, std::pair<std::int64_t, std::int64_t>> settled;
        for (const auto& a : attempts) {
            Params ins;
            ins.text(a.run_id).text(a.event_id).text(a.target).i64(a.attempt).i64(a.at_ms);
            ins.i32(a.http_status).f64(a.latency_ms).text(to_string(a.outcome)).text(a.reason);
            ins.text(a.detail);
            exec("record attempts",
                 "INSERT INTO attempts (run_id, event_id, target, attempt, at_ms, http_status, "
                 "latency_ms, outcome, reason, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                 "$9, $10)",
                 ins);
            // Under a lease the item (and with it the event's status) changes only while the
            // worker still holds it: a stale worker's outcome is recorded as an attempt only.
            bool owned = true;
            if (a.item > 0) {
                Params item;
                if (a.item_state) {
                    item.text(to_string(*a.item_state));
                } else {
                    item.null(k_text);
                }
                item.text(a.run_id).i64(a.item);
                if (a.lease.empty()) {
                    exec("record attempts",
                         "UPDATE run_items SET attempts = attempts + 1, state = coalesce($1, "
                         "state) WHERE run_id = $2 AND item = $3",
                         item);
                } else {
                    item.text(a.lease);
                    // The row is found by its key, and lease and state are checked on it: written
                    // `state = 'pending'`, the condition let a generic plan walk the partial lease
                    // index over every pending item of the run (half a millisecond per attempt).
                    auto r = exec("record attempts",
                                  "UPDATE run_items SET attempts = attempts + 1, state = "
                                  "coalesce($1, state) WHERE run_id = $2 AND item = $3 AND "
                                  "lease_token = $4 AND state NOT IN ('delivered', 'dead')",
                                  item);
                    owned = std::string_view(PQcmdTuples(r.get())) != "0";
                    if (owned && a.item_state && *a.item_state != ItemState::pending) {
                        auto& [delivered, dead] = settled[a.lease];
                        (*a.item_state == ItemState::delivered ? delivered : dead) += 1;
                    }
                }
            }
            if (a.new_status && owned) {
                Params upd;
                upd.i64(a.at_ms).text(a.event_id).text(to_string(*a.new_status));
                upd.text(*a.new_status == EventStatus::delivered ? std::string_view() : a.reason);
                exec("record attempts",
                     "UPDATE events SET attempts = attempts + 1, updated_at_ms = $1, status = $3, "
                     "last_error = $4 WHERE event_id = $2",
                     upd);
            } else {
                Params upd;
                upd.i64(a.at_ms).text(a.event_id);
                exec("record attempts",
                     "UPDATE events SET attempts = attempts + 1, updated_at_ms = $1 WHERE "
                     "event_id = $2",
                     upd);
            }
        }
        count_settled(attempts.empty() ? std::string_view() : attempts.front().run_id, settled);
        write.commit();
        return {};
    });
}

void PgStore::count_settled(
    std::string_view run_id,
    const std::map<std::string, std::pair<std::int64_t, std::int64_t>>& settled) {
    for (const auto& [token, counts] : settled) {
        Params w;
        w.i64(counts.first).i64(counts.second).text(run_id).text(token);
        exec("count the worker's items",
             "UPDATE run_workers SET delivered = delivered + $1, dead = dead + $2 WHERE run_id = "
             "$3 AND token = $4",
             w);
    }
}

namespace {

Attempt read_attempt(const PGresult* r, int row, int first, const std::string& display) {
    Attempt a;
    a.run_id = col_text(r, row, first);
    a.event_id = col_text(r, row, first + 1);
    a.target = col_text(r, row, first + 2);
    a.attempt = col_int(r, row, first + 3);
    a.at_ms = col_int(r, row, first + 4);
    a.http_status = static_cast<int>(col_int(r, row, first + 5));
    a.latency_ms = col_double(r, row, first + 6);
    auto text = col_text(r, row, first + 7);
    auto outcome = parse_attempt_outcome(text);
    if (!outcome) {
        throw PgFailure{Error{ExitCode::environment,
                              "archive " + display +
                                  " holds an attempt with the unknown outcome '" + text +
                                  "' (written by another hookctl version? use that version to "
                                  "read it)"}};
    }
    a.outcome = *outcome;
    a.reason = col_text(r, row, first + 8);
    a.detail = col_text(r, row, first + 9);
    return a;
}

} // namespace

Result<std::vector<Attempt>> PgStore::attempts_for(std::string_view event_id,
                                                   std::string_view run_id) {
    return guarded("read attempts", [&]() -> Result<std::vector<Attempt>> {
        std::string sql = "SELECT run_id, event_id, target, attempt, at_ms, http_status, "
                          "latency_ms, outcome, reason, detail FROM attempts WHERE event_id = $1";
        Params p;
        p.text(event_id);
        if (!run_id.empty()) {
            sql += " AND run_id = $2";
            p.text(run_id);
        }
        sql += " ORDER BY at_ms, id";
        auto r = exec("read attempts", sql, p);
        std::vector<Attempt> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            out.push_back(read_attempt(r.get(), i, 0, m_display));
        }
        return out;
    });
}

// --- runs -------------------------------------------------------------------------------------

Result<Run> PgStore::create_run(const NewRun& run) {
    if (run.kind.empty()) {
        return fail(ExitCode::usage, "archive " + m_display + ": a run needs a kind");
    }
    Run created;
    created.run_id =
        run.run_id.empty() ? "run_" + util::hex_encode(util::random_bytes(8)) : run.run_id;
    created.kind = run.kind;
    created.source = run.source;
    created.target = run.target;
    created.options_json = run.options_json.empty() ? "{}" : run.options_json;
    created.created_at_ms = created.updated_at_ms = util::unix_now_ms();
    return guarded("create run", [&]() -> Result<Run> {
        WriteScope write(*this);
        Params p;
        p.text(created.run_id).text(created.kind).text(created.source).text(created.target);
        p.text(created.options_json).i64(created.created_at_ms).i64(created.updated_at_ms);
        p.text(run.started_by);
        auto r = exec("create run",
                      "INSERT INTO runs (run_id, kind, source, target, options, state, "
                      "created_at_ms, updated_at_ms, started_by) VALUES ($1, $2, $3, $4, $5, "
                      "'running', $6, $7, $8) ON CONFLICT (run_id) DO NOTHING",
                      p);
        if (std::string_view(PQcmdTuples(r.get())) == "0") {
            return fail(ExitCode::usage, "archive " + m_display + ": run id " + created.run_id +
                                             " already exists: choose another id");
        }
        write.commit();
        created.started_by = run.started_by;
        return created;
    });
}

Result<void> PgStore::update_run(std::string_view run_id, const RunProgress& progress,
                                 RunState state, std::string_view last_error) {
    return guarded("update run", [&]() -> Result<void> {
        WriteScope write(*this);
        Params p;
        p.i64(progress.total).i64(progress.done).i64(progress.delivered).i64(progress.dead);
        p.i64(progress.cursor).text(to_string(state)).text(last_error).i64(util::unix_now_ms());
        p.i64(progress.paused_until_ms).text(run_id);
        auto r = exec("update run",
                      "UPDATE runs SET total = $1, done = $2, delivered = $3, failed = $4, "
                      "cursor = $5, state = $6, last_error = $7, updated_at_ms = $8, "
                      "paused_until_ms = $9 WHERE run_id = $10",
                      p);
        if (std::string_view(PQcmdTuples(r.get())) == "0") {
            return fail(ExitCode::usage, "archive " + m_display + ": no run with id " +
                                             std::string(run_id) +
                                             " (list runs with `hookctl replay --list`)");
        }
        write.commit();
        return {};
    });
}

Result<std::optional<Run>> PgStore::get_run(std::string_view run_id) {
    return guarded("read run", [&]() -> Result<std::optional<Run>> {
        Params p;
        p.text(run_id);
        auto r = exec("read run",
                      std::string("SELECT ") + k_run_columns + " FROM runs WHERE run_id = $1", p);
        if (PQntuples(r.get()) == 0) {
            return std::nullopt;
        }
        return read_run(r.get(), 0);
    });
}

Result<std::vector<Run>> PgStore::list_runs() {
    return guarded("list runs", [&]() -> Result<std::vector<Run>> {
        auto r =
            exec("list runs", std::string("SELECT ") + k_run_columns +
                                  " FROM runs ORDER BY created_at_ms DESC, created_order DESC");
        std::vector<Run> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            out.push_back(read_run(r.get(), i));
        }
        return out;
    });
}

Result<void> PgStore::set_run_options(std::string_view run_id, std::string_view options_json) {
    return guarded("update run options", [&]() -> Result<void> {
        WriteScope write(*this);
        Params p;
        p.text(options_json).i64(util::unix_now_ms()).text(run_id);
        auto r = exec("update run options",
                      "UPDATE runs SET options = $1, updated_at_ms = $2 WHERE run_id = $3", p);
        if (std::string_view(PQcmdTuples(r.get())) == "0") {
            return fail(ExitCode::usage,
                        "archive " + m_display + ": no run with id " + std::string(run_id));
        }
        write.commit();
        return {};
    });
}

Result<std::int64_t> PgStore::select_run_items(std::string_view run_id, const EventFilter& filter,
                                               bool by_received_at) {
    return guarded("select the run's events", [&]() -> Result<std::int64_t> {
        Params p;
        p.text(run_id);
        const std::string order = by_received_at ? "received_at_ms, seq" : "seq";
        std::string sql = "INSERT INTO run_items (run_id, item, event_id, seq) SELECT $1, "
                          "row_number() OVER (ORDER BY " +
                          order + "), event_id, seq FROM events" +
                          where_clause(filter, false, p, 2) + " ORDER BY " + order;
        if (filter.limit) {
            sql += " LIMIT $" + std::to_string(p.size() + 1);
            p.i64(clamp_limit(*filter.limit));
        }
        WriteScope write(*this);
        auto r = exec("select the run's events", sql, p);
        auto selected = std::stoll(PQcmdTuples(r.get()));
        write.commit();
        return static_cast<std::int64_t>(selected);
    });
}

Result<void> PgStore::add_run_items(std::string_view run_id, std::span<const RunItem> items) {
    return guarded("record the run's selection", [&]() -> Result<void> {
        WriteScope write(*this);
        for (const auto& item : items) {
            Params p;
            p.text(run_id).i64(item.item).text(item.event_id).i64(item.seq);
            p.text(to_string(item.state)).i64(item.attempts);
            exec("record the run's selection",
                 "INSERT INTO run_items (run_id, item, event_id, seq, state, attempts) VALUES "
                 "($1, $2, $3, $4, $5, $6)",
                 p);
        }
        write.commit();
        return {};
    });
}

Result<std::uint64_t>
PgStore::for_each_pending_event(std::string_view run_id, std::int64_t after_item,
                                std::uint64_t limit,
                                const std::function<bool(const RunItem&, const Event&)>& visit) {
    return guarded("read the run's events", [&]() -> Result<std::uint64_t> {
        const std::string sql = "SELECT " + event_columns("e", "b") +
                                ", i.item, i.event_id, i.seq, i.state, i.attempts FROM run_items i "
                                "LEFT JOIN events e ON e.seq = i.seq AND e.event_id = i.event_id "
                                "LEFT JOIN event_bodies b ON b.seq = e.seq "
                                "WHERE i.run_id = $1 AND i.item > $2 AND i.state = 'pending' "
                                "ORDER BY i.item LIMIT $3";
        std::uint64_t visited = 0;
        std::int64_t after = after_item;
        while (visited < limit) {
            const std::int64_t n = std::min<std::int64_t>(k_page, clamp_limit(limit - visited));
            Params p;
            p.text(run_id).i64(after).i64(n);
            auto r = exec("read the run's events", sql, p);
            const int rows = PQntuples(r.get());
            for (int i = 0; i < rows; ++i) {
                ++visited;
                auto item = read_run_item(r.get(), i, k_event_column_count);
                after = item.item;
                Event event;
                if (!PQgetisnull(r.get(), i, 1)) {
                    event = read_event(r.get(), i);
                    open_values(event);
                }
                if (!visit(item, event)) {
                    return visited;
                }
            }
            if (rows < n) {
                break;
            }
        }
        return visited;
    });
}

// --- copying between archives ------------------------------------------------------------------

Result<std::uint64_t>
PgStore::for_each_run_item(std::string_view run_id, std::int64_t after_item, std::uint64_t limit,
                           const std::function<bool(const RunItemCopy&)>& visit) {
    return guarded("read the run's items", [&]() -> Result<std::uint64_t> {
        std::uint64_t visited = 0;
        std::int64_t after = after_item;
        while (visited < limit) {
            const std::int64_t n = std::min<std::int64_t>(k_page, clamp_limit(limit - visited));
            Params p;
            p.text(run_id).i64(after).i64(n);
            auto r = exec("read the run's items",
                          "SELECT i.item, i.event_id, i.seq, i.state, i.attempts, EXISTS (SELECT "
                          "1 FROM events e WHERE e.seq = i.seq AND e.event_id = i.event_id) FROM "
                          "run_items i WHERE i.run_id = $1 AND i.item > $2 ORDER BY i.item "
                          "LIMIT $3",
                          p);
            const int rows = PQntuples(r.get());
            for (int i = 0; i < rows; ++i) {
                RunItemCopy copy{read_run_item(r.get(), i, 0), PQgetvalue(r.get(), i, 5)[0] != 0};
                after = copy.item.item;
                ++visited;
                if (!visit(copy)) {
                    return visited;
                }
            }
            if (rows < n) {
                break;
            }
        }
        return visited;
    });
}

Result<bool> PgStore::copy_run(const Run& run) {
    return guarded("copy run", [&]() -> Result<bool> {
        WriteScope write(*this);
        Params p;
        p.text(run.run_id).text(run.kind).text(run.source).text(run.target);
        p.text(run.options_json).text(to_string(run.state)).i64(run.progress.total);
        p.i64(run.progress.done).i64(run.progress.delivered).i64(run.progress.dead);
        p.i64(run.progress.cursor).i64(run.created_at_ms).i64(run.updated_at_ms);
        p.text(run.last_error).text(run.started_by).i64(run.progress.paused_until_ms);
        auto r = exec("copy run",
                      "INSERT INTO runs (run_id, kind, source, target, options, state, total, "
                      "done, delivered, failed, cursor, created_at_ms, updated_at_ms, "
                      "last_error, started_by, paused_until_ms) VALUES ($1, $2, $3, $4, $5, $6, "
                      "$7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (run_id) DO "
                      "NOTHING",
                      p);
        const bool stored = std::string_view(PQcmdTuples(r.get())) == "1";
        write.commit();
        return stored;
    });
}

Result<std::uint64_t> PgStore::copy_run_items(std::string_view run_id,
                                              std::span<const RunItemCopy> items) {
    return guarded("copy the run's items", [&]() -> Result<std::uint64_t> {
        WriteScope write(*this);
        std::uint64_t stored = 0;
        for (const auto& [item, of_event] : items) {
            Params p;
            p.text(run_id).i64(item.item).text(item.event_id).i64(item.seq);
            p.text(to_string(item.state)).i64(item.attempts).boolean(of_event);
            auto r = exec("copy the run's items",
                          "INSERT INTO run_items (run_id, item, event_id, seq, state, attempts) "
                          "VALUES ($1, $2, $3, CASE WHEN $7 THEN coalesce((SELECT seq FROM events "
                          "WHERE event_id = $3), $4) ELSE $4 END, $5, $6) ON CONFLICT (run_id, "
                          "item) DO NOTHING",
                          p);
            stored += std::string_view(PQcmdTuples(r.get())) == "1" ? 1 : 0;
        }
        write.commit();
        return stored;
    });
}

Result<std::uint64_t> PgStore::copy_attempts(std::span<const Attempt> attempts) {
    return guarded("copy attempts", [&]() -> Result<std::uint64_t> {
        WriteScope write(*this);
        std::uint64_t stored = 0;
        for (const auto& a : attempts) {
            Params p;
            p.text(a.run_id).text(a.event_id).text(a.target).i64(a.attempt).i64(a.at_ms);
            p.i32(a.http_status).f64(a.latency_ms).text(to_string(a.outcome)).text(a.reason);
            p.text(a.detail);
            auto r = exec("copy attempts",
                          "INSERT INTO attempts (run_id, event_id, target, attempt, at_ms, "
                          "http_status, latency_ms, outcome, reason, detail) SELECT $1, $2, $3, "
                          "$4, $5, $6, $7, $8, $9, $10 WHERE NOT EXISTS (SELECT 1 FROM attempts "
                          "WHERE run_id = $1 AND event_id = $2 AND target = $3 AND attempt = $4 "
                          "AND at_ms = $5)",
                          p);
            stored += std::string_view(PQcmdTuples(r.get())) == "1" ? 1 : 0;
        }
        write.commit();
        return stored;
    });
}

Result<std::optional<RunItem>> PgStore::find_run_item(std::string_view run_id, std::int64_t item,
                                                      std::string_view event_id) {
    return guarded("read a run item", [&]() -> Result<std::optional<RunItem>> {
        Params at;
        at.text(run_id).i64(item).text(event_id);
        auto r = exec("read a run item",
                      "SELECT item, event_id, seq, state, attempts FROM run_items WHERE run_id = "
                      "$1 AND item = $2 AND event_id = $3",
                      at);
        if (PQntuples(r.get()) > 0) {
            return read_run_item(r.get(), 0, 0);
        }
        Params by_id;
        by_id.text(run_id).text(event_id);
        auto s = exec("read a run item",
                      "SELECT item, event_id, seq, state, attempts FROM run_items WHERE run_id = "
                      "$1 AND event_id = $2 ORDER BY state <> 'pending', item LIMIT 1",
                      by_id);
        if (PQntuples(s.get()) > 0) {
            return read_run_item(s.get(), 0, 0);
        }
        return std::nullopt;
    });
}

Result<ItemCounts> PgStore::count_run_items(std::string_view run_id) {
    return guarded("count the run's items", [&]() -> Result<ItemCounts> {
        Params p;
        p.text(run_id);
        auto r = exec("count the run's items",
                      "SELECT state, count(*) FROM run_items WHERE run_id = $1 GROUP BY 1", p);
        ItemCounts counts;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            auto state = parse_item_state(col_text(r.get(), i, 0));
            auto n = col_int(r.get(), i, 1);
            (state == ItemState::delivered ? counts.delivered
             : state == ItemState::dead    ? counts.dead
                                           : counts.pending) += n;
        }
        return counts;
    });
}

Result<void> PgStore::settle_items(std::span<const ItemVerdict> verdicts) {
    return guarded("settle run items", [&]() -> Result<void> {
        WriteScope write(*this);
        const std::int64_t now = util::unix_now_ms();
        std::map<std::string, std::pair<std::int64_t, std::int64_t>> settled;
        for (const auto& v : verdicts) {
            Params item;
            item.text(to_string(v.state)).text(v.run_id).i64(v.item);
            bool owned = true;
            if (v.lease.empty()) {
                exec("settle run items",
                     "UPDATE run_items SET state = $1 WHERE run_id = $2 AND item = $3", item);
            } else {
                item.text(v.lease);
                auto r = exec("settle run items",
                              "UPDATE run_items SET state = $1 WHERE run_id = $2 AND item = $3 "
                              "AND lease_token = $4 AND state NOT IN ('delivered', 'dead')",
                              item);
                owned = std::string_view(PQcmdTuples(r.get())) != "0";
                if (owned && v.state != ItemState::pending) {
                    auto& [delivered, dead] = settled[v.lease];
                    (v.state == ItemState::delivered ? delivered : dead) += 1;
                }
            }
            if (v.event_status && owned) {
                Params event;
                event.text(to_string(*v.event_status));
                event.text(*v.event_status == EventStatus::delivered ? std::string_view()
                                                                     : v.reason);
                event.i64(now).text(v.event_id);
                exec("settle run items",
                     "UPDATE events SET status = $1, last_error = $2, updated_at_ms = $3 WHERE "
                     "event_id = $4",
                     event);
            }
        }
        count_settled(verdicts.empty() ? std::string_view() : verdicts.front().run_id, settled);
        write.commit();
        return {};
    });
}

Result<std::vector<Store::AttemptCount>> PgStore::count_attempts(std::string_view run_id) {
    return guarded("count the run's attempts", [&]() -> Result<std::vector<AttemptCount>> {
        Params p;
        p.text(run_id);
        auto r = exec("count the run's attempts",
                      "SELECT outcome, reason, count(*) FROM attempts WHERE run_id = $1 GROUP BY "
                      "1, 2 ORDER BY 3 DESC, 1, 2",
                      p);
        std::vector<AttemptCount> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            out.push_back(
                {col_text(r.get(), i, 0), col_text(r.get(), i, 1), col_int(r.get(), i, 2)});
        }
        return out;
    });
}

// --- the receiver's request log ---------------------------------------------------------------

Result<void> PgStore::log_requests(std::span<const RequestLog> entries) {
    return guarded("log requests", [&]() -> Result<void> {
        WriteScope write(*this);
        for (const auto& e : entries) {
            Params p;
            p.i64(e.at_ms).text(e.event_id).i32(e.http_status).text(e.reason);
            p.boolean(e.injected).f64(e.latency_ms).text(e.trace_id);
            exec("log requests",
                 "INSERT INTO requests (at_ms, event_id, http_status, reason, injected, "
                 "latency_ms, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                 p);
        }
        write.commit();
        return {};
    });
}

Result<std::vector<Store::RequestCount>> PgStore::request_counts() {
    return guarded("count requests", [&]() -> Result<std::vector<RequestCount>> {
        auto r = exec("count requests", "SELECT http_status, reason, injected, count(*) FROM "
                                        "requests GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2");
        std::vector<RequestCount> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            out.push_back({static_cast<int>(col_int(r.get(), i, 0)), col_text(r.get(), i, 1),
                           col_int(r.get(), i, 2) != 0, col_int(r.get(), i, 3)});
        }
        return out;
    });
}

// --- statistics -------------------------------------------------------------------------------

Result<Stats> PgStore::stats(const EventFilter& filter, std::string_view run_id) {
    return guarded("compute statistics", [&]() -> Result<Stats> {
        Stats stats;
        auto grouped = [&](const std::string& key, const std::string& order) {
            std::vector<std::pair<std::string, std::int64_t>> rows;
            Params p;
            auto r = exec("compute statistics",
                          "SELECT " + key + ", count(*) FROM events" +
                              where_clause(filter, true, p, 1) + " GROUP BY 1 ORDER BY " + order,
                          p);
            for (int i = 0; i < PQntuples(r.get()); ++i) {
                rows.emplace_back(col_text(r.get(), i, 0), col_int(r.get(), i, 1));
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
        stats.by_day = grouped("to_char(to_timestamp(received_at_ms / 1000) AT TIME ZONE 'UTC', "
                               "'YYYY-MM-DD')",
                               "1");
        Params by_run;
        if (!run_id.empty()) {
            by_run.text(run_id);
        }
        {
            auto r = exec("compute statistics",
                          std::string("SELECT outcome, count(*) FROM attempts") +
                              (run_id.empty() ? "" : " WHERE run_id = $1") +
                              " GROUP BY 1 ORDER BY 2 DESC, 1",
                          by_run);
            for (int i = 0; i < PQntuples(r.get()); ++i) {
                auto n = col_int(r.get(), i, 1);
                stats.attempts_by_outcome.emplace_back(col_text(r.get(), i, 0), n);
                stats.attempts += n;
            }
        }
        // Nearest-rank percentiles of the attempts that got an HTTP response, as SQLite's.
        {
            auto r = exec("compute statistics",
                          std::string("SELECT count(*), coalesce(max(latency_ms), 0), "
                                      "percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), "
                                      "percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms), "
                                      "percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) "
                                      "FROM attempts WHERE http_status > 0") +
                              (run_id.empty() ? "" : " AND run_id = $1"),
                          by_run);
            stats.latency.count = col_int(r.get(), 0, 0);
            stats.latency.max = col_double(r.get(), 0, 1);
            stats.latency.p50 = col_double(r.get(), 0, 2);
            stats.latency.p95 = col_double(r.get(), 0, 3);
            stats.latency.p99 = col_double(r.get(), 0, 4);
        }
        return stats;
    });
}

// --- following --------------------------------------------------------------------------------

Result<std::int64_t> PgStore::data_version() {
    return guarded("read the data version", [&]() -> Result<std::int64_t> {
        // The server's WAL insert position moves with every commit (this archive's among them):
        // a follower reads again when it moved, at worst for another database's commit.
        auto r = exec("read the data version",
                      "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint");
        return col_int(r.get(), 0, 0);
    });
}

Result<Store::HighWater> PgStore::high_water() {
    return guarded("read the last rows", [&]() -> Result<HighWater> {
        auto r = exec("read the last rows", "SELECT (SELECT coalesce(max(seq), 0) FROM events), "
                                            "(SELECT coalesce(max(id), 0) FROM attempts)");
        return HighWater{col_int(r.get(), 0, 0), col_int(r.get(), 0, 1)};
    });
}

Result<std::uint64_t> PgStore::for_each_attempt(
    std::int64_t after_id, std::uint64_t limit,
    const std::function<bool(const Attempt&, std::string_view org_id)>& visit) {
    return guarded("read attempts", [&]() -> Result<std::uint64_t> {
        std::uint64_t visited = 0;
        std::int64_t after = after_id;
        while (visited < limit) {
            const std::int64_t n = std::min<std::int64_t>(k_page, clamp_limit(limit - visited));
            Params p;
            p.i64(after).i64(n);
            auto r = exec("read attempts",
                          "SELECT a.id, a.run_id, a.event_id, a.target, a.attempt, a.at_ms, "
                          "a.http_status, a.latency_ms, a.outcome, a.reason, a.detail, "
                          "coalesce(e.org_id, '') FROM attempts a LEFT JOIN events e ON "
                          "e.event_id = a.event_id WHERE a.id > $1 ORDER BY a.id LIMIT $2",
                          p);
            const int rows = PQntuples(r.get());
            for (int i = 0; i < rows; ++i) {
                Attempt a = read_attempt(r.get(), i, 1, m_display);
                a.id = col_int(r.get(), i, 0);
                after = a.id;
                ++visited;
                if (!visit(a, col_text(r.get(), i, 11))) {
                    return visited;
                }
            }
            if (rows < n) {
                break;
            }
        }
        return visited;
    });
}

// --- re-parses --------------------------------------------------------------------------------

Result<std::vector<std::int64_t>> PgStore::add_reparses(std::span<const NewReparse> reparses) {
    return guarded("store re-parses", [&]() -> Result<std::vector<std::int64_t>> {
        WriteScope write(*this);
        prepare_writes();
        const std::int64_t now = util::unix_now_ms();
        std::vector<std::int64_t> versions;
        for (const auto& rp : reparses) {
            Params find;
            find.text(rp.event_id);
            auto f = exec("store re-parses",
                          "SELECT e.seq, coalesce((SELECT max(version) FROM event_reparses r "
                          "WHERE r.seq = e.seq), 0) FROM events e WHERE e.event_id = $1",
                          find);
            if (PQntuples(f.get()) == 0) {
                return fail(ExitCode::usage, "archive " + m_display + ": no event with id '" +
                                                 rp.event_id + "' to store a re-parse of");
            }
            const std::int64_t seq = col_int(f.get(), 0, 0);
            const std::int64_t version = col_int(f.get(), 0, 1) + 1;
            auto body = m_codec.encode(rp.body, reparse_field(version), rp.event_id);
            HOOKCTL_RETURN_IF_ERROR(body);
            Params ins;
            ins.i64(seq).i64(version).text(rp.parser).i64(now).text_copy(json(rp.divergent).dump());
            ins.bytes(*body);
            exec("store re-parses",
                 "INSERT INTO event_reparses (seq, version, parser, created_at_ms, divergent, "
                 "body) VALUES ($1, $2, $3, $4, $5, $6)",
                 ins);
            versions.push_back(version);
        }
        write.commit();
        return versions;
    });
}

Result<std::vector<Reparse>> PgStore::reparses_of(std::string_view event_id, bool with_body) {
    return guarded("read re-parses", [&]() -> Result<std::vector<Reparse>> {
        Params p;
        p.text(event_id);
        auto r = exec("read re-parses",
                      std::string("SELECT r.id, r.version, r.parser, r.created_at_ms, "
                                  "r.divergent, ") +
                          (with_body ? "r.body" : "NULL::bytea") +
                          " FROM event_reparses r JOIN events e ON e.seq = r.seq "
                          "WHERE e.event_id = $1 ORDER BY r.version",
                      p);
        std::vector<Reparse> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            Reparse rp;
            rp.version = col_int(r.get(), i, 1);
            rp.parser = col_text(r.get(), i, 2);
            rp.created_at_ms = col_int(r.get(), i, 3);
            auto divergent = json::parse(col_text(r.get(), i, 4), nullptr, false);
            if (divergent.is_array()) {
                for (const auto& field : divergent) {
                    if (field.is_string()) {
                        rp.divergent.push_back(field.get<std::string>());
                    }
                }
            }
            if (with_body) {
                rp.body = open_value(col_text(r.get(), i, 5), reparse_field(rp.version), event_id,
                                     StoredTable::reparses, col_int(r.get(), i, 0));
            }
            out.push_back(std::move(rp));
        }
        return out;
    });
}

// --- runs shared by workers -------------------------------------------------------------------

namespace {

// The server's clock, so workers on hosts whose clocks differ agree on leases and slots.
constexpr const char* k_now_ms = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
constexpr const char* k_now_ns = "(extract(epoch FROM clock_timestamp()) * 1000000000)::bigint";
// The channel of NOTIFY: its payload is the run id.
constexpr const char* k_channel = "hookctl_runs";

} // namespace

void PgStore::notify_run(std::string_view run_id) {
    Params p;
    p.text(run_id);
    exec("wake the run's workers", std::string("SELECT pg_notify('") + k_channel + "', $1)", p);
}

void PgStore::touch_worker(std::string_view run_id, const WorkerLease& lease,
                           std::string_view state) {
    Params w;
    w.text(run_id).text(lease.token).text(lease.worker).text(state).i64(lease.length.count());
    exec("record the worker",
         std::string("INSERT INTO run_workers (run_id, token, worker, state, started_at_ms, "
                     "seen_at_ms, lease_ms) VALUES ($1, $2, $3, $4, ") +
             k_now_ms + ", " + k_now_ms +
             ", $5) ON CONFLICT (run_id, token) DO UPDATE SET state = excluded.state, "
             "seen_at_ms = excluded.seen_at_ms, lease_ms = excluded.lease_ms",
         w);
}

Result<std::uint64_t>
PgStore::claim_items(std::string_view run_id, const WorkerLease& lease, std::int64_t after_item,
                     std::uint64_t limit,
                     const std::function<void(const RunItem&, const Event&)>& visit) {
    return guarded("claim run items", [&]() -> Result<std::uint64_t> {
        WriteScope write(*this);
        Params p;
        p.text(run_id).text(lease.token).i64(clamp_limit(limit)).i64(lease.length.count());
        p.i64(after_item);
        const std::string sql =
            std::string("WITH c AS (SELECT item FROM run_items WHERE run_id = $1 AND state = "
                        "'pending' AND item > $5 AND (lease_token IS NULL OR lease_until_ms < ") +
            k_now_ms +
            ") ORDER BY item LIMIT $3 FOR UPDATE SKIP LOCKED), u AS (UPDATE run_items i SET "
            "lease_token = $2, lease_until_ms = " +
            k_now_ms +
            " + $4 FROM c WHERE i.run_id = $1 AND i.item = c.item RETURNING i.item, i.event_id, "
            "i.seq, i.state, i.attempts) SELECT " +
            event_columns("e", "b") +
            ", u.item, u.event_id, u.seq, u.state, u.attempts FROM u LEFT JOIN events e ON "
            "e.seq = u.seq AND e.event_id = u.event_id LEFT JOIN event_bodies b ON b.seq = e.seq "
            "ORDER BY u.item";
        auto r = exec("claim run items", sql, p);
        const int rows = PQntuples(r.get());
        if (rows > 0) {
            Params w;
            w.i64(rows).text(run_id).text(lease.token);
            exec("claim run items",
                 "UPDATE run_workers SET claimed = claimed + $1 WHERE run_id = $2 AND token = $3",
                 w);
        }
        write.commit();
        for (int i = 0; i < rows; ++i) {
            auto item = read_run_item(r.get(), i, k_event_column_count);
            Event event;
            if (!PQgetisnull(r.get(), i, 1)) {
                event = read_event(r.get(), i);
                open_values(event);
            }
            visit(item, event);
        }
        return static_cast<std::uint64_t>(rows);
    });
}

Result<std::int64_t> PgStore::renew_leases(std::string_view run_id, const WorkerLease& lease,
                                           std::string_view worker_state) {
    return guarded("renew the worker's leases", [&]() -> Result<std::int64_t> {
        // Two statements, each its own transaction, neither waiting while it holds a lock: the
        // items this worker's recorder is settling are skipped (they are about to leave
        // `pending`; their leases have seconds left), then the worker row. Taken together, in
        // any order, they could deadlock with the recorder's transaction, which settles items
        // and counts them on the worker row.
        Params p;
        p.text(run_id).text(lease.token).i64(lease.length.count());
        auto r = exec("renew the worker's leases",
                      std::string("UPDATE run_items SET lease_until_ms = ") + k_now_ms +
                          " + $3 WHERE (run_id, item) IN (SELECT run_id, item FROM run_items "
                          "WHERE run_id = $1 AND lease_token = $2 AND state = 'pending' FOR "
                          "UPDATE SKIP LOCKED)",
                      p);
        touch_worker(run_id, lease, worker_state);
        return std::stoll(PQcmdTuples(r.get()));
    });
}

Result<void> PgStore::release_leases(std::string_view run_id, const WorkerLease& lease,
                                     std::string_view worker_state) {
    return guarded("give back the worker's items", [&]() -> Result<void> {
        WriteScope write(*this);
        Params p;
        p.text(run_id).text(lease.token);
        exec("give back the worker's items",
             "UPDATE run_items SET lease_token = NULL, lease_until_ms = NULL WHERE run_id = $1 "
             "AND lease_token = $2 AND state = 'pending'",
             p);
        touch_worker(run_id, lease, worker_state); // after the items, as renew_leases
        notify_run(run_id);
        write.commit();
        return {};
    });
}

Result<SharedRunState> PgStore::shared_state(std::string_view run_id, std::string_view token) {
    return guarded("read the shared run", [&]() -> Result<SharedRunState> {
        Params p;
        p.text(run_id).text(token);
        auto r = exec(
            "read the shared run",
            std::string("WITH now AS (SELECT ") + k_now_ms +
                " AS ms) SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER "
                "(WHERE state = 'delivered'), count(*) FILTER (WHERE state = 'dead'), count(*) "
                "FILTER (WHERE state = 'pending' AND lease_token = $2 AND lease_until_ms >= "
                "now.ms), count(*) FILTER (WHERE state = 'pending' AND lease_token <> $2 AND "
                "lease_until_ms >= now.ms), count(*) FILTER (WHERE state = 'pending' AND "
                "(lease_token IS NULL OR lease_until_ms < now.ms)), coalesce(min(lease_until_ms) "
                "FILTER (WHERE state = 'pending' AND lease_token <> $2 AND lease_until_ms >= "
                "now.ms) - now.ms, 0), (SELECT state FROM runs WHERE run_id = $1), (SELECT "
                "last_error FROM runs WHERE run_id = $1) FROM run_items, now WHERE run_id = $1 "
                "GROUP BY now.ms",
            p);
        SharedRunState out;
        if (PQntuples(r.get()) == 0) {
            return out;
        }
        out.items.pending = col_int(r.get(), 0, 0);
        out.items.delivered = col_int(r.get(), 0, 1);
        out.items.dead = col_int(r.get(), 0, 2);
        out.mine = col_int(r.get(), 0, 3);
        out.leased = col_int(r.get(), 0, 4);
        out.claimable = col_int(r.get(), 0, 5);
        out.next_expiry_in_ms = col_int(r.get(), 0, 6);
        out.state = parse_run_state(col_text(r.get(), 0, 7)).value_or(RunState::failed);
        out.last_error = col_text(r.get(), 0, 8);
        return out;
    });
}

Result<SlotBlock> PgStore::reserve_slots(std::string_view run_id, int count,
                                         std::int64_t interval_ns) {
    return guarded("reserve send slots", [&]() -> Result<SlotBlock> {
        const std::int64_t span = static_cast<std::int64_t>(std::max(1, count)) * interval_ns;
        Params p;
        p.text(run_id).i64(span);
        // The schedule never catches up on slots nobody took: an idle run starts again from now.
        auto r = exec("reserve send slots",
                      std::string("WITH now AS (SELECT ") + k_now_ns +
                          " AS ns) INSERT INTO run_pacing AS p (run_id, next_ns) SELECT $1, "
                          "now.ns + $2 FROM now ON CONFLICT (run_id) DO UPDATE SET next_ns = "
                          "greatest(p.next_ns, (SELECT ns FROM now)) + $2 RETURNING p.next_ns - "
                          "$2 - (SELECT ns FROM now)",
                      p);
        SlotBlock block;
        block.first_in_us = col_int(r.get(), 0, 0) / 1000;
        block.interval_ns = interval_ns;
        block.count = std::max(1, count);
        return block;
    });
}

Result<void> PgStore::pause_slots(std::string_view run_id, std::int64_t pause_ms) {
    return guarded("pause the run", [&]() -> Result<void> {
        WriteScope write(*this);
        Params p;
        p.text(run_id).i64(pause_ms);
        exec("pause the run",
             std::string("INSERT INTO run_pacing AS p (run_id, next_ns) VALUES ($1, ") + k_now_ns +
                 " + $2 * 1000000) ON CONFLICT (run_id) DO UPDATE SET next_ns = "
                 "greatest(p.next_ns, excluded.next_ns)",
             p);
        exec("pause the run",
             std::string("UPDATE runs SET paused_until_ms = greatest(paused_until_ms, ") +
                 k_now_ms + " + $2) WHERE run_id = $1",
             p);
        write.commit();
        return {};
    });
}

Result<RunState> PgStore::update_shared_run(std::string_view run_id, const WorkerLease& lease,
                                            RunState state, std::string_view last_error,
                                            std::int64_t paused_until_ms) {
    return guarded("update run", [&]() -> Result<RunState> {
        WriteScope write(*this);
        Params id;
        id.text(run_id);
        auto current =
            exec("update run", "SELECT state FROM runs WHERE run_id = $1 FOR UPDATE", id);
        if (PQntuples(current.get()) == 0) {
            return fail(ExitCode::usage, "archive " + m_display + ": no run with id " +
                                             std::string(run_id) +
                                             " (list runs with `hookctl events runs`)");
        }
        const auto was = parse_run_state(col_text(current.get(), 0, 0)).value_or(RunState::running);
        auto counted = exec("update run",
                            "SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER "
                            "(WHERE state = 'delivered'), count(*) FILTER (WHERE state = "
                            "'dead') FROM run_items WHERE run_id = $1",
                            id);
        const std::int64_t pending = col_int(counted.get(), 0, 0);
        const std::int64_t delivered = col_int(counted.get(), 0, 1);
        const std::int64_t dead = col_int(counted.get(), 0, 2);
        Params others;
        others.text(run_id).text(lease.token);
        auto live = exec("update run",
                         std::string("SELECT count(*) FROM run_workers WHERE run_id = $1 AND "
                                     "token <> $2 AND state = 'running' AND seen_at_ms + "
                                     "lease_ms >= ") +
                             k_now_ms,
                         others);
        const bool others_live = col_int(live.get(), 0, 0) > 0;
        RunState next = state;
        std::string error(last_error);
        if (pending == 0) {
            next = RunState::completed;
            error.clear();
        } else if (state == RunState::aborted || was == RunState::aborted) {
            next = RunState::aborted; // a worker's breaker stops every worker
            if (state != RunState::aborted) {
                error.clear(); // keep the reason the tripping worker wrote
            }
        } else if (state == RunState::running) {
            next = RunState::running;
        } else if (others_live) {
            next = RunState::running; // this worker leaves; the others go on
            error.clear();
        } else if (state == RunState::completed) {
            next = RunState::failed;
            error = std::to_string(pending) + " selected events are still pending";
        }
        Params p;
        p.i64(pending + delivered + dead).i64(delivered + dead).i64(delivered).i64(dead);
        p.text(to_string(next)).text(error).i64(util::unix_now_ms()).i64(paused_until_ms);
        p.text(run_id).boolean(!error.empty());
        exec("update run",
             "UPDATE runs SET total = $1, done = $2, delivered = $3, failed = $4, state = $5, "
             "last_error = CASE WHEN $10 THEN $6 WHEN $5 = 'running' OR $5 = 'completed' THEN '' "
             "ELSE last_error END, updated_at_ms = $7, paused_until_ms = greatest(paused_until_ms, "
             "$8) WHERE run_id = $9",
             p);
        touch_worker(run_id, lease, archive::worker_state(state));
        if (state != RunState::running || next != RunState::running) {
            notify_run(run_id);
        }
        write.commit();
        return next;
    });
}

Result<std::vector<Worker>> PgStore::list_workers(std::string_view run_id) {
    return guarded("read the run's workers", [&]() -> Result<std::vector<Worker>> {
        Params p;
        p.text(run_id);
        auto r = exec("read the run's workers",
                      std::string("SELECT w.token, w.worker, w.state, w.started_at_ms, "
                                  "w.seen_at_ms, w.claimed, w.delivered, w.dead, (SELECT "
                                  "count(*) FROM run_items i WHERE i.run_id = w.run_id AND "
                                  "i.lease_token = w.token AND i.state = 'pending'), w.state = "
                                  "'running' AND w.seen_at_ms + w.lease_ms >= ") +
                          k_now_ms +
                          " FROM run_workers w WHERE w.run_id = $1 ORDER BY w.started_at_ms, "
                          "w.token",
                      p);
        std::vector<Worker> out;
        for (int i = 0; i < PQntuples(r.get()); ++i) {
            Worker w;
            w.token = col_text(r.get(), i, 0);
            w.worker = col_text(r.get(), i, 1);
            w.state = col_text(r.get(), i, 2);
            w.started_at_ms = col_int(r.get(), i, 3);
            w.seen_at_ms = col_int(r.get(), i, 4);
            w.claimed = col_int(r.get(), i, 5);
            w.delivered = col_int(r.get(), i, 6);
            w.dead = col_int(r.get(), i, 7);
            w.holding = col_int(r.get(), i, 8);
            w.live = col_int(r.get(), i, 9) != 0;
            out.push_back(std::move(w));
        }
        return out;
    });
}

Result<bool> PgStore::wait_for_news(std::string_view run_id, std::chrono::milliseconds max_wait) {
    return guarded("wait for the run's workers", [&]() -> Result<bool> {
        PGconn* c = conn();
        if (!m_listening) {
            exec_simple("listen for the run's workers",
                        (std::string("LISTEN ") + k_channel).c_str());
            m_listening = true;
        }
        auto matching = [&] {
            bool found = false;
            while (PGnotify* n = PQnotifies(c)) {
                if (n->extra != nullptr && run_id == n->extra) {
                    found = true;
                }
                PQfreemem(n);
            }
            return found;
        };
        const auto until = std::chrono::steady_clock::now() + max_wait;
        while (true) {
            if (PQconsumeInput(c) == 0) {
                throw_lost("wait for the run's workers", first_line(PQerrorMessage(c)));
            }
            if (matching()) {
                return true;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return false;
            }
            pollfd fd{PQsocket(c), POLLIN, 0};
            if (::poll(&fd, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
                return fail(ExitCode::environment,
                            "archive " + m_display +
                                ": waiting for the run's workers failed: " + std::strerror(errno));
            }
        }
    });
}

Result<std::unique_ptr<Store>> open(const std::string& uri, const OpenOptions& options) {
    if (auto checked = check_uri(uri); !checked) {
        return std::unexpected(checked.error());
    }
    auto store = std::make_unique<PgStore>(uri, options);
    if (auto started = store->start(); !started) {
        return std::unexpected(started.error());
    }
    return store;
}

} // namespace hookctl::archive::postgres
