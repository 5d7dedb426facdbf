-- Ringsource schema, version 2: calls, their raw events, attribution and
-- promo codes. Times are milliseconds since the Unix epoch.

-- Promo codes issued to sessions. A code is reserved while reserved_until_ms
-- is ahead (renewed by each visit of its session); after that it is retired
-- and may be issued again, but the row stays so old calls can be explained.
CREATE TABLE promo_codes (
    id                INTEGER PRIMARY KEY,
    site_id           TEXT NOT NULL REFERENCES sites(id),
    code              TEXT NOT NULL,
    session_id        TEXT NOT NULL REFERENCES sessions(id),
    issued_at_ms      INTEGER NOT NULL,
    reserved_until_ms INTEGER NOT NULL,
    retired           INTEGER NOT NULL DEFAULT 0
) STRICT;
-- Unique among live codes of a site: the collector retries on a collision.
CREATE UNIQUE INDEX promo_codes_live ON promo_codes(site_id, code) WHERE retired = 0;
CREATE INDEX promo_codes_by_session ON promo_codes(session_id) WHERE retired = 0;
CREATE INDEX promo_codes_by_code ON promo_codes(site_id, code, issued_at_ms);

-- One row per call, folded from all its events and attributed.
CREATE TABLE calls (
    id                INTEGER PRIMARY KEY,
    site_id           TEXT NOT NULL REFERENCES sites(id),
    pbx               TEXT NOT NULL,
    pbx_call_id       TEXT NOT NULL,
    -- The caller as the PBX wrote it, and its key: E.164 when it parses, else
    -- its digits (repeat callers are found by the key; NULL = anonymous).
    caller            TEXT,
    caller_key        TEXT,
    dialled           TEXT NOT NULL,
    number_kind       TEXT NOT NULL CHECK (number_kind IN ('pool', 'static', 'overflow', 'original', 'unknown')),
    pool_id           TEXT,
    static_label      TEXT,
    -- When the phone rang: the PBX's start, or what its other times imply,
    -- or when the collector first heard of the call.
    ring_at_ms        INTEGER NOT NULL,
    answered_at_ms    INTEGER,
    ended_at_ms       INTEGER,
    duration_secs     INTEGER,
    talk_secs         INTEGER,
    status            TEXT NOT NULL CHECK (status IN ('in-progress', 'answered', 'no-answer', 'busy', 'canceled', 'failed')),
    is_target         INTEGER NOT NULL,
    is_missed         INTEGER NOT NULL,
    caller_kind       TEXT NOT NULL CHECK (caller_kind IN ('first-time', 'repeat', 'anonymous')),
    recording_url     TEXT,
    -- Attribution: the chosen session (NULL for static and unattributed
    -- calls), how sure, and why.
    session_id        TEXT REFERENCES sessions(id),
    confidence        TEXT NOT NULL CHECK (confidence IN ('high', 'medium', 'low', 'none')),
    reason            TEXT NOT NULL,
    model             TEXT NOT NULL CHECK (model IN ('first-touch', 'last-touch', 'linear')),
    -- A promo code the manager named; it wins over everything else.
    promo_code        TEXT,
    promo_session_id  TEXT REFERENCES sessions(id),
    -- The call's headline touch (the model's touch; for linear the last
    -- non-direct one), for list filters. Reports use call_credits.
    channel           TEXT NOT NULL,
    source            TEXT NOT NULL,
    medium            TEXT NOT NULL,
    campaign          TEXT,
    term              TEXT,
    first_heard_at_ms INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL,
    UNIQUE (pbx, pbx_call_id)
) STRICT;
CREATE INDEX calls_by_site_time ON calls(site_id, ring_at_ms);
CREATE INDEX calls_by_caller ON calls(site_id, caller_key, ring_at_ms) WHERE caller_key IS NOT NULL;

-- Every normalised event as received; a call is refolded from all of them,
-- so an event that arrives late or out of order still counts, and a retried
-- delivery (the same event again) is stored once.
CREATE TABLE call_events (
    id             INTEGER PRIMARY KEY,
    call_id        INTEGER NOT NULL REFERENCES calls(id),
    event_json     TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    UNIQUE (call_id, event_json)
) STRICT;

-- The sessions attribution considered for a call, and the one chosen.
CREATE TABLE call_candidates (
    call_id       INTEGER NOT NULL REFERENCES calls(id),
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    relation      TEXT NOT NULL CHECK (relation IN ('live', 'grace', 'expired', 'promo', 'caller-history')),
    held_from_ms  INTEGER,
    held_until_ms INTEGER,
    chosen        INTEGER NOT NULL,
    PRIMARY KEY (call_id, session_id, relation)
) STRICT;

-- The call's credit per touch under the site's model; shares of one call
-- sum to 1. Static calls credit their source, unattributed calls
-- "(unattributed)", so reports add up to the number of calls.
CREATE TABLE call_credits (
    call_id  INTEGER NOT NULL REFERENCES calls(id),
    seq      INTEGER NOT NULL,
    share    REAL NOT NULL CHECK (share > 0 AND share <= 1),
    at_ms    INTEGER,
    channel  TEXT NOT NULL,
    source   TEXT NOT NULL,
    medium   TEXT NOT NULL,
    campaign TEXT,
    term     TEXT,
    content  TEXT,
    PRIMARY KEY (call_id, seq)
) STRICT;
