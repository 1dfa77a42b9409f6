// Archive write and read throughput: hookctl::archive::Store (SQLite) against the raw SQLite C API
// doing the same work (same rows, same batches, WAL, same synchronous level), side by side.
// Usage: bench_archive DIR [EVENTS] [BATCH]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sqlite3.h>
#include <string>
#include <vector>

#include <hookctl/archive/archive.hpp>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string body_of(int i) {
    std::string body =
        R"({"type":"email.received","event_id":"evt_)" + std::to_string(i) + R"(","text":")";
    body.append(2048 - body.size() - 2, 'x');
    body += "\"}";
    return body;
}

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
        std::exit(1);
    }
}

// The reference: tables with the same columns and indexes (events, and event_bodies for the
// bytes), one prepared INSERT into each, BEGIN IMMEDIATE/COMMIT per batch.
double raw_insert(const std::string& path, int events, int batch) {
    sqlite3* db = nullptr;
    check(sqlite3_open(path.c_str(), &db), db, "open");
    check(sqlite3_exec(db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                       "CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL "
                       "UNIQUE, received_at_ms INTEGER NOT NULL, org_id TEXT NOT NULL, scheme "
                       "TEXT NOT NULL, headers TEXT NOT NULL, status TEXT NOT NULL, attempts "
                       "INTEGER NOT NULL, last_error TEXT NOT NULL, updated_at_ms INTEGER NOT "
                       "NULL, trace_id TEXT NOT NULL, source TEXT NOT NULL);"
                       "CREATE TABLE event_bodies (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, "
                       "raw_mime BLOB);"
                       "CREATE INDEX r ON events (received_at_ms);"
                       "CREATE INDEX s ON events (status, received_at_ms);",
                       nullptr, nullptr, nullptr),
          db, "schema");
    sqlite3_stmt* stmt = nullptr;
    check(sqlite3_prepare_v2(db,
                             "INSERT INTO events (event_id, received_at_ms, org_id, scheme, "
                             "headers, status, attempts, last_error, updated_at_ms, trace_id, "
                             "source) VALUES (?1, ?2, 'org_1', 'mailparse', ?3, 'received', 0, "
                             "'', ?5, '', 'bench') ON CONFLICT (event_id) DO NOTHING",
                             -1, &stmt, nullptr),
          db, "prepare");
    sqlite3_stmt* body_stmt = nullptr;
    check(sqlite3_prepare_v2(db,
                             "INSERT INTO event_bodies (seq, body, raw_mime) VALUES (?1, ?2, NULL)",
                             -1, &body_stmt, nullptr),
          db, "prepare");
    const std::string headers = R"([["Content-Type","application/json"],["X-Signature","ab"]])";
    auto start = Clock::now();
    for (int i = 0; i < events;) {
        check(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), db, "begin");
        for (int k = 0; k < batch && i < events; ++k, ++i) {
            std::string id = "evt_" + std::to_string(i);
            std::string body = body_of(i);
            sqlite3_bind_text(stmt, 1, id.c_str(), static_cast<int>(id.size()), SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 2, 1764180000000 + i);
            sqlite3_bind_text(stmt, 3, headers.c_str(), static_cast<int>(headers.size()),
                              SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 5, 1764180000000 + i);
            check(sqlite3_step(stmt), db, "insert");
            sqlite3_reset(stmt);
            if (sqlite3_changes(db) == 1) {
                sqlite3_bind_int64(body_stmt, 1, sqlite3_last_insert_rowid(db));
                sqlite3_bind_blob(body_stmt, 2, body.data(), static_cast<int>(body.size()),
                                  SQLITE_STATIC);
                check(sqlite3_step(body_stmt), db, "insert body");
                sqlite3_reset(body_stmt);
            }
        }
        check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
    }
    double elapsed = seconds_since(start);
    sqlite3_finalize(stmt);
    sqlite3_finalize(body_stmt);
    sqlite3_close(db);
    return elapsed;
}

double raw_read(const std::string& path, long long& bytes) {
    sqlite3* db = nullptr;
    check(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), db, "open");
    sqlite3_stmt* stmt = nullptr;
    check(sqlite3_prepare_v2(db,
                             "SELECT seq, event_id, received_at_ms, org_id, scheme, headers, "
                             "body, raw_mime, status, attempts, last_error, updated_at_ms, "
                             "trace_id, source FROM events LEFT JOIN event_bodies USING (seq) "
                             "ORDER BY seq",
                             -1, &stmt, nullptr),
          db, "prepare");
    auto start = Clock::now();
    bytes = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        bytes += sqlite3_column_bytes(stmt, 6);
    }
    double elapsed = seconds_since(start);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return elapsed;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_archive DIR [EVENTS] [BATCH]\n");
        return 2;
    }
    std::filesystem::path dir = argv[1];
    int events = argc > 2 ? std::atoi(argv[2]) : 50000;
    int batch = argc > 3 ? std::atoi(argv[3]) : 500;
    auto hook_path = (dir / "bench-hookctl.db").string();
    auto raw_path = (dir / "bench-raw.db").string();
    for (const auto& p : {hook_path, raw_path}) {
        for (const char* suffix : {"", "-wal", "-shm"}) {
            std::filesystem::remove(p + suffix);
        }
    }

    double raw_seconds = raw_insert(raw_path, events, batch);

    auto archive = hookctl::archive::open(hook_path);
    if (!archive) {
        std::fprintf(stderr, "%s\n", archive.error().message.c_str());
        return 4;
    }
    std::vector<hookctl::archive::NewEvent> pending;
    auto start = Clock::now();
    for (int i = 0; i < events;) {
        pending.clear();
        for (int k = 0; k < batch && i < events; ++k, ++i) {
            hookctl::archive::NewEvent e;
            e.event_id = "evt_" + std::to_string(i);
            e.received_at_ms = 1764180000000 + i;
            e.org_id = "org_1";
            e.scheme = "mailparse";
            e.headers.add("Content-Type", "application/json");
            e.headers.add("X-Signature", "ab");
            e.body = body_of(i);
            e.source = "bench";
            pending.push_back(std::move(e));
        }
        auto r = (*archive)->insert_events(pending);
        if (!r) {
            std::fprintf(stderr, "%s\n", r.error().message.c_str());
            return 4;
        }
    }
    double hook_seconds = seconds_since(start);

    long long raw_bytes = 0;
    double raw_read_seconds = raw_read(raw_path, raw_bytes);
    long long hook_bytes = 0;
    start = Clock::now();
    auto visited = (*archive)->for_each_event({}, [&](const hookctl::archive::Event& e) {
        hook_bytes += static_cast<long long>(e.body.size());
        return true;
    });
    double hook_read_seconds = seconds_since(start);
    if (!visited || hook_bytes != raw_bytes) {
        std::fprintf(stderr, "read mismatch\n");
        return 1;
    }

    std::printf("archive insert, %d events of 2 KiB, batches of %d, WAL, synchronous=FULL\n",
                events, batch);
    std::printf("  raw SQLite C API      %9.0f events/s\n", events / raw_seconds);
    std::printf("  hookctl::archive      %9.0f events/s   ratio %.2f\n", events / hook_seconds,
                raw_seconds / hook_seconds);
    std::printf("archive streamed read (all columns)\n");
    std::printf("  raw SQLite C API      %9.0f events/s\n", events / raw_read_seconds);
    std::printf("  hookctl::archive      %9.0f events/s   ratio %.2f\n", events / hook_read_seconds,
                raw_read_seconds / hook_read_seconds);
    return 0;
}
