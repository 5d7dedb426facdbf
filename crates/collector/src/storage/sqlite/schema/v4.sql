-- Ringsource schema, version 4: the CHECK constraints of the tables written on
-- every pool visit, without IN lists.
--
-- SQLite evaluates `x IN ('a', 'b', 'c')` (more than two values) by building a
-- temporary b-tree of the list, once per statement run. The writer runs one
-- single-row statement per pool exhaustion and per lease change, so each row
-- paid for one or two such b-trees, more than for the row itself. The same
-- rules written as comparisons cost nothing measurable. SQLite cannot alter a
-- CHECK constraint, so the two tables are rebuilt; no other table refers to
-- either.

CREATE TABLE pool_events_v4 (
    id                 INTEGER PRIMARY KEY,
    site_id            TEXT NOT NULL REFERENCES sites(id),
    pool_id            TEXT NOT NULL,
    at_ms              INTEGER NOT NULL,
    session_id         TEXT NOT NULL REFERENCES sessions(id),
    policy             TEXT NOT NULL
                       CHECK (policy = 'overflow' OR policy = 'original' OR policy = 'take-over-oldest'),
    -- What the visitor got: the overflow number, the original, or a taken-over number.
    outcome            TEXT NOT NULL
                       CHECK (outcome = 'overflow' OR outcome = 'original' OR outcome = 'taken-over'),
    number             TEXT,
    taken_from_session TEXT
) STRICT;
INSERT INTO pool_events_v4 (id, site_id, pool_id, at_ms, session_id, policy, outcome, number, taken_from_session)
    SELECT id, site_id, pool_id, at_ms, session_id, policy, outcome, number, taken_from_session FROM pool_events;
DROP TABLE pool_events;
ALTER TABLE pool_events_v4 RENAME TO pool_events;
CREATE INDEX pool_events_by_pool ON pool_events(site_id, pool_id, at_ms);

CREATE TABLE leases_v4 (
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
                              OR end_reason = 'taken_over' OR end_reason = 'handed_over'),
    CHECK ((ended_at_ms IS NULL) = (end_reason IS NULL))
) STRICT;
INSERT INTO leases_v4 (id, site_id, pool_id, number, session_id, started_at_ms, expires_at_ms, hold_secs,
                       ended_at_ms, end_reason)
    SELECT id, site_id, pool_id, number, session_id, started_at_ms, expires_at_ms, hold_secs, ended_at_ms, end_reason
    FROM leases;
DROP TABLE leases;
ALTER TABLE leases_v4 RENAME TO leases;
-- The invariant "a number is never leased to two live sessions", enforced by
-- the database itself: at most one open lease per number.
CREATE UNIQUE INDEX leases_one_open_per_number ON leases(number) WHERE ended_at_ms IS NULL;
CREATE INDEX leases_open_by_session ON leases(session_id) WHERE ended_at_ms IS NULL;
CREATE INDEX leases_by_number_time ON leases(number, started_at_ms);
