#pragma once

// The PostgreSQL archive's schema as forward migrations (documented in hookctl-events(1),
// POSTGRESQL). Internal to the PostgreSQL store.

#include <span>
#include <string_view>

namespace hookctl::archive::postgres::schema {

// One step: the SQL that takes a database from version `from` to version `to` (statements
// separated by semicolons, run in one transaction with the schema_version row).
// The schema version of a PostgreSQL archive: archive::k_schema_version's model (5), and
//   6: what runs shared by workers need (replay --join): run_items.lease_token and
//      lease_until_ms, the run_workers table (each worker, its heartbeat and counts) and the
//      run_pacing table (the run's schedule of send slots, on the server's clock).
inline constexpr int k_version = 6;

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
