#include <libpq-fe.h>
#include <memory>

#include <hookctl/archive/postgres/location.hpp>
#include <hookctl/archive/postgres/pq_ptr.hpp>
#include <hookctl/archive/postgres/query.hpp>

namespace hookctl::archive::postgres {
namespace {

// Type OIDs whose text form query_rows rewrites.
constexpr Oid k_bytea = 17, k_int8 = 20, k_int2 = 21, k_int4 = 23, k_timestamp = 1114,
              k_timestamptz = 1184;

ColumnKind kind_of(Oid type) {
    switch (type) {
    case k_bytea:
        return ColumnKind::bytes;
    case k_int2:
    case k_int4:
    case k_int8:
        return ColumnKind::integer;
    case k_timestamp:
    case k_timestamptz:
        return ColumnKind::timestamp;
    default:
        return ColumnKind::text;
    }
}

// A value of the current row in the form ColumnKind promises. The session runs with DateStyle
// ISO and TimeZone UTC, so a timestamptz reads `2026-11-30 12:00:00.123+00` and a timestamp
// without zone `2026-11-30 12:00:00.123`; both become RFC 3339 in UTC.
std::string value(const PGresult* r, int col, ColumnKind kind) {
    const char* text = PQgetvalue(r, 0, col);
    auto length = static_cast<std::size_t>(PQgetlength(r, 0, col));
    if (kind == ColumnKind::bytes) {
        std::size_t n = 0;
        unsigned char* bytes = PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &n);
        if (bytes == nullptr) {
            throw std::bad_alloc();
        }
        std::string out(reinterpret_cast<const char*>(bytes), n);
        PQfreemem(bytes);
        return out;
    }
    std::string out(text, length);
    if (kind == ColumnKind::timestamp && out.size() > 10 && out[10] == ' ') {
        out[10] = 'T';
        if (out.ends_with("+00")) {
            out += ":00";
        } else if (PQftype(r, col) == k_timestamp) {
            out += 'Z';
        }
    }
    return out;
}

} // namespace

Result<std::uint64_t>
query_rows(std::string_view uri, std::string_view sql,
           const std::function<Result<void>(const std::vector<QueryColumn>&)>& columns,
           const std::function<Result<bool>(std::int64_t number, QueryRow& row)>& row) {
    const std::string display = display_uri(uri);
    PgConn conn = connect_to(std::string(uri));
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
        return fail(ExitCode::environment, display + ": " + connect_failure(conn.get()));
    }
    auto failed = [&](const PGresult* r, std::string_view what) {
        if (PQstatus(conn.get()) == CONNECTION_BAD) {
            return fail(ExitCode::environment, display + ": " + std::string(what) +
                                                   " failed: lost " + server_of(conn.get()) + " (" +
                                                   first_line(PQerrorMessage(conn.get())) + ")");
        }
        // PostgreSQL's own words without the `ERROR:  ` prefix of the full message.
        const char* primary =
            r != nullptr ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
        return fail(ExitCode::usage,
                    display + ": " + std::string(what) + " failed: " +
                        (primary != nullptr
                             ? std::string(primary)
                             : first_line(r != nullptr ? PQresultErrorMessage(r)
                                                       : PQerrorMessage(conn.get()))));
    };
    // Read only (the operator's SQL reads a table; it never writes through hookctl), times in UTC.
    PgResult setup(PQexec(conn.get(), "SET client_min_messages = warning; SET TimeZone = 'UTC'; "
                                      "SET DateStyle = 'ISO, YMD'; BEGIN READ ONLY"));
    if (!setup || PQresultStatus(setup.get()) != PGRES_COMMAND_OK) {
        return failed(setup.get(), "setting up the session");
    }
    const std::string statement(sql);
    if (PQsendQueryParams(conn.get(), statement.c_str(), 0, nullptr, nullptr, nullptr, nullptr,
                          0) == 0 ||
        PQsetSingleRowMode(conn.get()) == 0) {
        return failed(nullptr, "the query");
    }
    std::vector<QueryColumn> shape;
    QueryRow values_of_row;
    std::int64_t number = 0;
    for (;;) {
        PgResult r(PQgetResult(conn.get()));
        if (!r) {
            break; // the statement is finished
        }
        auto status = PQresultStatus(r.get());
        if (status == PGRES_TUPLES_OK) {
            continue; // the end of the rows (or a result with none)
        }
        if (status == PGRES_COMMAND_OK) {
            return fail(ExitCode::usage, display + ": the query returned no rows to read (it must "
                                                   "be a SELECT, or a statement with RETURNING)");
        }
        if (status != PGRES_SINGLE_TUPLE) {
            return failed(r.get(), "the query");
        }
        if (shape.empty()) {
            int n = PQnfields(r.get());
            for (int c = 0; c < n; ++c) {
                shape.push_back({PQfname(r.get(), c), kind_of(PQftype(r.get(), c))});
            }
            if (auto ok = columns(shape); !ok) {
                return std::unexpected(ok.error()); // closing the connection drops the query
            }
            values_of_row.resize(shape.size());
        }
        for (std::size_t c = 0; c < shape.size(); ++c) {
            const int col = static_cast<int>(c);
            if (PQgetisnull(r.get(), 0, col)) {
                values_of_row[c].reset();
            } else {
                values_of_row[c] = value(r.get(), col, shape[c].kind);
            }
        }
        auto go_on = row(++number, values_of_row);
        HOOKCTL_RETURN_IF_ERROR(go_on);
        if (!*go_on) {
            break;
        }
    }
    if (shape.empty() && number == 0) {
        // No rows: the columns still have to be checked, so a wrong query fails even over an
        // empty table. Describe it (a prepared statement's description costs no execution).
        PgResult prepared(PQprepare(conn.get(), "", statement.c_str(), 0, nullptr));
        if (!prepared || PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
            return failed(prepared.get(), "the query");
        }
        PgResult described(PQdescribePrepared(conn.get(), ""));
        if (!described || PQresultStatus(described.get()) != PGRES_COMMAND_OK) {
            return failed(described.get(), "the query");
        }
        for (int c = 0; c < PQnfields(described.get()); ++c) {
            shape.push_back({PQfname(described.get(), c), kind_of(PQftype(described.get(), c))});
        }
        if (auto ok = columns(shape); !ok) {
            return std::unexpected(ok.error());
        }
    }
    return static_cast<std::uint64_t>(number);
}

} // namespace hookctl::archive::postgres
