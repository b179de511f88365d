"""Managing jobs (create, list, pause, resume, remove, history) for the CLI and the `cron` tool,
and `CronService`: the same plus the scheduler and runner inside a running Runtime.

Everything a user types is checked when the job is created: the schedule (the field named),
the time zone, the delivery target (platform enabled, file inside HERMES_HOME for the tool),
and the skill (it must be in the target's library). Nothing is left to fail at 3 a.m.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.config import Config
from gateway.cron.jobs import Job, JobStore, Run
from gateway.cron.runner import Runner, RunOutcome
from gateway.cron.schedule import DEFAULT_MIN_INTERVAL, Schedule, check_timezone, parse_schedule
from gateway.cron.scheduler import CronScheduler
from gateway.cron.targets import Target, parse_target, team_for
from gateway.home import Home
from gateway.store import SessionRecord, StateStore

log = logging.getLogger(__name__)

MAX_NAME = 80
MAX_PROMPT = 8_000


class CronInputError(ValueError):
    """Input to a job that cannot be used; the message names the field."""


def default_name(prompt: str, skill: str) -> str:
    if skill:
        return skill
    words = re.sub(r"\s+", " ", prompt).strip()
    return (words[:40].rstrip() + "…") if len(words) > 40 else words


class CronManager:
    """Jobs in the store, validated on the way in. Needs no model: the CLI uses it directly."""

    def __init__(self, config: Config, home: Home, store: StateStore, *, libraries: Any = None,
                 min_interval: int = DEFAULT_MIN_INTERVAL) -> None:
        self.config = config
        self.home = home
        self.jobs = JobStore(store)
        self.libraries = libraries          # gateway.skills_wiring.SkillLibraries, to check skill names
        self.min_interval = min_interval

    async def create(self, schedule: str, *, prompt: str = "", skill: str = "", deliver: str = "origin",
                     tz: str = "", name: str = "", model: str = "", origin: SessionRecord | None = None,
                     owner: str = "", allow_outside_home: bool = False) -> Job:
        prompt, skill, name = (prompt or "").strip(), (skill or "").strip().lower(), (name or "").strip()
        if not prompt and not skill:
            raise CronInputError("prompt: give the prompt to run, or a skill (or both)")
        if len(prompt) > MAX_PROMPT:
            raise CronInputError(f"prompt: {len(prompt)} characters, at most {MAX_PROMPT}")
        if len(name) > MAX_NAME:
            raise CronInputError(f"name: {len(name)} characters, at most {MAX_NAME}")
        zone = check_timezone(tz or self.config.cron.timezone).key
        parsed = parse_schedule(schedule, zone, min_interval=self.min_interval)
        target = parse_target(deliver or "origin", self.config, self.home, origin=origin,
                              allow_outside_home=allow_outside_home)
        team = self._team(target, origin)
        if skill:
            await self._check_skill(skill, team)
        return await self.jobs.create(
            name=name or default_name(prompt, skill), schedule=parsed, prompt=prompt, skill=skill,
            model=(model or "").strip(), target=str(target), origin_session=origin.id if origin else "",
            owner=owner, team=team)

    def _team(self, target: Target, origin: SessionRecord | None) -> str:
        if target.is_platform:
            return team_for(self.config, target.scheme, target.value)
        return origin.team if origin is not None else ""

    async def _check_skill(self, skill: str, team: str) -> None:
        if self.libraries is None:
            return
        from skills.library import SkillError

        library = await self.libraries.get(team)
        try:
            await library.get(skill)
        except (SkillError, ValueError):
            where = f" of team {team}" if team else ""
            raise CronInputError(f"skill: there is no skill named {skill!r} in the library{where} "
                                 "(see `hermes skills list`)") from None

    async def get(self, job_id: str, *, owner: str | None = None) -> Job:
        return await self.jobs.get(job_id, owner=owner)

    async def list(self, *, owner: str | None = None) -> list[Job]:
        return await self.jobs.list(owner=owner)

    async def pause(self, job_id: str, *, owner: str | None = None) -> Job:
        return await self.jobs.set_paused(job_id, True, owner=owner)

    async def resume(self, job_id: str, *, owner: str | None = None) -> Job:
        """Resume a paused job; refused (the job stays paused) when its next time cannot be computed."""
        from datetime import UTC, datetime

        from gateway.cron.crontime import NoFireTime

        job = await self.jobs.get(job_id, owner=owner)
        try:
            job.parsed().next_after(datetime.now(UTC))
        except (ValueError, NoFireTime) as exc:
            raise CronInputError(f"schedule: job {job.id} cannot be resumed: {job.schedule!r} ({job.timezone}) "
                                 f"has no next run time ({exc}); remove it and add a corrected job") from None
        return await self.jobs.set_paused(job.id, False, owner=owner)

    async def remove(self, job_id: str, *, owner: str | None = None) -> Job:
        return await self.jobs.remove(job_id, owner=owner)

    async def runs(self, job_id: str, *, owner: str | None = None, limit: int = 50) -> list[Run]:
        job = await self.jobs.get(job_id, owner=owner)
        return await self.jobs.runs(job.id, limit=limit)


class CronService(CronManager):
    """Jobs plus the scheduler and runner of a Runtime: `runtime.services["cron"]`."""

    def __init__(self, runtime: Any, *, min_interval: int = DEFAULT_MIN_INTERVAL, sync_interval: float = 5.0) -> None:
        super().__init__(runtime.config, runtime.home, runtime.store,
                         libraries=runtime.services.get("skill_libraries"), min_interval=min_interval)
        self.runtime = runtime
        self.runner = Runner(runtime, self.jobs)
        settings = runtime.config.cron
        self.scheduler = CronScheduler(self.jobs, self.runner, grace_seconds=settings.grace_seconds,
                                       timeout=settings.timeout, default_timezone=settings.timezone,
                                       sync_interval=sync_interval)

    async def start(self, fence: Callable[[], Awaitable[bool]] | None = None, *, previous_owner: str = "") -> None:
        """Load the jobs and start firing them (no-op when `[cron] enabled = false`); `fence` is the
        cron-scheduler duty's ownership check, made before every scheduled fire; `previous_owner`
        the process that held the duty before (its unfinished runs are recorded as interrupted)."""
        if self.libraries is None:
            self.libraries = self.runtime.services.get("skill_libraries")
        if not self.config.cron.enabled:
            log.info("cron: disabled in the configuration ([cron] enabled = false)")
            return
        await self.scheduler.start(fence, previous_owner=previous_owner)
        jobs = [j for j in await self.jobs.list() if j.state == "active"]
        log.info("cron: %d active job(s) scheduled", len(jobs))

    async def stop(self, grace: float = 30.0) -> None:
        await self.scheduler.stop(grace)

    async def create(self, schedule: str, **kwargs: Any) -> Job:  # type: ignore[override]
        job = await super().create(schedule, **kwargs)
        await self.scheduler.refresh()
        return job

    async def pause(self, job_id: str, *, owner: str | None = None) -> Job:
        job = await super().pause(job_id, owner=owner)
        await self.scheduler.refresh()
        return job

    async def resume(self, job_id: str, *, owner: str | None = None) -> Job:
        job = await super().resume(job_id, owner=owner)
        await self.scheduler.refresh()
        return job

    async def remove(self, job_id: str, *, owner: str | None = None) -> Job:
        job = await super().remove(job_id, owner=owner)
        await self.scheduler.refresh()
        return job

    def add_callback(self, name: str, schedule: str, callback: Callable[[], Awaitable[Any]], *,
                     tz: str = "") -> Schedule:
        """Run `await callback()` in the gateway on `schedule` (a cron expression or 'every 30m'; zone
        `tz`, default `[cron] timezone`), e.g. the weekly skill curator. Raises ScheduleError naming
        the field when the schedule is wrong. Not stored; no catch-up after a restart."""
        parsed = parse_schedule(schedule, check_timezone(tz or self.config.cron.timezone).key, min_interval=1)
        self.scheduler.add_callback(name, parsed, callback)
        return parsed

    async def run_now(self, job_id: str, *, owner: str | None = None) -> asyncio.Task[RunOutcome | None]:
        job = await self.jobs.get(job_id, owner=owner)
        return await self.scheduler.run_now(job)
