"""Scheduled jobs and their runs: the rows of `cron_jobs` and `cron_runs`.

What a job means (schedules, owners, targets) lives in `gateway/cron/`; this module only stores.
Rows are returned as mappings for `gateway.cron.jobs`.

- A run row is written before the run starts, keyed by (job id, scheduled time): `cron_run_claim`
  is an insert-if-new (`on_conflict_do_nothing` on either engine), so of two starts of the same
  scheduled run (two processes, or a restart right after a run) exactly one gets a run id.
- A job's `target` may be a webhook URL the user typed: it is stored as `KeepSecret`, so only the
  known secret values of the config and environment are masked in it, not its own tokens.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gateway.store.base import KeepSecret, RowRejectedError
from gateway.store.database import Database
from gateway.store.schema import cron_jobs, cron_runs

J = cron_jobs.c
R = cron_runs.c
JOB_COLUMNS = tuple(c.name for c in cron_jobs.columns)


class CronStore:
    """Mixin of the store: tables cron_jobs and cron_runs."""

    db: Database

    # -- jobs -------------------------------------------------------------------------------------
    async def cron_job_insert(self, **values: Any) -> None:
        """A new job (columns of cron_jobs); `target` keeps its own tokens."""
        if "target" in values:
            values["target"] = KeepSecret(values["target"])
        await self.db.execute(cron_jobs.insert().values(**values))

    async def cron_job_row(self, job_id: str) -> Mapping[str, Any] | None:
        row = await self.db.one(sa.select(cron_jobs).where(J.id == job_id))
        return row._mapping if row is not None else None

    async def cron_job_rows(self, *, owner: str | None = None, by_id: bool = False) -> list[Mapping[str, Any]]:
        """Every job (of one owner when `owner` is given), oldest first (or by id)."""
        query = sa.select(cron_jobs).order_by(J.id if by_id else J.created_at)
        if owner is not None:
            query = query.where(J.owner == owner)
        return [r._mapping for r in await self.db.rows(query)]

    async def cron_job_update(self, job_id: str, **values: Any) -> bool:
        """Set columns of a job (updated_at now unless given); False when there is no such job."""
        values.setdefault("updated_at", time.time())
        if "target" in values:
            values["target"] = KeepSecret(values["target"])
        result = await self.db.execute(cron_jobs.update().where(J.id == job_id).values(**values))
        return result.rowcount == 1

    async def cron_job_delete(self, job_id: str) -> None:
        """The job and its run history, in one transaction."""
        async with self.db.transaction():
            await self.db.execute(cron_runs.delete().where(R.job_id == job_id))
            await self.db.execute(cron_jobs.delete().where(J.id == job_id))

    async def cron_job_put(self, values: Mapping[str, Any]) -> None:
        """Insert a job row as given, or overwrite every given column of the job with its id (a
        profile import that wins); its run history stays. A row the database refuses (a required
        column missing, a wrong type) raises `RowRejectedError` with the database's reason."""
        row = {k: v for k, v in values.items() if k in JOB_COLUMNS}
        if "target" in row:
            row["target"] = KeepSecret(row["target"])
        try:
            await self.db.execute(self.db.upsert(cron_jobs, row, ["id"]))
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise RowRejectedError(reason) from None

    async def cron_version(self) -> tuple[int, float]:
        """(number of jobs, latest update): changes by other processes (the CLI) show up here."""
        row = await self.db.one(sa.select(sa.func.count(), sa.func.coalesce(sa.func.max(J.updated_at), 0.0)))
        return (int(row[0]), float(row[1])) if row is not None else (0, 0.0)

    # -- runs -------------------------------------------------------------------------------------
    async def cron_run_claim(self, job_id: str, scheduled_time: str, cause: str) -> int | None:
        """Record that the run for `scheduled_time` starts; its id, or None when it was recorded already."""
        statement = self.db.insert_ignore(cron_runs, ["job_id", "scheduled_time"]).values(
            job_id=job_id, scheduled_time=scheduled_time, cause=cause, started_at=time.time(), status="running")
        rows = await self.db.write_returning(statement.returning(R.id))
        return int(rows[0][0]) if rows else None

    async def cron_run_skip(self, job_id: str, scheduled_time: str, reason: str) -> bool:
        """Record a missed run as skipped; False when that scheduled time was recorded already."""
        now = time.time()
        result = await self.db.execute(self.db.insert_ignore(cron_runs, ["job_id", "scheduled_time"]).values(
            job_id=job_id, scheduled_time=scheduled_time, cause="missed", started_at=now, finished_at=now,
            status="skipped", error=reason))
        return result.rowcount == 1

    async def cron_run_finish(self, run_id: int, **values: Any) -> None:
        """Close a run (status, session_id, duration_ms, tokens, output_excerpt, error, delivery_error)."""
        values.setdefault("finished_at", time.time())
        await self.db.execute(cron_runs.update().where(R.id == run_id).values(**values))

    async def cron_last_scheduled(self, job_id: str) -> str | None:
        """The latest scheduled time recorded for the job, manual runs aside."""
        return await self.db.scalar(sa.select(sa.func.max(R.scheduled_time)).where(
            R.job_id == job_id, R.cause != "manual"))

    async def cron_running(self, job_id: str, *, started_after: float) -> Mapping[str, Any] | None:
        """The newest run of the job still marked running that started after `started_after`."""
        row = await self.db.one(sa.select(cron_runs).where(
            R.job_id == job_id, R.status == "running", R.started_at > started_after)
            .order_by(R.started_at.desc()).limit(1))
        return row._mapping if row is not None else None

    async def cron_abandon_stale(self, started_before: float, error: str) -> int:
        """Runs still marked running that started at or before `started_before` become abandoned."""
        result = await self.db.execute(cron_runs.update().where(
            R.status == "running", R.started_at <= started_before).values(
            status="abandoned", finished_at=time.time(), error=error))
        return int(result.rowcount)

    async def cron_interrupt_scheduled(self, error: str) -> int:
        """Scheduled runs (not manual ones) still marked running become interrupted: what a new
        owner of the cron scheduler finds left by the owner before it, which died during them."""
        result = await self.db.execute(cron_runs.update().where(
            R.status == "running", R.cause != "manual").values(
            status="interrupted", finished_at=time.time(), error=error))
        return int(result.rowcount)

    async def cron_run_rows(self, job_id: str | None = None, *, limit: int = 50) -> list[Mapping[str, Any]]:
        """Runs of one job (or of every job), newest first."""
        query = sa.select(cron_runs).order_by(R.started_at.desc(), R.id.desc()).limit(limit)
        if job_id is not None:
            query = query.where(R.job_id == job_id)
        return [r._mapping for r in await self.db.rows(query)]

    async def cron_run_history(self) -> list[tuple[str, str, str, str]]:
        """(job id, scheduled time, cause, status) of every run, by scheduled time."""
        rows = await self.db.rows(sa.select(R.job_id, R.scheduled_time, R.cause, R.status)
                                  .order_by(R.scheduled_time, R.id))
        return [(r[0], r[1], r[2], r[3]) for r in rows]
