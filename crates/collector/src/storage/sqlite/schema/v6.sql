-- Ringsource schema, version 6: sessions keyed by their id alone.
--
-- A table with a TEXT primary key keeps its rows in a rowid b-tree and the
-- key in a second one, so every new session was two b-tree inserts, and every
-- look-up by id two searches. Every visit writes a session and looks it up
-- for each row that refers to it, so the table now has no rowid. SQLite
-- cannot drop a rowid in place: the table is rebuilt, with foreign keys off
-- around the migration and checked after it (see sqlite.rs).

CREATE TABLE sessions_v6 (
    id            TEXT PRIMARY KEY,
    site_id       TEXT NOT NULL REFERENCES sites(id),
    client_id     TEXT,
    ym_uid        TEXT,
    user_agent    TEXT NOT NULL,
    is_bot        INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO sessions_v6 (id, site_id, client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms)
    SELECT id, site_id, client_id, ym_uid, user_agent, is_bot, created_at_ms, last_seen_ms FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v6 RENAME TO sessions;
CREATE INDEX sessions_by_client ON sessions(site_id, client_id) WHERE client_id IS NOT NULL;
