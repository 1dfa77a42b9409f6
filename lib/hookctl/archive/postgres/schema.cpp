#include <array>

#include <hookctl/archive/postgres/schema.hpp>

namespace hookctl::archive::postgres::schema {
namespace {

// Version 5 (archive::k_schema_version), the SQLite model of that version in PostgreSQL types:
// bytea for bodies (raw bytes, sealed when the archive is encrypted), bigint milliseconds,
// text for the rest. Bodies and re-parses go with their event (ON DELETE CASCADE, the SQLite
// triggers' job). events.seq is an identity column: insertion order, the resume cursor.
constexpr std::string_view k_v5 = R"sql(
CREATE TABLE events (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text   NOT NULL UNIQUE,
    received_at_ms  bigint NOT NULL,
    org_id          text   NOT NULL DEFAULT '',
    scheme          text   NOT NULL DEFAULT '',
    headers         text   NOT NULL DEFAULT '[]',
    status          text   NOT NULL DEFAULT 'received'
                    CHECK (status IN ('received', 'delivered', 'failed', 'dead')),
    attempts        bigint NOT NULL DEFAULT 0,
    last_error      text   NOT NULL DEFAULT '',
    updated_at_ms   bigint NOT NULL,
    trace_id        text   NOT NULL DEFAULT '',
    source          text   NOT NULL DEFAULT '',
    verified_by     text   NOT NULL DEFAULT '',
    client_identity text   NOT NULL DEFAULT ''
);
CREATE INDEX events_received_at ON events (received_at_ms);
CREATE INDEX events_status ON events (status, received_at_ms);
CREATE INDEX events_org ON events (org_id, received_at_ms);
CREATE TABLE event_bodies (
    seq      bigint PRIMARY KEY REFERENCES events (seq) ON DELETE CASCADE,
    body     bytea  NOT NULL,
    raw_mime bytea
);
CREATE TABLE attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text   NOT NULL DEFAULT '',
    event_id    text   NOT NULL,
    target      text   NOT NULL DEFAULT '',
    attempt     bigint NOT NULL,
    at_ms       bigint NOT NULL,
    http_status integer NOT NULL DEFAULT 0,
    latency_ms  double precision NOT NULL DEFAULT 0,
    outcome     text   NOT NULL,
    reason      text   NOT NULL DEFAULT '',
    detail      text   NOT NULL DEFAULT ''
);
CREATE INDEX attempts_event ON attempts (event_id, at_ms);
CREATE INDEX attempts_run ON attempts (run_id, event_id);
CREATE TABLE runs (
    run_id          text   PRIMARY KEY,
    kind            text   NOT NULL,
    source          text   NOT NULL DEFAULT '',
    target          text   NOT NULL DEFAULT '',
    options         text   NOT NULL DEFAULT '{}',
    state           text   NOT NULL DEFAULT 'running'
                    CHECK (state IN ('running', 'paused', 'completed', 'aborted', 'failed')),
    total           bigint NOT NULL DEFAULT 0,
    done            bigint NOT NULL DEFAULT 0,
    delivered       bigint NOT NULL DEFAULT 0,
    failed          bigint NOT NULL DEFAULT 0,
    cursor          bigint NOT NULL DEFAULT 0,
    created_at_ms   bigint NOT NULL,
    updated_at_ms   bigint NOT NULL,
    last_error      text   NOT NULL DEFAULT '',
    started_by      text   NOT NULL DEFAULT '',
    paused_until_ms bigint NOT NULL DEFAULT 0,
    created_order   bigint GENERATED ALWAYS AS IDENTITY
);
CREATE TABLE run_items (
    run_id   text   NOT NULL,
    item     bigint NOT NULL,
    event_id text   NOT NULL,
    seq      bigint NOT NULL DEFAULT 0,
    state    text   NOT NULL DEFAULT 'pending'
             CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, item)
);
CREATE INDEX run_items_event ON run_items (run_id, event_id);
CREATE INDEX run_items_state ON run_items (run_id, state, item);
CREATE TABLE requests (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms       bigint NOT NULL,
    event_id    text   NOT NULL DEFAULT '',
    http_status integer NOT NULL,
    reason      text   NOT NULL,
    injected    boolean NOT NULL DEFAULT false,
    latency_ms  double precision NOT NULL DEFAULT 0,
    trace_id    text   NOT NULL DEFAULT ''
);
CREATE TABLE archive_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE event_reparses (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq           bigint NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    version       bigint NOT NULL,
    parser        text   NOT NULL DEFAULT '',
    created_at_ms bigint NOT NULL,
    divergent     text   NOT NULL DEFAULT '[]',
    body          bytea  NOT NULL,
    UNIQUE (seq, version)
);
)sql";

// Version 6: runs shared by workers. A pending item is claimed by setting its lease (the
// worker's token and when the lease ends, in server milliseconds); a worker row per process; one
// pacing row per run whose next_ns is the next free send slot (Unix nanoseconds).
constexpr std::string_view k_v6 = R"sql(
ALTER TABLE run_items ADD COLUMN lease_token text, ADD COLUMN lease_until_ms bigint;
CREATE INDEX run_items_lease ON run_items (run_id, lease_token) WHERE state = 'pending';
CREATE TABLE run_workers (
    run_id        text   NOT NULL,
    token         text   NOT NULL,
    worker        text   NOT NULL DEFAULT '',
    state         text   NOT NULL DEFAULT 'running',
    started_at_ms bigint NOT NULL,
    seen_at_ms    bigint NOT NULL,
    lease_ms      bigint NOT NULL,
    claimed       bigint NOT NULL DEFAULT 0,
    delivered     bigint NOT NULL DEFAULT 0,
    dead          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, token)
);
CREATE TABLE run_pacing (
    run_id  text   PRIMARY KEY,
    next_ns bigint NOT NULL
);
)sql";

constexpr std::array<Migration, 2> k_migrations{Migration{0, 5, k_v5}, Migration{5, 6, k_v6}};

} // namespace

std::span<const Migration> migrations() {
    return k_migrations;
}

} // namespace hookctl::archive::postgres::schema
