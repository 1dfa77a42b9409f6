// libpq, loaded when a command first uses a PostgreSQL archive.
//
// libpq.so.5 brings two dozen shared libraries (gnutls, krb5, ldap, sasl, ...) that the dynamic
// loader would otherwise map and relocate at the start of every command, although only the
// commands given a postgres:// archive ever call libpq (issue 16: `hookctl verify` should start
// about as fast as `openssl dgst`). As http/curl_loader.cpp does for libcurl, this file defines
// the libpq functions hookctl calls; the first call of each dlopen()s libpq.so.5 (once per
// process) and binds the real one, so the executable has no DT_NEEDED on libpq.
//
// A libpq function used elsewhere in hookctl but missing here still links, straight to libpq.so:
// the program works and only its start-up is slower again (tests/cli/test_sign_verify.py checks
// the executable's needed libraries).
//
// The functions are hidden (this file is compiled with -fvisibility=hidden): the executable never
// exports them, so nothing loaded later can bind to these forwarders instead of libpq's own.
#include <cstdio>
#include <dlfcn.h>
#include <libpq-fe.h>
#include <string>

namespace {

constexpr const char* k_soname = "libpq.so.5"; // libpq's ABI since PostgreSQL 8.2

// The library's handle, or null when it cannot be loaded (said once on stderr).
void* library() {
    static void* const handle = [] {
        void* h = ::dlopen(k_soname, RTLD_NOW | RTLD_LOCAL);
        if (h == nullptr) {
            const char* why = ::dlerror();
            std::fprintf(stderr, "hookctl: cannot load %s (%s); install Debian's libpq5 package\n",
                         k_soname, why != nullptr ? why : "unknown error");
        }
        return h;
    }();
    return handle;
}

void* resolve(const char* name) {
    void* handle = library();
    return handle != nullptr ? ::dlsym(handle, name) : nullptr;
}

} // namespace

