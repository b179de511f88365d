"""The duties that run once in the cluster, and the runner that starts each only while it holds its lease.

Everything not named here runs on every process: the HTTP port (API, web chat, dashboard,
webhooks), turns, learning reviews, deliveries.

`DutyRunner` keeps one loop per duty: try the lease; when it is ours, `start(lease)` the duty;
when the lease is lost (connection ended, not renewed, taken over) `stop()` it at once; then try
again every `retry` seconds, so a follower takes over within TTL + retry of the leader's death
(on PostgreSQL the server frees a dead process's advisory locks within milliseconds, so it is
usually `retry`). `start_all()` makes a first round before returning, so a single process (SQLite,
or the first of a cluster) has its duties running when the gateway's start returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.cluster.lease import Lease, LeaseKeeper

log = logging.getLogger(__name__)

LEADER = "leader"                    # no work of its own: the process holding it is "the leader"
TELEGRAM_POLLER = "telegram-poller"  # one getUpdates consumer per bot (a second one gets 409)
CRON_SCHEDULER = "cron-scheduler"    # APScheduler job stores must never be shared
CURATOR = "curator"                  # the weekly skill curation and "learned" announcements
IDLE_REVIEWS = "idle-reviews"        # timers that start a learning review after idle minutes
MAINTENANCE = "maintenance"          # retention pruning and database upkeep
ALL_DUTIES = (LEADER, TELEGRAM_POLLER, CRON_SCHEDULER, CURATOR, IDLE_REVIEWS, MAINTENANCE)


def discord_shard(shard_id: int) -> str:
    """Each Discord shard is its own duty: two connections of one shard answer every event twice."""
    return f"discord-shard-{shard_id}"


async def _nothing(_lease: Lease | None = None) -> None:
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass
class Duty:
    """`start(lease)` begins the work (and returns); `stop()` ends it. Both are idempotent.

    `share`: the name of a group of like duties (Discord's shards) that the live processes
    divide among themselves instead of the first one taking them all (see `FairShare`)."""

    name: str
    start: Callable[[Lease], Awaitable[None]] = _nothing
    stop: Callable[[], Awaitable[None]] = _nothing
    share: str = ""


OnChange = Callable[[str, bool, Lease], None]


class DutyRunner:
    def __init__(self, keeper: LeaseKeeper, *, retry: float = 1.0, on_change: OnChange | None = None) -> None:
        self.keeper = keeper
        self.retry = retry
        self.on_change = on_change
        self.duties: dict[str, Duty] = {}
        self.running: dict[str, Lease] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._failing: set[str] = set()      # duties whose last lease try failed (the store was away)
        self.fair = FairShare(self)

    def add(self, duty: Duty) -> None:
        self.duties[duty.name] = duty

    def owns(self, name: str) -> bool:
        lease = self.running.get(name)
        return lease is not None and lease.held

    async def start_all(self) -> None:
        """One acquisition round now, then a loop per duty in the background."""
        for duty in self.duties.values():
            await self._try_start(duty)
        for duty in self.duties.values():
            self._tasks[duty.name] = asyncio.create_task(self._hold(duty), name=f"duty-{duty.name}")

    async def _try_start(self, duty: Duty) -> Lease | None:
        try:
            lease = await self.keeper.try_acquire(duty.name)
        except Exception as exc:  # noqa: BLE001 - the store is away: try again later
            # once per outage, not once a second per duty
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "cluster: could not try the %s lease (trying again every %gs): %s",
                    duty.name, self.retry, _first_line(exc))
            self._failing.add(duty.name)
            return None
        if duty.name in self._failing:
            self._failing.discard(duty.name)
            if not self._failing:
                log.warning("cluster: the store answers again; the duties are tried again")
        if lease is None or duty.name in self.running:
            return lease
        try:
            await duty.start(lease)
        except Exception:
            log.exception("cluster: the %s duty failed to start; giving its lease back", duty.name)
            await self.keeper.release(lease)
            return None
        self.running[duty.name] = lease
        if self.on_change is not None:
            self.on_change(duty.name, True, lease)
        return lease

    async def _hold(self, duty: Duty) -> None:
        while not self._stopping:
            lease = self.running.get(duty.name)
            if lease is None and (not duty.share or await self.fair.may_take(duty)):
                lease = await self._try_start(duty)
            if lease is None:
                await asyncio.sleep(self.retry)
                continue
            if not duty.share:
                await lease.lost.wait()
            elif not await self._hold_share(duty, lease):
                continue                      # handed to a process with fewer of the group
            await self._stop_duty(duty)

    async def _hold_share(self, duty: Duty, lease: Lease) -> bool:
        """Hold a shared duty until its lease is lost (True) or it is handed back because this
        process holds more of its group than its share (False: released, cleanly)."""
        while not lease.lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lease.lost.wait(), self.fair.rebalance_every)
                return True
            if await self.fair.should_release(duty):
                log.info("cluster: handing the %s duty to a process with fewer of %s", duty.name, duty.share)
                await self._stop_duty(duty)
                await self.keeper.release(lease)
                return False
        return True

    async def _stop_duty(self, duty: Duty) -> None:
        lease = self.running.pop(duty.name, None)
        if lease is None:
            return
        if lease.lost.is_set() and not self._stopping:
            log.warning("cluster: stopping the %s duty: its lease is lost", duty.name)
        try:
            await duty.stop()
        except Exception:
            log.exception("cluster: the %s duty did not stop cleanly", duty.name)
        if self.on_change is not None:
            self.on_change(duty.name, False, lease)

    async def stop_all(self) -> None:
        """Stop every running duty and give its lease back (a clean shutdown hands over at once)."""
        self._stopping = True
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for name in list(self.running):
            lease = self.running[name]
            await self._stop_duty(self.duties[name])
            await self.keeper.release(lease)


class FairShare:
    """Divides a group of like duties (`Duty.share`) among the live processes of the cluster.

    A process takes a free duty of a group while it holds fewer than its share,
    ceil(group size / live processes); a free duty nobody else took within `grace` seconds is
    taken anyway, so a group is never left unowned by a process that cannot take it. Every
    `rebalance_every` seconds a process holding more than its share (a process joined) hands back
    the last of its group in name order; one that just handed a duty back waits `grace` before
    taking it again, so the joining process gets it. Live: a heartbeat within 3 lease TTLs.
    """

    def __init__(self, runner: DutyRunner, *, grace: float = 3.0, rebalance_every: float = 5.0) -> None:
        self.runner = runner
        self.grace = grace
        self.rebalance_every = rebalance_every
        self._free_since: dict[str, float] = {}
        self._released_at: dict[str, float] = {}

    def _group(self, share: str) -> list[str]:
        return sorted(name for name, duty in self.runner.duties.items() if duty.share == share)

    def _held(self, share: str) -> list[str]:
        return [name for name in self._group(share) if name in self.runner.running]

    async def _share(self, share: str) -> int:
        keeper = self.runner.keeper
        now = time.time()
        members = await keeper.store.list_members()
        live = sum(1 for m in members if m.heartbeat_at > now - 3 * keeper.ttl) or 1
        return math.ceil(len(self._group(share)) / live)

    async def may_take(self, duty: Duty) -> bool:
        now = time.monotonic()
        if now - self._released_at.get(duty.name, -math.inf) < self.grace:
            return False
        try:
            if len(self._held(duty.share)) < await self._share(duty.share):
                self._free_since.pop(duty.name, None)
                return True
            record = await self.runner.keeper.store.lease(duty.name)
        except Exception:  # noqa: BLE001 - the store is away: the lease try says so, once
            return True
        if record is not None and record.live():
            self._free_since.pop(duty.name, None)
            return False
        since = self._free_since.setdefault(duty.name, now)
        return now - since >= self.grace

    async def should_release(self, duty: Duty) -> bool:
        try:
            share = await self._share(duty.share)
        except Exception:  # noqa: BLE001 - keep what we hold while the store is away
            return False
        held = self._held(duty.share)
        if len(held) <= share or held[-1] != duty.name:
            return False
        self._released_at[duty.name] = time.monotonic()
        return True
