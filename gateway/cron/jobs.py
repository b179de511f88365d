"""Scheduled jobs and their runs, persisted in the state store (`gateway/store/cron.py`: tables
cron_jobs and cron_runs; `paused_reason` says why the scheduler paused a job).

A job is what to run (prompt, optional skill, optional model), when (its schedule and time
zone) and where the result goes (target). A run row is written *before* a run starts, keyed by
(job id, scheduled time): the unique key is how two starts of the same scheduled run, e.g. a
restart right after a run, are told apart from a new one. Manual runs use their start time.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.cron.schedule import Schedule, describe_time, local_iso, parse_schedule
from gateway.store import StateStore

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
    """Jobs and the run history, through the store's cron methods (either engine)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def create(self, *, name: str, schedule: Schedule, prompt: str, skill: str = "", model: str = "",
                     target: str, origin_session: str = "", owner: str = "", team: str = "",
                     created_at: float | None = None) -> Job:
        now = created_at if created_at is not None else schedule.anchor.timestamp()
        job_id = uuid.uuid4().hex[:8]
        await self.store.cron_job_insert(
            id=job_id, name=name or job_id, schedule=schedule.text, kind=schedule.kind, timezone=schedule.timezone,
            prompt=prompt, skill=skill, model=model, target=target,  # a webhook URL must work as given
            origin_session=origin_session, owner=owner, team=team, created_at=now, updated_at=now)
        return await self.get(job_id)

    async def get(self, job_id: str, *, owner: str | None = None) -> Job:
        row = await self.store.cron_job_row(job_id.strip())
        if row is None or (owner is not None and row["owner"] != owner):
            raise JobNotFound(f"no job with id {job_id!r}")
        return _job(row)

    async def list(self, *, owner: str | None = None) -> list[Job]:
        return [_job(r) for r in await self.store.cron_job_rows(owner=owner)]

    async def set_paused(self, job_id: str, paused: bool, *, owner: str | None = None) -> Job:
        job = await self.get(job_id, owner=owner)
        await self.store.cron_job_update(job.id, paused=int(paused), paused_reason="")
        return await self.get(job.id)

    async def pause_for(self, job_id: str, reason: str) -> None:
        """Paused by the scheduler, with the reason shown in `hermes cron list` (until resumed)."""
        await self.store.cron_job_update(job_id, paused=1, paused_reason=reason[:ERROR_CHARS])

    async def mark_done(self, job_id: str) -> None:
        await self.store.cron_job_update(job_id, done=1)

    async def remove(self, job_id: str, *, owner: str | None = None) -> Job:
        job = await self.get(job_id, owner=owner)
        await self.store.cron_job_delete(job.id)
        return job

    async def version(self) -> tuple[int, float]:
        """Changes by other processes (the CLI) show up here: (count, latest update)."""
        return await self.store.cron_version()

    # -- runs -----------------------------------------------------------------------------------
    async def claim(self, job_id: str, scheduled: datetime, cause: str) -> int | None:
        """Record that the run for `scheduled` starts; None when it was already recorded."""
        return await self.store.cron_run_claim(job_id, iso_utc(scheduled), cause)

    async def record_skip(self, job_id: str, scheduled: datetime, reason: str) -> None:
        await self.store.cron_run_skip(job_id, iso_utc(scheduled), reason)

    async def finish(self, run_id: int, *, status: str, session_id: str = "", duration_ms: float = 0.0,
                     prompt_tokens: int = 0, completion_tokens: int = 0, output: str = "", error: str = "",
                     delivery_error: str = "") -> None:
        await self.store.cron_run_finish(
            run_id, status=status, session_id=session_id, duration_ms=duration_ms, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, output_excerpt=output[:EXCERPT_CHARS], error=error[:ERROR_CHARS],
            delivery_error=delivery_error[:ERROR_CHARS])

    async def last_scheduled(self, job_id: str) -> datetime | None:
        """The latest scheduled time a run (or skip) was recorded for, manual runs aside."""
        latest = await self.store.cron_last_scheduled(job_id)
        return datetime.fromisoformat(latest) if latest else None

    async def running(self, job_id: str, *, stale_after: float) -> Run | None:
        """A run of this job still in progress (in any process), ignoring ones older than `stale_after` s."""
        row = await self.store.cron_running(job_id, started_after=time.time() - stale_after)
        return _run(row) if row else None

    async def abandon_stale(self, stale_after: float) -> int:
        """Runs left 'running' by a process that died: marked so, never resumed."""
        return await self.store.cron_abandon_stale(time.time() - stale_after, "the process ended during the run")

    async def interrupt_scheduled(self, previous_owner: str) -> int:
        """Scheduled runs the previous owner of the scheduler left running (it died): interrupted."""
        return await self.store.cron_interrupt_scheduled(
            f"interrupted: the gateway process running it ({previous_owner}) ended during the run")

    async def runs(self, job_id: str, *, limit: int = 50) -> list[Run]:
        return [_run(r) for r in await self.store.cron_run_rows(job_id, limit=limit)]
