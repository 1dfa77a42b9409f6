#include <array>

#include <hookctl/archive/sqlite/schema.hpp>

namespace hookctl::archive::sqlite::schema {
namespace {

// Version 1: events, delivery attempts, runs.
constexpr std::string_view k_v1 = R"sql(
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,
    event_id       TEXT    NOT NULL UNIQUE,
    received_at_ms INTEGER NOT NULL,
    org_id         TEXT    NOT NULL DEFAULT '',
    scheme         TEXT    NOT NULL DEFAULT '',
    headers        TEXT    NOT NULL DEFAULT '[]',
    body           BLOB    NOT NULL,
    raw_mime       BLOB,
    status         TEXT    NOT NULL DEFAULT 'received'
                   CHECK (status IN ('received', 'delivered', 'failed', 'dead')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT    NOT NULL DEFAULT '',
    updated_at_ms  INTEGER NOT NULL
);
CREATE INDEX events_received_at ON events (received_at_ms);
CREATE INDEX events_status ON events (status, received_at_ms);
CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT    NOT NULL DEFAULT '',
    event_id    TEXT    NOT NULL,
    target      TEXT    NOT NULL DEFAULT '',
    attempt     INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    http_status INTEGER NOT NULL DEFAULT 0,
    latency_ms  REAL    NOT NULL DEFAULT 0,
    outcome     TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX attempts_event ON attempts (event_id, at_ms);
CREATE TABLE runs (
    run_id        TEXT    PRIMARY KEY,
    kind          TEXT    NOT NULL,
    source        TEXT    NOT NULL DEFAULT '',
    target        TEXT    NOT NULL DEFAULT '',
    options       TEXT    NOT NULL DEFAULT '{}',
    state         TEXT    NOT NULL DEFAULT 'running'
                  CHECK (state IN ('running', 'paused', 'completed', 'aborted', 'failed')),
    total         INTEGER NOT NULL DEFAULT 0,
    done          INTEGER NOT NULL DEFAULT 0,
    delivered     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    cursor        INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    last_error    TEXT    NOT NULL DEFAULT ''
);
)sql";

// Version 2: trace id and provenance of events, the receiver's request log (injected faults
// are logged there, never stored as events), attempts by run (replay resume and stats).
constexpr std::string_view k_v2 = R"sql(
ALTER TABLE events ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE TABLE requests (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    event_id    TEXT    NOT NULL DEFAULT '',
    http_status INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    injected    INTEGER NOT NULL DEFAULT 0,
    latency_ms  REAL    NOT NULL DEFAULT 0,
    trace_id    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX attempts_run ON attempts (run_id, event_id);
)sql";

// Version 3: bodies and raw MIME in a table of their own. Recording a delivery (status,
// attempt count) then rewrites an events row of about a hundred bytes instead of one that
// carries a payload of kilobytes, and scans of events (list, stats) read no payloads.
constexpr std::string_view k_v3 = R"sql(
CREATE TABLE event_bodies (
    seq      INTEGER PRIMARY KEY,
    body     BLOB    NOT NULL,
    raw_mime BLOB
);
INSERT INTO event_bodies (seq, body, raw_mime) SELECT seq, body, raw_mime FROM events;
ALTER TABLE events DROP COLUMN body;
ALTER TABLE events DROP COLUMN raw_mime;
CREATE TRIGGER events_delete_body AFTER DELETE ON events BEGIN
    DELETE FROM event_bodies WHERE seq = old.seq;
END;
)sql";

// Version 4: who verified an event (the key's fingerprint, the TLS client's identity), why an
// attempt failed (the response excerpt or transport error), who started a run, and a run's
// selection as run items: the ledger of what it must deliver (selected = delivered + dead +
// pending at every exit), so a resume finishes exactly that selection.
constexpr std::string_view k_v4 = R"sql(
ALTER TABLE events ADD COLUMN verified_by TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN client_identity TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN detail TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN started_by TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN paused_until_ms INTEGER NOT NULL DEFAULT 0;
CREATE TABLE run_items (
    run_id   TEXT    NOT NULL,
    item     INTEGER NOT NULL,
    event_id TEXT    NOT NULL,
    seq      INTEGER NOT NULL DEFAULT 0,
    state    TEXT    NOT NULL DEFAULT 'pending'
             CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, item)
) WITHOUT ROWID;
CREATE INDEX run_items_event ON run_items (run_id, event_id);
CREATE INDEX events_org ON events (org_id, received_at_ms);
)sql";

// Version 5: what the archive records about itself (archive_meta: encryption at rest, the
// keys its bodies are under, an unfinished rekey), and new parses of an event's raw MIME kept
// beside the body it was stored with (`events reparse --write` never replaces a body).
constexpr std::string_view k_v5 = R"sql(
CREATE TABLE archive_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE event_reparses (
    id            INTEGER PRIMARY KEY,
    seq           INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    parser        TEXT    NOT NULL DEFAULT '',
    created_at_ms INTEGER NOT NULL,
    divergent     TEXT    NOT NULL DEFAULT '[]',
    body          BLOB    NOT NULL,
    UNIQUE (seq, version)
);
CREATE TRIGGER events_delete_reparses AFTER DELETE ON events BEGIN
    DELETE FROM event_reparses WHERE seq = old.seq;
END;
)sql";

constexpr std::array<std::string_view, 5> k_migrations{k_v1, k_v2, k_v3, k_v4, k_v5};

} // namespace

std::span<const std::string_view> migrations() {
    return k_migrations;
}

} // namespace hookctl::archive::sqlite::schema
