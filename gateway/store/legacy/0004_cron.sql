-- Scheduled jobs and their runs. These tables are the source of truth; APScheduler keeps only
-- in-process timers. UNIQUE (job_id, scheduled_time) is how a restart knows a run already ran.
CREATE TABLE cron_jobs (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    schedule        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    timezone        TEXT NOT NULL,
    prompt          TEXT NOT NULL DEFAULT '',
    skill           TEXT NOT NULL DEFAULT '',
    model           TEXT NOT NULL DEFAULT '',
    target          TEXT NOT NULL,
    origin_session  TEXT NOT NULL DEFAULT '',
    owner           TEXT NOT NULL DEFAULT '',
    team            TEXT NOT NULL DEFAULT '',
    paused          INTEGER NOT NULL DEFAULT 0,
    done            INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX cron_jobs_owner ON cron_jobs (owner);

CREATE TABLE cron_runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id            TEXT NOT NULL REFERENCES cron_jobs (id) ON DELETE CASCADE,
    scheduled_time    TEXT NOT NULL,
    cause             TEXT NOT NULL DEFAULT 'schedule',
    session_id        TEXT NOT NULL DEFAULT '',
    started_at        REAL NOT NULL,
    finished_at       REAL,
    status            TEXT NOT NULL,
    duration_ms       REAL NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    output_excerpt    TEXT NOT NULL DEFAULT '',
    error             TEXT NOT NULL DEFAULT '',
    delivery_error    TEXT NOT NULL DEFAULT '',
    UNIQUE (job_id, scheduled_time)
);
CREATE INDEX cron_runs_job ON cron_runs (job_id, started_at);
