-- Ringsource schema, version 1. Times are milliseconds since the Unix epoch;
-- phone numbers are E.164 strings.

CREATE TABLE sites (
    id            TEXT PRIMARY KEY,
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- Every number the configuration names, with its role. Numbers removed from
-- the configuration stay (calls and leases refer to them) with active = 0.
CREATE TABLE numbers (
    number            TEXT PRIMARY KEY,
    site_id           TEXT NOT NULL REFERENCES sites(id),
    kind              TEXT NOT NULL CHECK (kind IN ('original', 'static', 'pool', 'overflow')),
    pool_id           TEXT,
    label             TEXT,
    active            INTEGER NOT NULL DEFAULT 1,
    -- A pool number may be leased to someone new from this instant on.
    cooldown_until_ms INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    site_id       TEXT NOT NULL REFERENCES sites(id),
    client_id     TEXT,
    ym_uid        TEXT,
    user_agent    TEXT NOT NULL,
    is_bot        INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_client ON sessions(site_id, client_id) WHERE client_id IS NOT NULL;

-- The touches a session reported: its first touch once, and each visit's
-- last touch.
CREATE TABLE touches (
    id             INTEGER PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES sessions(id),
    role           TEXT NOT NULL CHECK (role IN ('first', 'last')),
    at_ms          INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    channel        TEXT NOT NULL,
    source         TEXT NOT NULL,
    medium         TEXT NOT NULL,
    campaign       TEXT,
    term           TEXT,
    content        TEXT,
    click_id_kind  TEXT,
    click_id       TEXT,
    landing_path   TEXT NOT NULL,
    touch_json     TEXT NOT NULL
) STRICT;
CREATE INDEX touches_by_session ON touches(session_id, id);

CREATE TABLE page_views (
    id         INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    at_ms      INTEGER NOT NULL,
    url        TEXT NOT NULL,
    title      TEXT
) STRICT;
CREATE INDEX page_views_by_session ON page_views(session_id, at_ms);

-- Pool leases. A lease is live while ended_at_ms IS NULL and
-- expires_at_ms > now; expired leases are closed lazily (ended_at_ms =
-- expires_at_ms) at the start of the next lease transaction.
CREATE TABLE leases (
    id            INTEGER PRIMARY KEY,
    site_id       TEXT NOT NULL REFERENCES sites(id),
    pool_id       TEXT NOT NULL,
    number        TEXT NOT NULL REFERENCES numbers(number),
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    started_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    hold_secs     INTEGER NOT NULL,
    ended_at_ms   INTEGER,
    end_reason    TEXT CHECK (end_reason IN ('expired', 'released', 'taken_over', 'handed_over')),
    CHECK ((ended_at_ms IS NULL) = (end_reason IS NULL))
) STRICT;
-- The invariant "a number is never leased to two live sessions", enforced by
-- the database itself: at most one open lease per number.
CREATE UNIQUE INDEX leases_one_open_per_number ON leases(number) WHERE ended_at_ms IS NULL;
CREATE INDEX leases_open_by_session ON leases(session_id) WHERE ended_at_ms IS NULL;
CREATE INDEX leases_by_number_time ON leases(number, started_at_ms);

-- Every pool exhaustion and what was done about it.
CREATE TABLE pool_events (
    id                 INTEGER PRIMARY KEY,
    site_id            TEXT NOT NULL REFERENCES sites(id),
    pool_id            TEXT NOT NULL,
    at_ms              INTEGER NOT NULL,
    session_id         TEXT NOT NULL REFERENCES sessions(id),
    policy             TEXT NOT NULL CHECK (policy IN ('overflow', 'original', 'take-over-oldest')),
    -- What the visitor got: the overflow number, the original, or a taken-over number.
    outcome            TEXT NOT NULL CHECK (outcome IN ('overflow', 'original', 'taken-over')),
    number             TEXT,
    taken_from_session TEXT
) STRICT;
CREATE INDEX pool_events_by_pool ON pool_events(site_id, pool_id, at_ms);
