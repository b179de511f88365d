-- Dashboard logins (gateway/api/auth.py WebSessions): one row per login, found by the SHA-256 of
-- the random cookie value (the value itself is never stored); logout deletes it, expiry ends it.
CREATE TABLE web_sessions (
    token_hash  TEXT PRIMARY KEY,
    address     TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- Received messages whose turn has not finished (gateway/inbox.py): a row is written before the
-- turn starts and deleted when the answer was delivered; what is left after a crash is run again.
-- Taking a message is one INSERT: it happens only when the dedup key is new, and the trigger
-- records the key in inbound_dedup in the same statement, so a message is never taken twice and
-- never lost between the two tables.
CREATE TABLE turn_inbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    platform    TEXT NOT NULL,
    dedup       TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL
);
CREATE INDEX turn_inbox_dedup ON turn_inbox (platform, dedup);

CREATE TRIGGER turn_inbox_records_dedup AFTER INSERT ON turn_inbox WHEN NEW.dedup <> ''
BEGIN
    INSERT OR IGNORE INTO inbound_dedup (platform, key, created_at) VALUES (NEW.platform, NEW.dedup, NEW.created_at);
END;
