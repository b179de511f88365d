-- Dashboard logins (gateway/api/auth.py WebSessions): one row per login, found by the SHA-256 of
-- the random cookie value (the value itself is never stored); logout deletes it, expiry ends it.
CREATE TABLE web_sessions (
    token_hash  TEXT PRIMARY KEY,
    address     TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- Received messages whose turn has not finished (gateway/inbox.py): written before the turn
-- starts, deleted when its answer was delivered. What is left after a crash is run again, once.
CREATE TABLE turn_inbox (
    key          TEXT PRIMARY KEY,
    platform     TEXT NOT NULL,
    chat_id      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    thread_id    TEXT,
    message_id   TEXT NOT NULL DEFAULT '',
    is_dm        INTEGER NOT NULL DEFAULT 1,
    session_key  TEXT NOT NULL,
    team         TEXT NOT NULL DEFAULT '',
    content      TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL
);
CREATE INDEX turn_inbox_time ON turn_inbox (created_at);