// The body of a forwarder: the real function, bound once, called with the arguments; `fallback`
// when libpq cannot be loaded.
#define HOOKCTL_PQ_CALL(name, fallback, ...)                                                       \
    static const auto real = reinterpret_cast<decltype(&::name)>(resolve(#name));                  \
    return real != nullptr ? real(__VA_ARGS__) : fallback
#define HOOKCTL_PQ_CALL_VOID(name, ...)                                                            \
    static const auto real = reinterpret_cast<decltype(&::name)>(resolve(#name));                  \
    if (real != nullptr) {                                                                         \
        real(__VA_ARGS__);                                                                         \
    }

extern "C" {

PGconn* PQconnectdbParams(const char* const* keywords, const char* const* values,
                          int expand_dbname) {
    HOOKCTL_PQ_CALL(PQconnectdbParams, nullptr, keywords, values, expand_dbname);
}

void PQfinish(PGconn* conn) {
    HOOKCTL_PQ_CALL_VOID(PQfinish, conn);
}

ConnStatusType PQstatus(const PGconn* conn) {
    HOOKCTL_PQ_CALL(PQstatus, CONNECTION_BAD, conn);
}

char* PQerrorMessage(const PGconn* conn) {
    static char unavailable[] = "libpq (libpq.so.5) could not be loaded\n";
    HOOKCTL_PQ_CALL(PQerrorMessage, unavailable, conn);
}

char* PQdb(const PGconn* conn) {
    HOOKCTL_PQ_CALL(PQdb, nullptr, conn);
}

char* PQhost(const PGconn* conn) {
    HOOKCTL_PQ_CALL(PQhost, nullptr, conn);
}

char* PQport(const PGconn* conn) {
    HOOKCTL_PQ_CALL(PQport, nullptr, conn);
}

PQnoticeProcessor PQsetNoticeProcessor(PGconn* conn, PQnoticeProcessor proc, void* arg) {
    HOOKCTL_PQ_CALL(PQsetNoticeProcessor, nullptr, conn, proc, arg);
}

PGresult* PQexec(PGconn* conn, const char* query) {
    HOOKCTL_PQ_CALL(PQexec, nullptr, conn, query);
}

PGresult* PQprepare(PGconn* conn, const char* name, const char* query, int n_params,
                    const Oid* types) {
    HOOKCTL_PQ_CALL(PQprepare, nullptr, conn, name, query, n_params, types);
}

PGresult* PQexecPrepared(PGconn* conn, const char* name, int n_params, const char* const* values,
                         const int* lengths, const int* formats, int result_format) {
    HOOKCTL_PQ_CALL(PQexecPrepared, nullptr, conn, name, n_params, values, lengths, formats,
                    result_format);
}

PGresult* PQdescribePrepared(PGconn* conn, const char* name) {
    HOOKCTL_PQ_CALL(PQdescribePrepared, nullptr, conn, name);
}

int PQsendQueryParams(PGconn* conn, const char* command, int n_params, const Oid* types,
                      const char* const* values, const int* lengths, const int* formats,
                      int result_format) {
    HOOKCTL_PQ_CALL(PQsendQueryParams, 0, conn, command, n_params, types, values, lengths, formats,
                    result_format);
}

int PQsetSingleRowMode(PGconn* conn) {
    HOOKCTL_PQ_CALL(PQsetSingleRowMode, 0, conn);
}

PGresult* PQgetResult(PGconn* conn) {
    HOOKCTL_PQ_CALL(PQgetResult, nullptr, conn);
}

void PQclear(PGresult* result) {
    HOOKCTL_PQ_CALL_VOID(PQclear, result);
}

ExecStatusType PQresultStatus(const PGresult* result) {
    HOOKCTL_PQ_CALL(PQresultStatus, PGRES_FATAL_ERROR, result);
}

char* PQresultErrorMessage(const PGresult* result) {
    static char unavailable[] = "";
    HOOKCTL_PQ_CALL(PQresultErrorMessage, unavailable, result);
}

char* PQresultErrorField(const PGresult* result, int field) {
    HOOKCTL_PQ_CALL(PQresultErrorField, nullptr, result, field);
}

char* PQcmdTuples(PGresult* result) {
    static char unavailable[] = "";
    HOOKCTL_PQ_CALL(PQcmdTuples, unavailable, result);
}

int PQntuples(const PGresult* result) {
    HOOKCTL_PQ_CALL(PQntuples, 0, result);
}

int PQnfields(const PGresult* result) {
    HOOKCTL_PQ_CALL(PQnfields, 0, result);
}

char* PQfname(const PGresult* result, int field) {
    HOOKCTL_PQ_CALL(PQfname, nullptr, result, field);
}

Oid PQftype(const PGresult* result, int field) {
    HOOKCTL_PQ_CALL(PQftype, 0, result, field);
}

int PQgetisnull(const PGresult* result, int row, int field) {
    HOOKCTL_PQ_CALL(PQgetisnull, 1, result, row, field);
}

int PQgetlength(const PGresult* result, int row, int field) {
    HOOKCTL_PQ_CALL(PQgetlength, 0, result, row, field);
}

char* PQgetvalue(const PGresult* result, int row, int field) {
    HOOKCTL_PQ_CALL(PQgetvalue, nullptr, result, row, field);
}

unsigned char* PQunescapeBytea(const unsigned char* text, size_t* length) {
    HOOKCTL_PQ_CALL(PQunescapeBytea, nullptr, text, length);
}

void PQfreemem(void* memory) {
    HOOKCTL_PQ_CALL_VOID(PQfreemem, memory);
}

int PQsocket(const PGconn* conn) {
    HOOKCTL_PQ_CALL(PQsocket, -1, conn);
}

int PQconsumeInput(PGconn* conn) {
    HOOKCTL_PQ_CALL(PQconsumeInput, 0, conn);
}

PGnotify* PQnotifies(PGconn* conn) {
    HOOKCTL_PQ_CALL(PQnotifies, nullptr, conn);
}

} // extern "C"
