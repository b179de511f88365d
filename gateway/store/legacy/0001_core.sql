-- Sessions, their messages, tool calls and token usage.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL,
    platform    TEXT NOT NULL DEFAULT '',
    chat_id     TEXT NOT NULL DEFAULT '',
    user_id     TEXT NOT NULL DEFAULT '',
    team        TEXT NOT NULL DEFAULT '',
    title       TEXT NOT NULL DEFAULT '',
    archived    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX sessions_key ON sessions (key, archived);

CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    role        TEXT NOT NULL,
    data        TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  REAL NOT NULL
);
CREATE INDEX messages_session ON messages (session_id, active, seq);

CREATE TABLE tool_calls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    call_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    result      TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX tool_calls_session ON tool_calls (session_id);

CREATE TABLE usage (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id        TEXT NOT NULL,
    model             TEXT NOT NULL,
    purpose           TEXT NOT NULL DEFAULT 'chat',
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost              REAL NOT NULL,
    created_at        REAL NOT NULL
);
CREATE INDEX usage_session ON usage (session_id);
CREATE INDEX usage_time ON usage (created_at);
