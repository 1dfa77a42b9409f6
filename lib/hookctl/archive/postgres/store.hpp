#pragma once

// The PostgreSQL backend of archive::Store: an archive in a PostgreSQL 15 database, shared by
// any number of hookctl processes on any hosts. Callers open it through archive::open, which
// picks the backend from the archive argument (a `postgres://` or `postgresql://` URI).

#include <memory>
#include <string>

#include <hookctl/archive/archive.hpp>

namespace hookctl::archive::postgres {

// Opens the archive in the database the libpq URI `uri` names: connects (the password from
// PGPASSWORD, ~/.pgpass or a service file; a URI carrying one is refused with exit 2), creates
// or migrates the schema under an advisory lock when writing, and checks the archive keys as
// the SQLite store does. Fails with exit 4 when the server cannot be reached (naming host,
// port and database, never a password), the database holds another application's tables or a
// newer hookctl schema, or (read_write, read_only) no archive yet.
Result<std::unique_ptr<Store>> open(const std::string& uri, const OpenOptions& options);

} // namespace hookctl::archive::postgres
