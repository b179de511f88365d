-- Why a job is paused when the scheduler paused it (its next run time could not be computed,
-- or its stored schedule no longer parses); '' for a job a user paused or an active job.
ALTER TABLE cron_jobs ADD COLUMN paused_reason TEXT NOT NULL DEFAULT '';
