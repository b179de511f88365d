"""The scheduler: APScheduler 3.x `AsyncIOScheduler` in the gateway's event loop, fed from our tables.

- Jobs come from `cron_jobs` at start and are re-read when the table changes (the CLI adds,
  pauses or removes jobs from another process; a poll every `sync_interval` seconds notices).
  APScheduler keeps only in-memory timers: its job store is never the source of truth.
- No overlap: APScheduler's `max_instances=1` (its job awaits the run) plus a per-job lock
  shared with `run_now`; a run that would overlap is skipped and recorded as such.
- Misfires: at start, the latest scheduled time missed while the gateway was down (after the
  job's last recorded run) runs once when it is within `[cron].grace_seconds`, and is skipped
  with a log line (and a `skipped` run row) otherwise; several missed times coalesce into one.
- A scheduled time is claimed in `cron_runs` before it runs, so a restart never runs it twice.
- Several gateway processes: only the owner of the cron-scheduler duty runs a scheduler
  (`start(fence)` when it gets the duty, `stop()` when it loses it; it can start again), and
  `await fence()` runs before each scheduled fire: a process that lost the duty fires nothing
  more, and the claim in `cron_runs` keeps a time the old owner did run from running again.
- Nothing here can stall the loop: cron times come from `CroniterTrigger` (bounded searches,
  never raises), and a job whose schedule no longer parses or whose next time cannot be
  computed is paused with the reason (shown by `hermes cron list`, logged); the others go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway.cron.crontime import NoFireTime
from gateway.cron.jobs import Job, JobStore, iso_utc
from gateway.cron.runner import Runner, RunOutcome
from gateway.cron.schedule import Schedule

log = logging.getLogger(__name__)

STALE_MARGIN = 120.0   # a 'running' row older than timeout + this was left by a dead process


class JobBusy(RuntimeError):
    """The job is running right now; it never runs twice at once."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class CronScheduler:
    def __init__(self, jobs: JobStore, runner: Runner, *, grace_seconds: int, timeout: float,
                 default_timezone: str = "UTC", sync_interval: float = 5.0,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.jobs = jobs
        self.clock = clock
        self.runner = runner
        self.grace = timedelta(seconds=grace_seconds)
        self.stale_after = timeout + STALE_MARGIN
        self.sync_interval = sync_interval
        self._timezone = default_timezone
        self._aps = self._new_aps()
        self.fence: Callable[[], Awaitable[bool]] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._scheduled: dict[str, tuple[str, str, float]] = {}
        self._version: tuple[int, float] | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._started = False
        self._callbacks: dict[str, tuple[Schedule, Callable[[], Awaitable[Any]]]] = {}

    def _new_aps(self) -> AsyncIOScheduler:
        return AsyncIOScheduler(timezone=self._timezone, job_defaults={
            "max_instances": 1, "coalesce": True, "misfire_grace_time": max(1, int(self.grace.total_seconds()))})

    @property
    def running(self) -> bool:
        return self._started

    async def start(self, fence: Callable[[], Awaitable[bool]] | None = None, *, previous_owner: str = "") -> None:
        """Start timers for every active job and run what was missed within grace (idempotent).
        `fence` (a cluster duty's ownership check) runs before every scheduled or missed fire;
        `previous_owner` names the process that ran the scheduler before this one (it died or
        lost the duty): the scheduled runs it left running are recorded as interrupted."""
        if self._started:
            return
        self._started = True
        self.fence = fence
        self._aps = self._new_aps()   # after a stop (a lost duty) the timers start afresh
        self._scheduled.clear()
        if previous_owner:
            cut = await self.jobs.interrupt_scheduled(previous_owner)
            if cut:
                log.warning("cron: %d run(s) were cut short when %s stopped running the scheduler", cut,
                            previous_owner)
        abandoned = await self.jobs.abandon_stale(self.stale_after)
        if abandoned:
            log.warning("cron: %d run(s) were cut short when the gateway last stopped", abandoned)
        self._aps.start()
        for name in self._callbacks:
            self._add_callback_job(name)
        for job in await self._sync():
            try:
                await self._catch_up(job)
            except Exception:   # one job's trouble never keeps the others from starting
                log.exception("cron job %s (%s): catch-up failed", job.id, job.name)
        self._sync_task = asyncio.create_task(self._sync_loop(), name="cron-sync")

    async def stop(self, grace: float = 30.0) -> None:
        """Stop firing; let running jobs finish within `grace` seconds, then cancel them."""
        if not self._started:
            return
        self._started = False
        if self._sync_task is not None:
            self._sync_task.cancel()
            await asyncio.gather(self._sync_task, return_exceptions=True)
        if self._aps.running:
            self._aps.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the next loop iteration
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("cron: cancelled %d run(s) still going after %.0fs", len(pending), grace)
                await asyncio.gather(*pending, return_exceptions=True)

    # -- internal callbacks (not stored: e.g. the weekly skill curator) -----------------------------
    def add_callback(self, name: str, schedule: Schedule, callback: Callable[[], Awaitable[Any]]) -> None:
        """Run `await callback()` on `schedule` while the scheduler runs (replacing one of that name).

        Not stored and not made up after a restart; never two at once; an exception is logged and
        the next time still comes. The schedule's times obey the same rules as jobs' (DST, bounds).
        """
        self._callbacks[name] = (schedule, callback)
        if self._started:
            self._add_callback_job(name)

    def _add_callback_job(self, name: str) -> None:
        schedule, _ = self._callbacks[name]

        def on_error(reason: str) -> None:
            log.error("cron: internal callback %s stopped: %s", name, reason)

        self._aps.add_job(self._run_callback, schedule.trigger(catch_up=self.grace, on_error=on_error), args=[name],
                          id=f"internal:{name}", name=name, replace_existing=True)

    async def _run_callback(self, name: str) -> None:
        entry = self._callbacks.get(name)
        if entry is None:
            return
        try:
            await entry[1]()
        except Exception:
            log.exception("cron: internal callback %s failed", name)

    # -- keeping APScheduler in step with the tables ----------------------------------------------
    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                if await self.jobs.version() != self._version:
                    await self._sync()
            except Exception:
                log.exception("cron: could not re-read the jobs")

    async def refresh(self) -> None:
        """Re-read the jobs now (after a change made in this process)."""
        if self._started:
            await self._sync()

    async def _sync(self) -> list[Job]:
        self._version = await self.jobs.version()
        jobs = await self.jobs.list()
        now = self.clock()
        active: set[str] = set()
        for job in jobs:
            if job.paused or job.done:
                continue
            signature = (job.schedule, job.timezone, job.created_at)
            active.add(job.id)
            if self._scheduled.get(job.id) == signature:
                continue
            try:
                schedule = job.parsed()
                schedule.next_after(now)      # bounded; NoFireTime when there is no next time
            except (ValueError, NoFireTime) as exc:
                active.discard(job.id)
                await self._pause(job, f"its schedule {job.schedule!r} ({job.timezone}) cannot be used: {exc}")
                continue
            if schedule.kind == "once" and schedule.at is not None and schedule.at <= now:
                self._scheduled[job.id] = signature   # past one-off: only the start-up catch-up may run it
                continue
            self._aps.add_job(self._fire, self._trigger(job, schedule), args=[job.id], id=job.id, name=job.name,
                              replace_existing=True)
            self._scheduled[job.id] = signature
        for job_id in list(self._scheduled):
            if job_id not in active:
                del self._scheduled[job_id]
                if self._aps.get_job(job_id) is not None:
                    self._aps.remove_job(job_id)
        return [job for job in jobs if job.id in active]

    def _trigger(self, job: Job, schedule: Schedule) -> Any:
        def on_error(reason: str) -> None:   # called by APScheduler on the loop: pause off its call stack
            self._track(asyncio.get_running_loop().create_task(self._pause(job, reason)))

        return schedule.trigger(catch_up=self.grace + timedelta(seconds=60), on_error=on_error)

    async def _pause(self, job: Job, reason: str) -> None:
        """Pause a job the scheduler cannot run, saying why; every other job keeps running."""
        log.error("cron job %s (%s) paused: %s", job.id, job.name, reason)
        try:
            await self.jobs.pause_for(job.id, reason)
        except Exception:
            log.exception("cron job %s: could not record the pause", job.id)
        self._scheduled.pop(job.id, None)
        if self._aps.get_job(job.id) is not None:
            self._aps.remove_job(job.id)

    async def _catch_up(self, job: Job) -> None:
        now = self.clock()
        recorded = await self.jobs.last_scheduled(job.id)
        since = max(datetime.fromtimestamp(max(job.created_at, job.updated_at), UTC),
                    recorded or datetime.min.replace(tzinfo=UTC))
        missed = job.parsed().last_due(now, since)
        if missed is None:
            return
        late = now - missed
        if late <= self.grace:
            log.info("cron job %s (%s): running the run missed at %s (%.0fs late, within grace)", job.id,
                     job.name, iso_utc(missed), late.total_seconds())
            self._launch(job, missed, "catchup")
        else:
            log.warning("cron job %s (%s): skipping the run missed at %s: %.0fs late, grace is %.0fs", job.id,
                        job.name, iso_utc(missed), late.total_seconds(), self.grace.total_seconds())
            await self.jobs.record_skip(job.id, missed, f"missed while the gateway was down ({late.total_seconds():.0f}s "
                                                        f"late, grace {self.grace.total_seconds():.0f}s)")
            if job.kind == "once":
                await self.jobs.mark_done(job.id)

    # -- firing ------------------------------------------------------------------------------------
    async def _fire(self, job_id: str) -> None:
        """APScheduler's job: find the scheduled time that is due and run it (awaited: max_instances)."""
        now = self.clock()
        try:
            job = await self.jobs.get(job_id)
        except LookupError:
            return
        if job.paused or job.done:
            return
        try:
            scheduled = job.parsed().last_due(now, now - self.grace - timedelta(seconds=60)) or now
        except (ValueError, NoFireTime) as exc:
            await self._pause(job, f"its schedule {job.schedule!r} ({job.timezone}) cannot be used: {exc}")
            return
        task = self._launch(job, scheduled, "schedule")
        if task is not None:
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                pass  # APScheduler shutting down: the run itself goes on, and stop() waits for it

    def lock_for(self, job_id: str) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())

    def _launch(self, job: Job, scheduled: datetime, cause: str) -> asyncio.Task[RunOutcome | None] | None:
        lock = self.lock_for(job.id)
        if lock.locked():
            log.warning("cron job %s (%s): still running; the run for %s is skipped (no overlap)", job.id,
                        job.name, iso_utc(scheduled))
            self._track(asyncio.create_task(self.jobs.record_skip(job.id, scheduled, "the previous run was still going")))
            return None
        task = asyncio.create_task(self._run_locked(lock, job, scheduled, cause), name=f"cron-{job.id}")
        self._track(task)
        return task

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_locked(self, lock: asyncio.Lock, job: Job, scheduled: datetime, cause: str) -> RunOutcome | None:
        async with lock:
            if cause != "manual" and self.fence is not None and not await self.fence():
                log.warning("cron job %s (%s): the run for %s is left to the process that owns the scheduler now",
                            job.id, job.name, iso_utc(scheduled))
                return None
            outcome = await self.runner.run(job, scheduled, cause)
        if job.kind == "once" and cause != "manual":
            await self.jobs.mark_done(job.id)
            await self.refresh()
        return outcome

    async def run_now(self, job: Job) -> asyncio.Task[RunOutcome | None]:
        """Start a manual run at once; JobBusy when the job is running here or in another process."""
        if self.lock_for(job.id).locked() or await self.jobs.running(job.id, stale_after=self.stale_after):
            raise JobBusy(f"job {job.id} is running right now; it never runs twice at once")
        task = self._launch(job, self.clock(), "manual")
        if task is None:
            raise JobBusy(f"job {job.id} is running right now; it never runs twice at once")
        return task
