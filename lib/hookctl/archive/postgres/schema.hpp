#pragma once

// The PostgreSQL archive's schema as forward migrations (documented in hookctl-events(1),
// POSTGRESQL). Internal to the PostgreSQL store.

#include <span>
#include <string_view>

namespace hookctl::archive::postgres::schema {

// One step: the SQL that takes a database from version `from` to version `to` (statements
// separated by semicolons, run in one transaction with the schema_version row).
struct Migration {
    int from = 0;
    int to = 0;
    std::string_view sql;
};

// The steps, oldest first. The first creates the whole model at archive::k_schema_version (the
// same events, bodies, attempts, runs, run items, request log, metadata and re-parses as the
// SQLite archive at that version), so one version number names one model on both backends.
std::span<const Migration> migrations();

} // namespace hookctl::archive::postgres::schema
