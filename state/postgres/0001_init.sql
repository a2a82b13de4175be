-- tg state schema, version 1 (PostgreSQL).
--
-- Applied by `src/state/postgres.rs` inside one transaction guarded by an
-- advisory lock; the version itself is written to `meta` by that code.
-- Sessions lock with advisory locks; `locks` only says who holds them.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sessions (
    name       TEXT PRIMARY KEY,
    lineage    TEXT NOT NULL,
    serial     BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE instances (
    session  TEXT NOT NULL REFERENCES sessions (name) ON DELETE CASCADE,
    address  TEXT NOT NULL,
    platform TEXT NOT NULL,
    status   TEXT NOT NULL,
    -- The whole `InstanceRecord`; `json` (not `jsonb`) keeps key order.
    record   JSON NOT NULL,
    PRIMARY KEY (session, address)
);

CREATE TABLE outputs (
    session   TEXT NOT NULL REFERENCES sessions (name) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    value     JSON NOT NULL,
    sensitive BOOLEAN NOT NULL,
    PRIMARY KEY (session, name)
);

CREATE TABLE locks (
    session    TEXT PRIMARY KEY,
    id         TEXT NOT NULL,
    operation  TEXT NOT NULL,
    "user"     TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    created_at TEXT NOT NULL
);
