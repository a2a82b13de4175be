-- tg state schema, version 2 (PostgreSQL): pool host leases.
--
-- One row per pool host that is or was leased or quarantined, keyed by
-- `address:port`. A free host has no row (or a row with no session and no
-- quarantine). See `src/state/leases.rs`.
CREATE TABLE leases (
    host        TEXT PRIMARY KEY,      -- `address:port`
    session     TEXT,                  -- the holding session's name
    lineage     TEXT,                  -- the holding session's lineage
    since       TEXT,                  -- RFC 3339 UTC
    quarantined TEXT                   -- the reason, when out of placement
);
