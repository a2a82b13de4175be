-- tg state schema, version 3 (PostgreSQL): files kept with a session.
--
-- An API session's model (`session.json`) and the files uploaded to it
-- (`files/NAME`), so every `tg serve` on this store can serve the session.
-- `revision` starts at 1 and every write adds one: a writer may require
-- the revision it read (see `src/state/files.rs`). A row may exist before
-- its session has instances, so there is no foreign key to `sessions`.
CREATE TABLE session_files (
    session    TEXT NOT NULL,         -- the session's name (`alice/hello`)
    name       TEXT NOT NULL,         -- `session.json`, `files/hello.deb`
    content    BYTEA NOT NULL,
    size       BIGINT NOT NULL,       -- bytes
    sha256     TEXT NOT NULL,         -- hex
    revision   BIGINT NOT NULL,
    updated_at TEXT NOT NULL,         -- RFC 3339 UTC
    PRIMARY KEY (session, name)
);
