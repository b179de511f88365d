"""The gateway's duties that run once in the cluster, wired to the work they stand for.

`build_node(gateway)` gives the gateway a `Node` whose duties are:

- `telegram-poller`: long polling of a Telegram bot (a second `getUpdates` gets 409). Every
  process connects its adapter for sending (`start(receive=False)`); the owner polls from the
  offset recorded on the lease row, and before every `getUpdates` records the offset it got to in
  the same statement that checks it still owns the duty (`Lease.save_cursor`), so a fenced process
  stops before its next request and a new owner resumes where the old one confirmed. What the
  old owner fetched but never recorded comes again and is dropped as a duplicate by update_id.
- `cron-scheduler`: APScheduler runs only on the owner; each fire is fenced (`still_owner`) and
  claimed in `cron_runs` by (job, scheduled time), so a new owner runs once what the old one
  missed and never repeats one it ran.
- `discord-shard-N`: the Discord gateway websocket of shard N of `[discord] shard_count` (every
  connection of a shard receives every event); every process logs in for REST, each shard's owner
  connects it, the live processes share the shards out, and every IDENTIFY waits for the bot's
  slot in the store (Discord allows one per 5 s).
- `idle-reviews`: the timer that starts a learning review of a session quiet for
  `review_idle_seconds`.
- `curator`: the weekly skill curation and the "Learned" messages of CLI approvals.
- `maintenance`: retention pruning and database upkeep.

On SQLite the one process owns them all (the pid file refuses a second gateway on a home).
Every duty's ownership shows in `/healthz`, `/metrics` and `hermes status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.cluster.duties import (
    CRON_SCHEDULER,
    CURATOR,
    IDLE_REVIEWS,
    LEADER,
    MAINTENANCE,
    TELEGRAM_POLLER,
    Duty,
    discord_shard,
)
from gateway.cluster.lease import Lease
from gateway.cluster.node import Node

log = logging.getLogger(__name__)

RECEIVER_DUTIES = {"telegram": TELEGRAM_POLLER}


class GatewayConnectionDuty:
    """A websocket only one process may hold (a Discord shard: every connection of a shard
    receives every event, DMs arrive on shard 0): opened when the duty is ours, closed when not.
    The shards of one bot are shared out among the live processes (`Duty.share`)."""

    def __init__(self, name: str, adapter: Any, shard_id: int = 0) -> None:
        self.name = name
        self.adapter = adapter
        self.shard_id = shard_id

    def duty(self) -> Duty:
        return Duty(self.name, start=self.start, stop=self.stop, share=f"{self.adapter.name}-shards")

    async def start(self, lease: Lease) -> None:
        await self.adapter.start_gateway(self.shard_id)

    async def stop(self) -> None:
        await self.adapter.stop_gateway(self.shard_id)


def identify_gate(store: Any, *, window: float = 5.0, concurrency: int = 1) -> Callable[[int], Awaitable[None]]:
    """Discord's IDENTIFY limit for the whole bot (`concurrency` sessions per `window` seconds,
    bucket `shard_id % concurrency`), held across every process by a slot in the shared store."""

    async def gate(shard_id: int) -> None:
        try:
            wait = await store.pace_reserve(f"discord:identify:{shard_id % concurrency}", window, 1)
        except Exception as exc:  # noqa: BLE001 - the store is away: space this process's own tries
            log.warning("discord: could not reserve an IDENTIFY slot (%s); waiting %.0fs", exc, window)
            wait = window
        if wait > 0:
            log.info("discord: shard %d waits %.1fs for its IDENTIFY slot", shard_id, wait)
            await asyncio.sleep(wait)

    return gate


class PollerDuty:
    """A platform receiver only one process may run (Telegram long polling), resumed from the
    offset its previous owner recorded."""

    def __init__(self, name: str, adapter: Any) -> None:
        self.name = name
        self.adapter = adapter
        self.lease: Lease | None = None

    def duty(self) -> Duty:
        return Duty(self.name, start=self.start, stop=self.stop)

    async def start(self, lease: Lease) -> None:
        self.lease = lease
        cursor = await lease.keeper.store.lease_cursor(self.name)
        offset = int(cursor) if cursor.lstrip("-").isdigit() else None
        if offset is not None:
            log.info("%s: polling from offset %d (where the previous poller got to)", self.adapter.name, offset)
        await self.adapter.start_polling(offset, guard=self._guard)

    async def _guard(self, offset: int | None) -> bool:
        lease = self.lease
        if lease is None:
            return False
        return await lease.save_cursor("" if offset is None else str(offset))

    async def stop(self) -> None:
        lease, self.lease = self.lease, None
        # a clean handover confirms what was taken; a fenced process makes no request at all
        await self.adapter.stop_polling(confirm=lease is not None and lease.held)


class TaskDuty:
    """A background loop that runs only while its duty is owned: `loop(fence)` is started as a
    task on `start` and cancelled on `stop`; it calls `await fence()` before each action."""

    def __init__(self, name: str, loop: Callable[[Callable[[], Awaitable[bool]]], Awaitable[None]]) -> None:
        self.name = name
        self.loop = loop
        self.task: asyncio.Task[None] | None = None

    def duty(self) -> Duty:
        return Duty(self.name, start=self.start, stop=self.stop)

    async def start(self, lease: Lease) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self.loop(lease.still_owner), name=f"duty-{self.name}")

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def build_node(gateway: Any, *, ttl: float | None = None, retry: float | None = None) -> Node:
    """The gateway's Node with every duty it has (see the module docstring); `start()` it once the
    adapters are connected and the cron service is installed."""
    from gateway.learning.curator import curate_loop
    from gateway.maintenance import maintenance_loop

    runtime = gateway.runtime
    metrics = gateway.metrics
    options: dict[str, float] = {}
    if ttl is not None:
        options["ttl"] = ttl
    if retry is not None:
        options["retry"] = retry
    node = Node(runtime.store, on_change=lambda duty, owned, lease: _on_change(node, metrics, duty, owned, lease),
                **options)
    for platform, adapter in gateway.adapters.items():
        if not getattr(adapter, "single_consumer", False):
            continue
        if platform == "discord":
            adapter.identify_gate = identify_gate(runtime.store)
            for shard_id in adapter.shard_ids:
                node.add(GatewayConnectionDuty(discord_shard(shard_id), adapter, shard_id).duty())
        elif platform in RECEIVER_DUTIES:
            node.add(PollerDuty(RECEIVER_DUTIES[platform], adapter).duty())
    cron = gateway.cron
    grace = lambda: gateway.grace  # noqa: E731 - read at stop time (a second signal sets it to 0)

    async def cron_start(lease: Lease) -> None:
        previous = lease.previous_owner if lease.previous_owner != node.process else ""
        await cron.start(fence=lease.still_owner, previous_owner=previous)

    async def cron_stop() -> None:
        await cron.stop(grace())

    node.add(Duty(CRON_SCHEDULER, start=cron_start, stop=cron_stop))
    learning = runtime.services.get("learning")
    if learning is not None and hasattr(learning, "start_idle_sweeper"):
        async def idle_start(lease: Lease) -> None:
            learning.start_idle_sweeper(lease.still_owner)

        node.add(Duty(IDLE_REVIEWS, start=idle_start, stop=learning.stop_idle_sweeper))
    node.add(TaskDuty(CURATOR, lambda fence: curate_loop(runtime, fence=fence)).duty())
    node.add(TaskDuty(MAINTENANCE, lambda fence: maintenance_loop(runtime.store, lambda: gateway.config.store,
                                                                  fence=fence)).duty())
    for duty in (LEADER, CRON_SCHEDULER, CURATOR, MAINTENANCE):
        metrics.duty_owned.labels(duty).set(0)
    return node


def _on_change(node: Node, metrics: Any, duty: str, owned: bool, lease: Lease) -> None:
    metrics.duty_owned.labels(duty).set(1 if owned else 0)
    if duty == LEADER:
        metrics.leader.set(1 if owned else 0)
    if owned and lease.previous_owner and lease.previous_owner != node.process:
        metrics.handovers.labels(duty).inc()
        log.info("cluster: took the %s duty over from %s", duty, lease.previous_owner)
