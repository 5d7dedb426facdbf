-- Ringsource schema, version 10: dashboard users and their sessions, call
-- tags and notes, and where and on what a visitor came from.

-- People who sign in to the dashboard. `role` decides what they reach (see
-- auth/policy.rs); `all_sites` = 1, or the sites of user_sites. Passwords
-- are Argon2id PHC strings, never the password.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'marketer', 'manager')),
    all_sites     INTEGER NOT NULL CHECK (all_sites IN (0, 1)),
    password_hash TEXT NOT NULL,
    -- 1 for the demo's users (`ringsource demo-data`).
    demo          INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- The sites a user without all_sites may see. Not a foreign key to sites:
-- a site taken out of the configuration stays in the database anyway.
CREATE TABLE user_sites (
    user_id INTEGER NOT NULL REFERENCES users(id),
    site_id TEXT NOT NULL,
    PRIMARY KEY (user_id, site_id)
) STRICT, WITHOUT ROWID;

-- Signed-in browsers. The cookie carries a random token; only its SHA-256
-- is stored, so a copy of the database signs nobody in. `csrf_token` must
-- come back in a header with every request that changes something.
CREATE TABLE user_sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    csrf_token    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX user_sessions_by_user ON user_sessions(user_id);

-- A manager's tags on a call (lead, spam, sale, or their own words).
-- `tagged_by` is the user's name as it was, not a key: removing a user
-- keeps what they did.
CREATE TABLE call_tags (
    call_id   INTEGER NOT NULL REFERENCES calls(id),
    tag       TEXT NOT NULL,
    tagged_by TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    PRIMARY KEY (call_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX call_tags_by_tag ON call_tags(tag, call_id);

-- A manager's notes on a call. They may name the caller: they go with the
-- call when it is erased.
CREATE TABLE call_notes (
    id      INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls(id),
    author  TEXT NOT NULL,
    body    TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
) STRICT;
CREATE INDEX call_notes_by_call ON call_notes(call_id, id);

-- Where the visitor was (from their IP address, which is not stored) and
-- what they came on (from their User-Agent, which retention empties after
-- a week), both read when the session began.
ALTER TABLE sessions ADD COLUMN country TEXT;
ALTER TABLE sessions ADD COLUMN region TEXT;
ALTER TABLE sessions ADD COLUMN city TEXT;
ALTER TABLE sessions ADD COLUMN device_type TEXT;
ALTER TABLE sessions ADD COLUMN device TEXT;
ALTER TABLE sessions ADD COLUMN browser TEXT;
ALTER TABLE sessions ADD COLUMN os TEXT;
