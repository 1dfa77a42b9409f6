#pragma once

// Owning handles of libpq's objects (as mime/gmime_ptr.hpp for GMime's), and the one way a libpq
// message is shown.

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

} // namespace hookctl::archive::postgres
