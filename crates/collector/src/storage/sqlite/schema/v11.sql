-- Ringsource schema, version 11: one spelling for every stored enum value.
--
-- A lease's `end_reason` was written with underscores (`taken_over`,
-- `handed_over`) while every other stored value, and the API, uses hyphens
-- (`taken-over` in `pool_exhaustions.outcome`, `take-over-oldest`,
-- `no-answer`, `first-time`). The rows are rewritten and the CHECK constraint
-- with them; SQLite cannot alter a CHECK constraint, so the table is rebuilt
-- (no other table refers to it), with its indexes.

CREATE TABLE leases_v11 (
    id            INTEGER PRIMARY KEY,
    site_id       TEXT NOT NULL REFERENCES sites(id),
    pool_id       TEXT NOT NULL,
    number        TEXT NOT NULL REFERENCES numbers(number),
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    started_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    hold_secs     INTEGER NOT NULL,
    ended_at_ms   INTEGER,
    end_reason    TEXT CHECK (end_reason = 'expired' OR end_reason = 'released'
                              OR end_reason = 'taken-over' OR end_reason = 'handed-over'),
    CHECK ((ended_at_ms IS NULL) = (end_reason IS NULL))
) STRICT;
INSERT INTO leases_v11 (id, site_id, pool_id, number, session_id, started_at_ms, expires_at_ms, hold_secs,
                        ended_at_ms, end_reason)
    SELECT id, site_id, pool_id, number, session_id, started_at_ms, expires_at_ms, hold_secs, ended_at_ms,
           replace(end_reason, '_', '-')
    FROM leases;
DROP TABLE leases;
ALTER TABLE leases_v11 RENAME TO leases;
-- The invariant "a number is never leased to two live sessions", enforced by
-- the database itself: at most one open lease per number.
CREATE UNIQUE INDEX leases_one_open_per_number ON leases(number) WHERE ended_at_ms IS NULL;
CREATE INDEX leases_open_by_session ON leases(session_id) WHERE ended_at_ms IS NULL;
CREATE INDEX leases_by_number_time ON leases(number, started_at_ms);
