"""Scheduled jobs and their runs, persisted in the state store (migrations 0004_cron.sql and
0011_cron_paused_reason.sql: why the scheduler paused a job).

A job is what to run (prompt, optional skill, optional model), when (its schedule and time
zone) and where the result goes (target). A run row is written *before* a run starts, keyed by
(job id, scheduled time): the unique key is how two starts of the same scheduled run, e.g. a
restart right after a run, are told apart from a new one. Manual runs use their start time.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.cron.schedule import Schedule, describe_time, local_iso, parse_schedule
from gateway.store import KeepSecret, StateStore

EXCERPT_CHARS = 500
ERROR_CHARS = 500


class JobNotFound(LookupError):
    """No job with that id (or not visible from where it was asked)."""


def iso_utc(moment: datetime) -> str:
    """The stored form of a scheduled time: UTC, microseconds, so strings sort like times."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    schedule: str
    kind: str
    timezone: str
    prompt: str
    skill: str
    model: str
    target: str
    origin_session: str
    owner: str
    team: str
    paused: bool
    done: bool
    created_at: float
    updated_at: float
    paused_reason: str = ""

    def parsed(self) -> Schedule:
        anchor = datetime.fromtimestamp(self.created_at, UTC)
        return parse_schedule(self.schedule, self.timezone, now=anchor, anchor=anchor, min_interval=1,
                              allow_past=True)

    @property
    def state(self) -> str:
        return "done" if self.done else "paused" if self.paused else "active"

    def next_runs(self, n: int = 3) -> list[datetime]:
        if self.done or self.paused:
            return []
        return self.parsed().next_runs(n)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state
        data["next_runs"] = [local_iso(t, self.timezone) for t in self.next_runs_safe(3)]
        return data

    def next_runs_safe(self, n: int = 3) -> list[datetime]:
        """`next_runs`, or none when the stored schedule no longer parses (the scheduler pauses it)."""
        try:
            return self.next_runs(n)
        except ValueError:
            return []

    def next_runs_text(self, n: int = 3) -> str:
        if self.paused and self.paused_reason:
            return f"none (paused: {self.paused_reason})"
        runs = self.next_runs_safe(n)
        return ", ".join(describe_time(t, self.timezone) for t in runs) if runs else "none"


@dataclass(frozen=True)
class Run:
    id: int
    job_id: str
    scheduled_time: str
    cause: str
    session_id: str
    started_at: float
    finished_at: float | None
    status: str
    duration_ms: float
    prompt_tokens: int
    completion_tokens: int
    output_excerpt: str
    error: str
    delivery_error: str

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokens"] = self.tokens
        data["duration_s"] = round(self.duration_ms / 1000, 3)
        return data


def _job(row: Any) -> Job:
    return Job(id=row["id"], name=row["name"], schedule=row["schedule"], kind=row["kind"],
               timezone=row["timezone"], prompt=row["prompt"], skill=row["skill"], model=row["model"],
               target=row["target"], origin_session=row["origin_session"], owner=row["owner"], team=row["team"],
               paused=bool(row["paused"]), done=bool(row["done"]), created_at=row["created_at"],
               updated_at=row["updated_at"], paused_reason=row["paused_reason"])


def _run(row: Any) -> Run:
    return Run(**{key: row[key] for key in Run.__dataclass_fields__})


