-- tg state schema, version 1 (SQLite).
--
-- Applied by `src/state/sqlite.rs` inside one `BEGIN IMMEDIATE` transaction,
-- together with the `schema_migrations` row that records it. Keep the SQL
-- portable: the PostgreSQL store creates the same tables and columns.

-- One row per applied migration; the schema version is MAX(version).
CREATE TABLE schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL,          -- RFC 3339 UTC
    tg_version TEXT NOT NULL           -- the tg that applied it
);

-- One row per session: its identity and write counter.
CREATE TABLE sessions (
    name       TEXT PRIMARY KEY,
    lineage    TEXT NOT NULL,          -- UUID v4, set once at create
    serial     INTEGER NOT NULL,       -- bumped by every write
    created_at TEXT NOT NULL,          -- RFC 3339 UTC
    updated_at TEXT NOT NULL           -- RFC 3339 UTC, set by every write
);

-- One row per recorded instance. `record` is the whole `InstanceRecord` as
-- JSON; `address`, `platform` and `status` repeat parts of it for queries.
CREATE TABLE instances (
    session  TEXT NOT NULL REFERENCES sessions (name) ON DELETE CASCADE,
    address  TEXT NOT NULL,            -- `node.edge[0]`
    platform TEXT NOT NULL,
    status   TEXT NOT NULL CHECK (status IN ('ready', 'tainted')),
    record   TEXT NOT NULL,            -- JSON
    PRIMARY KEY (session, address)
);

-- One row per output value.
CREATE TABLE outputs (
    session   TEXT NOT NULL REFERENCES sessions (name) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,           -- JSON
    sensitive INTEGER NOT NULL CHECK (sensitive IN (0, 1)),
    PRIMARY KEY (session, name)
);

-- At most one lock per session. Not tied to `sessions`: a lock may be taken
-- before the session is created, and outlives its deletion until released.
CREATE TABLE locks (
    session    TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,   -- UUID, what `tg force-unlock` takes
    operation  TEXT NOT NULL,
    "user"     TEXT NOT NULL,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    created_at TEXT NOT NULL           -- RFC 3339 UTC
);
