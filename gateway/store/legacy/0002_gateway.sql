-- The gateway: pairing codes, approved users, inbound dedup, sends that could not be
-- delivered, and idempotency records of sends that succeeded.
CREATE TABLE pairing_requests (
    code          TEXT PRIMARY KEY,
    platform      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    chat_id       TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL,
    expires_at    REAL NOT NULL,
    UNIQUE (platform, user_id)
);

CREATE TABLE allow_grants (
    platform      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    approved_by   TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL,
    PRIMARY KEY (platform, user_id)
);

CREATE TABLE inbound_dedup (
    platform      TEXT NOT NULL,
    key           TEXT NOT NULL,
    created_at    REAL NOT NULL,
    PRIMARY KEY (platform, key)
);
CREATE INDEX inbound_dedup_time ON inbound_dedup (created_at);

CREATE TABLE undelivered (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    platform         TEXT NOT NULL,
    chat_id          TEXT NOT NULL,
    thread_id        TEXT,
    reply_to         TEXT,
    text             TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    created_at       REAL NOT NULL
);
CREATE INDEX undelivered_time ON undelivered (created_at);

CREATE TABLE outbound_sent (
    idempotency_key  TEXT PRIMARY KEY,
    platform         TEXT NOT NULL,
    chat_id          TEXT NOT NULL,
    message_id       TEXT NOT NULL,
    thread_id        TEXT,
    created_at       REAL NOT NULL
);
CREATE INDEX outbound_sent_time ON outbound_sent (created_at);
