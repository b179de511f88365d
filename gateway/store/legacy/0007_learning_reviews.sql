-- Durable learning reviews (gateway/learning_queue.py): every due review is a row before it starts,
-- so a review cut off by SIGKILL or a shutdown runs again after the restart; the per-session
-- counters that decide when a review is due; one budget notice a day per team chat.
CREATE TABLE learning_reviews (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    TEXT NOT NULL,
    team          TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL,                  -- end_of_turn | mid_task | correction | user_turns | idle
    slice         TEXT NOT NULL,                  -- JSON list of the messages the review sees
    context       TEXT NOT NULL DEFAULT '{}',     -- JSON: skills used, speakers, the task's earlier review
    status        TEXT NOT NULL DEFAULT 'queued', -- queued | running | deferred | done | failed | capped | merged
    owner         TEXT NOT NULL DEFAULT '',       -- boot id, pid and start time of the process running it
    attempts      INTEGER NOT NULL DEFAULT 0,
    writes        TEXT NOT NULL DEFAULT '[]',     -- JSON journal of the writes made so far (re-runs skip them)
    checkpoint_id INTEGER,                        -- learning_checkpoints row of the latest attempt
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE INDEX learning_reviews_status ON learning_reviews (status, id);
CREATE INDEX learning_reviews_session ON learning_reviews (session_id);

CREATE TABLE learning_counters (
    session_id    TEXT PRIMARY KEY,
    team          TEXT NOT NULL DEFAULT '',
    tool_calls    INTEGER NOT NULL DEFAULT 0,     -- tool calls not yet in a review
    user_turns    INTEGER NOT NULL DEFAULT 0,     -- user turns not yet in a review
    reviewed_seq  INTEGER NOT NULL DEFAULT 0,     -- messages up to this seq are in a review
    turn_seq      INTEGER NOT NULL DEFAULT 0,     -- seq of the current turn's user message
    task_review   INTEGER NOT NULL DEFAULT 0,     -- the mid-task review of the current turn, 0 for none
    last_activity REAL NOT NULL DEFAULT 0
);
CREATE INDEX learning_counters_idle ON learning_counters (user_turns, last_activity);

CREATE TABLE learning_notices (
    team    TEXT NOT NULL,
    day     TEXT NOT NULL,
    chat    TEXT NOT NULL,
    sent_at REAL NOT NULL,
    PRIMARY KEY (team, day, chat)
);

ALTER TABLE learning_checkpoints ADD COLUMN review_id INTEGER;
ALTER TABLE learning_checkpoints ADD COLUMN refusals TEXT NOT NULL DEFAULT '[]';
CREATE INDEX learning_checkpoints_team ON learning_checkpoints (team, started_at);
