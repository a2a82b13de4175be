-- tg state schema, version 1 (PostgreSQL).
--
-- Applied by `src/state/postgres.rs` inside one transaction that holds a
-- transaction-level advisory lock, together with the `schema_migrations` row
-- that records it. Same tables and columns as `state/sqlite/0001_init.sql`.
-- Session locks are advisory locks; `locks` only says who holds them.

-- One row per applied migration; the schema version is MAX(version).
CREATE TABLE schema_migrations (
    version    BIGINT PRIMARY KEY,
    applied_at TEXT NOT NULL,          -- RFC 3339 UTC
    tg_version TEXT NOT NULL           -- the tg that applied it
);

-- One row per session: its identity and write counter.
CREATE TABLE sessions (
    name       TEXT PRIMARY KEY,
    lineage    TEXT NOT NULL,          -- UUID v4, set once at create
    serial     BIGINT NOT NULL,        -- bumped by every write
    created_at TEXT NOT NULL,          -- RFC 3339 UTC
    updated_at TEXT NOT NULL           -- RFC 3339 UTC, set by every write
);

-- One row per recorded instance. `record` is the whole `InstanceRecord`;
-- `json` (not `jsonb`) keeps its key order. `address`, `platform` and
-- `status` repeat parts of it for queries.
CREATE TABLE instances (
    session  TEXT NOT NULL REFERENCES sessions (name) ON DELETE CASCADE,
    address  TEXT NOT NULL,            -- `node.edge[0]`
    platform TEXT NOT NULL,
    status   TEXT NOT NULL CHECK (status IN ('ready', 'tainted')),
    record   JSON NOT NULL,
    PRIMARY KEY (session, address)
);

-- One row per output value.
CREATE TABLE outputs (
    session   TEXT NOT NULL REFERENCES sessions (name) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    value     JSON NOT NULL,
    sensitive BOOLEAN NOT NULL,
    PRIMARY KEY (session, name)
);

-- Who holds a session's lock. The lock itself is the advisory lock keyed by
-- a hash of the session name; a row whose advisory lock is not held is stale.
-- Not tied to `sessions`: a lock may be taken before the session exists.
CREATE TABLE locks (
    session    TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,   -- UUID, what `tg force-unlock` takes
    operation  TEXT NOT NULL,
    "user"     TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    created_at TEXT NOT NULL           -- RFC 3339 UTC
);
