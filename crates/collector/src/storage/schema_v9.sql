-- Ringsource schema, version 9: pool refusals and first asks counted per
-- minute instead of one row per visit.
--
-- While a pool was exhausted every visitor it served wrote a pool event: a
-- flood of 30 seconds wrote 1.3 million rows, and the pools report read all
-- of them (to find when each session first asked a pool). Now one row per
-- pool, minute and kind of refusal carries a count, and the first asks are
-- counted when they happen: `sessions.asked_pools` lists the pools a session
-- has asked for a number (space-separated ids), so a later ask is not a
-- first one. Which session each refusal was, and whose lease was taken
-- over, is no longer kept (`leases` still records the takeover itself).

-- A visit that asked a pool for a number and did not get a free one.
CREATE TABLE pool_exhaustions (
    site_id     TEXT NOT NULL REFERENCES sites(id),
    pool_id     TEXT NOT NULL,
    -- The minute (Unix ms, a multiple of 60000) the refusals fell in.
    minute_ms   INTEGER NOT NULL,
    -- `exhausted`: no number was free. `over-share`: numbers were free, but
    -- the visitor's network was flooding the pool and held its share.
    reason      TEXT NOT NULL CHECK (reason = 'exhausted' OR reason = 'over-share'),
    policy      TEXT NOT NULL
                CHECK (policy = 'overflow' OR policy = 'original' OR policy = 'take-over-oldest'),
    -- What the visitor got: the overflow number, the original, or a taken-over number.
    outcome     TEXT NOT NULL CHECK (outcome = 'overflow' OR outcome = 'original' OR outcome = 'taken-over'),
    -- The number shown ('' for the original).
    number      TEXT NOT NULL,
    events      INTEGER NOT NULL,
    first_at_ms INTEGER NOT NULL,
    last_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (site_id, pool_id, minute_ms, reason, policy, outcome, number)
) STRICT, WITHOUT ROWID;

INSERT INTO pool_exhaustions (site_id, pool_id, minute_ms, reason, policy, outcome, number, events, first_at_ms,
                              last_at_ms)
    SELECT site_id, pool_id, at_ms / 60000 * 60000, 'exhausted', policy, outcome, COALESCE(number, ''), COUNT(*),
           MIN(at_ms), MAX(at_ms)
    FROM pool_events
    GROUP BY site_id, pool_id, at_ms / 60000, policy, outcome, COALESCE(number, '');

-- Sessions that asked a pool for a number for the first time (their first
-- lease or refusal there), per minute.
CREATE TABLE pool_first_asks (
    site_id   TEXT NOT NULL REFERENCES sites(id),
    pool_id   TEXT NOT NULL,
    minute_ms INTEGER NOT NULL,
    sessions  INTEGER NOT NULL,
    PRIMARY KEY (site_id, pool_id, minute_ms)
) STRICT, WITHOUT ROWID;

INSERT INTO pool_first_asks (site_id, pool_id, minute_ms, sessions)
    SELECT site_id, pool_id, first_ms / 60000 * 60000, COUNT(*)
    FROM (
        SELECT site_id, pool_id, MIN(at_ms) AS first_ms FROM (
            SELECT site_id, pool_id, session_id, started_at_ms AS at_ms FROM leases
            UNION ALL
            SELECT site_id, pool_id, session_id, at_ms FROM pool_events
        ) GROUP BY site_id, pool_id, session_id
    )
    GROUP BY site_id, pool_id, first_ms / 60000;

ALTER TABLE sessions ADD COLUMN asked_pools TEXT;

UPDATE sessions SET asked_pools = asked.pools
FROM (
    SELECT session_id, group_concat(pool_id, ' ') AS pools FROM (
        SELECT session_id, pool_id FROM leases
        UNION
        SELECT session_id, pool_id FROM pool_events
    ) GROUP BY session_id
) AS asked
WHERE sessions.id = asked.session_id;

DROP TABLE pool_events;