class JobStore:
    """CRUD for jobs and the run history, on the shared SQLite store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def create(self, *, name: str, schedule: Schedule, prompt: str, skill: str = "", model: str = "",
                     target: str, origin_session: str = "", owner: str = "", team: str = "",
                     created_at: float | None = None) -> Job:
        now = created_at if created_at is not None else schedule.anchor.timestamp()
        job_id = uuid.uuid4().hex[:8]
        await self.store.execute(
            "INSERT INTO cron_jobs (id, name, schedule, kind, timezone, prompt, skill, model, target,"
            " origin_session, owner, team, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, name or job_id, schedule.text, schedule.kind, schedule.timezone, prompt, skill, model,
             KeepSecret(target), origin_session, owner, team, now, now))  # a webhook URL must work as given
        return await self.get(job_id)

    async def get(self, job_id: str, *, owner: str | None = None) -> Job:
        row = await self.store.fetchone("SELECT * FROM cron_jobs WHERE id = ?", (job_id.strip(),))
        if row is None or (owner is not None and row["owner"] != owner):
            raise JobNotFound(f"no job with id {job_id!r}")
        return _job(row)

    async def list(self, *, owner: str | None = None) -> list[Job]:
        if owner is None:
            rows = await self.store.fetchall("SELECT * FROM cron_jobs ORDER BY created_at")
        else:
            rows = await self.store.fetchall("SELECT * FROM cron_jobs WHERE owner = ? ORDER BY created_at", (owner,))
        return [_job(r) for r in rows]

    async def set_paused(self, job_id: str, paused: bool, *, owner: str | None = None) -> Job:
        job = await self.get(job_id, owner=owner)
        await self.store.execute("UPDATE cron_jobs SET paused = ?, paused_reason = '', updated_at = ? WHERE id = ?",
                                 (int(paused), time.time(), job.id))
        return await self.get(job.id)

    async def pause_for(self, job_id: str, reason: str) -> None:
        """Paused by the scheduler, with the reason shown in `hermes cron list` (until resumed)."""
        await self.store.execute("UPDATE cron_jobs SET paused = 1, paused_reason = ?, updated_at = ? WHERE id = ?",
                                 (reason[:ERROR_CHARS], time.time(), job_id))

    async def mark_done(self, job_id: str) -> None:
        await self.store.execute("UPDATE cron_jobs SET done = 1, updated_at = ? WHERE id = ?", (time.time(), job_id))

    async def remove(self, job_id: str, *, owner: str | None = None) -> Job:
        job = await self.get(job_id, owner=owner)
        await self.store.execute("DELETE FROM cron_runs WHERE job_id = ?", (job.id,))
        await self.store.execute("DELETE FROM cron_jobs WHERE id = ?", (job.id,))
        return job

    async def version(self) -> tuple[int, float]:
        """Changes by other processes (the CLI) show up here: (count, latest update)."""
        row = await self.store.fetchone("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM cron_jobs")
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    # -- runs -----------------------------------------------------------------------------------
    async def claim(self, job_id: str, scheduled: datetime, cause: str) -> int | None:
        """Record that the run for `scheduled` starts; None when it was already recorded."""
        try:
            return await self.store.execute(
                "INSERT INTO cron_runs (job_id, scheduled_time, cause, started_at, status) VALUES (?, ?, ?, ?, ?)",
                (job_id, iso_utc(scheduled), cause, time.time(), "running"))
        except sqlite3.IntegrityError:
            return None

    async def record_skip(self, job_id: str, scheduled: datetime, reason: str) -> None:
        try:
            now = time.time()
            await self.store.execute(
                "INSERT INTO cron_runs (job_id, scheduled_time, cause, started_at, finished_at, status, error)"
                " VALUES (?, ?, 'missed', ?, ?, 'skipped', ?)", (job_id, iso_utc(scheduled), now, now, reason))
        except sqlite3.IntegrityError:
            pass

    async def finish(self, run_id: int, *, status: str, session_id: str = "", duration_ms: float = 0.0,
                     prompt_tokens: int = 0, completion_tokens: int = 0, output: str = "", error: str = "",
                     delivery_error: str = "") -> None:
        await self.store.execute(
            "UPDATE cron_runs SET finished_at = ?, status = ?, session_id = ?, duration_ms = ?, prompt_tokens = ?,"
            " completion_tokens = ?, output_excerpt = ?, error = ?, delivery_error = ? WHERE id = ?",
            (time.time(), status, session_id, duration_ms, prompt_tokens, completion_tokens,
             output[:EXCERPT_CHARS], error[:ERROR_CHARS], delivery_error[:ERROR_CHARS], run_id))

    async def last_scheduled(self, job_id: str) -> datetime | None:
        """The latest scheduled time a run (or skip) was recorded for, manual runs aside."""
        row = await self.store.fetchone(
            "SELECT MAX(scheduled_time) FROM cron_runs WHERE job_id = ? AND cause != 'manual'", (job_id,))
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    async def running(self, job_id: str, *, stale_after: float) -> Run | None:
        """A run of this job still in progress (in any process), ignoring ones older than `stale_after` s."""
        row = await self.store.fetchone(
            "SELECT * FROM cron_runs WHERE job_id = ? AND status = 'running' AND started_at > ?"
            " ORDER BY started_at DESC LIMIT 1", (job_id, time.time() - stale_after))
        return _run(row) if row else None

    async def abandon_stale(self, stale_after: float) -> int:
        """Runs left 'running' by a process that died: marked so, never resumed."""
        return await self.store.execute_rowcount(
            "UPDATE cron_runs SET status = 'abandoned', finished_at = ?, error = 'the process ended during the run'"
            " WHERE status = 'running' AND started_at <= ?", (time.time(), time.time() - stale_after))

    async def runs(self, job_id: str, *, limit: int = 50) -> list[Run]:
        rows = await self.store.fetchall(
            "SELECT * FROM cron_runs WHERE job_id = ? ORDER BY started_at DESC, id DESC LIMIT ?", (job_id, limit))
        return [_run(r) for r in rows]
