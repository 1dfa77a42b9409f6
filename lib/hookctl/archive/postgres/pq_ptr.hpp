#pragma once

// Owning handles of libpq's objects (as mime/gmime_ptr.hpp for GMime's), how hookctl opens a
// connection, and the one way a libpq message or a failed connection is shown.

#include <libpq-fe.h>
#include <memory>
#include <string>

namespace hookctl::archive::postgres {

struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

struct ConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, ConnDeleter>;

// The first line of a libpq message (they end with a newline, details follow on more lines).
inline std::string first_line(const char* message) {
    std::string text = message == nullptr ? "" : message;
    if (auto nl = text.find('\n'); nl != std::string::npos) {
        text.resize(nl);
    }
    return text;
}

// A connection to `uri` (a libpq URI), with a connect timeout of 5 s unless the URI sets one (an
// unreachable host fails in seconds) and hookctl as the application name; server notices are not
// printed. Check PQstatus; null when libpq could not start one (see connect_failure).
inline PgConn connect_to(const std::string& uri) {
    const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
    const char* values[] = {"5", "hookctl", uri.c_str(), nullptr};
    PgConn c(PQconnectdbParams(keys, values, 1));
    if (c && PQstatus(c.get()) == CONNECTION_OK) {
        PQsetNoticeProcessor(
            c.get(), [](void*, const char*) {}, nullptr);
    }
    return c;
}

// `PostgreSQL at host H port P, database D` of a connection (or a failed attempt).
inline std::string server_of(const PGconn* c) {
    const char* host = PQhost(c);
    const char* port = PQport(c);
    const char* db = PQdb(c);
    return std::string("PostgreSQL at host ") + (host && *host ? host : "(default socket)") +
           " port " + (port && *port ? port : "5432") + ", database " +
           (db && *db ? db : "(default)");
}

// `cannot connect to PostgreSQL at host H port P, database D: WHY; check ...` for the failed
// attempt `c` of connect_to (null: libpq could not start one).
inline std::string connect_failure(const PGconn* c) {
    if (c == nullptr) {
        return "cannot connect to PostgreSQL: libpq could not start a connection (out of memory, "
               "or libpq.so.5 could not be loaded)";
    }
    return "cannot connect to " + server_of(c) + ": " + first_line(PQerrorMessage(c)) +
           "; check that the server runs and accepts connections there, and the user's password "
           "source (PGPASSWORD, ~/.pgpass or a service file)";
}

} // namespace hookctl::archive::postgres
