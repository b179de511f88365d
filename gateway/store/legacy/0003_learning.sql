-- The learning loop: one row per checkpoint, and skill proposals waiting for approval (ask mode).
CREATE TABLE learning_checkpoints (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id        TEXT NOT NULL,
    team              TEXT NOT NULL DEFAULT '',
    cause             TEXT NOT NULL,
    status            TEXT NOT NULL,
    model             TEXT NOT NULL DEFAULT '',
    started_at        REAL NOT NULL,
    finished_at       REAL,
    decisions         TEXT NOT NULL DEFAULT '',
    skills            TEXT NOT NULL DEFAULT '[]',
    memory            TEXT NOT NULL DEFAULT '[]',
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    error             TEXT NOT NULL DEFAULT ''
);
CREATE INDEX learning_checkpoints_time ON learning_checkpoints (started_at);
CREATE INDEX learning_checkpoints_session ON learning_checkpoints (session_id);

CREATE TABLE learning_proposals (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    checkpoint_id INTEGER REFERENCES learning_checkpoints (id) ON DELETE SET NULL,
    session_id    TEXT NOT NULL,
    team          TEXT NOT NULL DEFAULT '',
    skill         TEXT NOT NULL,
    action        TEXT NOT NULL,
    arguments     TEXT NOT NULL,
    summary       TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT 'pending',
    created_at    REAL NOT NULL,
    decided_at    REAL,
    decided_by    TEXT NOT NULL DEFAULT '',
    result        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX learning_proposals_status ON learning_proposals (status, created_at);
