#pragma once

// An operator's own SQL over a PostgreSQL database (replay --from postgres://... --query): a
// dead-letter table of another system, read row by row.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hookctl/util/error.hpp>

namespace hookctl::archive::postgres {

// How a column's values come out of query_rows.
enum class ColumnKind {
    text,      // as PostgreSQL writes the value (text, varchar, uuid, json, jsonb, numeric, ...)
    bytes,     // bytea: the bytes themselves
    integer,   // int2, int4, int8: decimal digits
    timestamp, // timestamp, timestamptz: RFC 3339 in UTC (`2026-11-30 12:00:00.123+00:00`)
};

struct QueryColumn {
    std::string name;
    ColumnKind kind = ColumnKind::text;
};

// One row: a value per column, nothing for NULL.
using QueryRow = std::vector<std::optional<std::string>>;

// Runs `sql` (one statement) on the database `uri` names, in a read-only transaction of a
// connection of its own, and streams the result: `columns` once with the result's columns, then
// `row` for each row (1-based number) until it returns false. Memory stays flat whatever the
// size of the result (libpq's single-row mode). Returns how many rows were visited.
//
// Fails (exit 4) when the server cannot be reached, naming host, port and database; (exit 2)
// when PostgreSQL rejects the statement (its message quoted: a syntax error, a missing table, a
// write in the read-only transaction); with the error of `columns` or `row` when they fail.
// Messages name the database by display_uri, never with a password.
Result<std::uint64_t>
query_rows(std::string_view uri, std::string_view sql,
           const std::function<Result<void>(const std::vector<QueryColumn>&)>& columns,
           const std::function<Result<bool>(std::int64_t number, QueryRow& row)>& row);

} // namespace hookctl::archive::postgres
