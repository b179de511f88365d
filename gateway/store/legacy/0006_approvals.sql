-- Approvals of risky tool calls (gateway/approvals.py): every request and how it was answered,
-- and the "always allow" rules admins set (session_id '' means every session, permanently).
CREATE TABLE approval_requests (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL,
    platform     TEXT NOT NULL,
    chat_id      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    tool         TEXT NOT NULL,
    description  TEXT NOT NULL,
    rule         TEXT NOT NULL,
    outcome      TEXT NOT NULL DEFAULT 'pending',
    scope        TEXT NOT NULL DEFAULT '',
    answered_by  TEXT NOT NULL DEFAULT '',
    created_at   REAL NOT NULL,
    answered_at  REAL
);
CREATE INDEX approval_requests_session ON approval_requests (session_id);

CREATE TABLE approval_rules (
    session_id  TEXT NOT NULL DEFAULT '',
    tool        TEXT NOT NULL,
    rule        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (session_id, tool, rule)
);
