-- Ringsource schema, version 3: money (advertising cost, revenue from the
-- CRM) and the exports outbox. Times are milliseconds since the Unix epoch.

-- Advertising cost per site, UTC day and source/medium/campaign. medium and
-- campaign are '' when the upload did not split the cost that finely (a
-- primary key with NULLs would not make the upsert unique).
CREATE TABLE costs (
    site_id       TEXT NOT NULL REFERENCES sites(id),
    day           TEXT NOT NULL,
    source        TEXT NOT NULL,
    medium        TEXT NOT NULL DEFAULT '',
    campaign      TEXT NOT NULL DEFAULT '',
    cost          REAL NOT NULL CHECK (cost >= 0),
    currency      TEXT,
    -- 1 for rows written by `ringsource demo-data`.
    demo          INTEGER NOT NULL DEFAULT 0,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (site_id, day, source, medium, campaign)
) STRICT;

-- Revenue the CRM posted back for a call. One row per deal when the CRM
-- names one (a repeated deal_id updates it), else one row per post.
CREATE TABLE revenue (
    id             INTEGER PRIMARY KEY,
    site_id        TEXT NOT NULL REFERENCES sites(id),
    call_id        INTEGER NOT NULL REFERENCES calls(id),
    amount         REAL NOT NULL,
    currency       TEXT,
    deal_id        TEXT,
    at_ms          INTEGER NOT NULL,
    demo           INTEGER NOT NULL DEFAULT 0,
    received_at_ms INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX revenue_by_deal ON revenue(site_id, deal_id) WHERE deal_id IS NOT NULL;
CREATE INDEX revenue_by_call ON revenue(call_id);

-- Exports waiting for delivery, delivered, or given up on (the dead letter).
-- A row is written in the same transaction as the call update that ended
-- the call, so an export is never lost nor written twice; webhook_id stays
-- the same across retries so a receiver can drop a repeated delivery.
CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY,
    site_id            TEXT NOT NULL REFERENCES sites(id),
    kind               TEXT NOT NULL CHECK (kind IN ('ga4', 'crm')),
    call_id            INTEGER REFERENCES calls(id),
    webhook_id         TEXT NOT NULL UNIQUE,
    payload            TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error         TEXT,
    -- skipped: never sendable (e.g. GA4 without a client id); last_error says why.
    status             TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead', 'skipped')),
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    sent_at_ms         INTEGER,
    UNIQUE (call_id, kind)
) STRICT;
CREATE INDEX outbox_due ON outbox(next_attempt_at_ms) WHERE status = 'pending';
CREATE INDEX outbox_by_status ON outbox(status, id);
