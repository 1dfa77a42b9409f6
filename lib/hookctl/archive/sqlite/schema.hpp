#pragma once

// The archive's schema as forward migrations (documented in hookctl-events(1), SCHEMA).
// Internal to the SQLite store; tests use it to build files at an older version.

#include <span>
#include <string_view>

namespace hookctl::archive::sqlite::schema {

// migrations()[i] takes a file from version i to version i + 1 (SQL statements separated by
// semicolons, run in one transaction together with `PRAGMA user_version = i + 1`).
std::span<const std::string_view> migrations();

} // namespace hookctl::archive::sqlite::schema
