"""Platform messages handed from a process without connections to a running gateway, via the store.

`hermes cron run` runs a job in the CLI's own process. Its result goes to a platform chat, which
only a gateway process is connected to: `OutboxSender` queues the message in the store's outbox
and waits until a gateway has sent it (or says why it could not), and `relay_outbox` is the loop
each gateway runs that claims queued messages and sends them through its adapters, with the
same chunking, retries and idempotency keys as every other reply.

While a gateway holds messages it renews their claim every `SENDING_HEARTBEAT` seconds; every
gateway's relay also reaps, every `REAP_EVERY` seconds, claims older than `SENDING_TIMEOUT`
(their gateway was killed mid-send), so such a message is sent again while its waiter still
waits, or fails with why. A send is checked to be still this gateway's just before it starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

RELAY_EVERY = 0.5
"""Seconds between a gateway's looks at the outbox when it was empty."""
SENDING_HEARTBEAT = 3.0
"""Seconds between renewals of a gateway's claim on the messages it is sending."""
SENDING_TIMEOUT = 15.0
"""A claim not renewed for this long belongs to a gateway that stopped; the message is reaped. Short
enough that a message is sent again within `hermes cron run`'s 30 s wait by a gateway still up."""
REAP_EVERY = 5.0
"""Seconds between a gateway's looks for stale claims."""
STALE_MEMBER = 30.0
"""A cluster member whose heartbeat is older than this is not counted as running."""

SendMessage = Callable[..., Awaitable[bool]]


class OutboxUndelivered(RuntimeError):
    """The message was not delivered; the text says why and what to do."""


class _Outbox(Protocol):
    async def outbox_put(self, target: str, text: str, key: str, *, origin: str = "", ttl: float = 60.0) -> int: ...
    async def outbox_get(self, item_id: int) -> Any: ...
    async def outbox_claim(self, process: str, limit: int = 20) -> list[Any]: ...
    async def outbox_finish(self, item_id: int, *, delivered: bool, error: str = "") -> None: ...
    async def outbox_expire(self, item_id: int) -> bool: ...
    async def outbox_touch(self, item_ids: list[int], process: str) -> int: ...
    async def outbox_reap(self, timeout: float) -> Any: ...
    async def list_members(self, *, forget_after: float = 3600.0) -> list[Any]: ...


async def _reap(store: _Outbox) -> None:
    try:
        reaped = await store.outbox_reap(SENDING_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - a lost database must not end the relay
        log.warning("outbox: could not look for stale claims: %s", exc)
        return
    if reaped.requeued or reaped.failed:
        log.warning("outbox: %d message(s) whose gateway stopped while sending them queued again, %d failed",
                    reaped.requeued, reaped.failed)


async def _keep_claim(store: _Outbox, item_ids: list[int], process: str) -> None:
    """Renew the claim on a batch until cancelled (finished rows are no longer `sending`, so skipped)."""
    while True:
        await asyncio.sleep(SENDING_HEARTBEAT)
        try:
            await store.outbox_touch(item_ids, process)
        except Exception as exc:  # noqa: BLE001 - the next renewal may get through
            log.warning("outbox: could not renew the claim on %d message(s): %s", len(item_ids), exc)


async def _still_mine(store: _Outbox, item: Any, process: str) -> bool:
    try:
        return bool(await store.outbox_touch([item.id], process))
    except Exception as exc:  # noqa: BLE001 - the claim was ours a moment ago: send
        log.warning("outbox: could not renew the claim on message %s: %s", item.id, exc)
        return True


async def relay_outbox(store: _Outbox, send_message: SendMessage, process: str) -> None:
    """Forever: claim queued messages and send them; each row ends `delivered` or `failed` with why.
    Also reaps other gateways' stale claims every `REAP_EVERY` seconds."""
    next_reap = time.monotonic()
    while True:
        if time.monotonic() >= next_reap:
            next_reap = time.monotonic() + REAP_EVERY
            await _reap(store)
        try:
            items = await store.outbox_claim(process)
        except Exception as exc:  # noqa: BLE001 - a lost database must not end the relay
            log.warning("outbox: could not read the queue: %s", exc)
            await asyncio.sleep(RELAY_EVERY * 4)
            continue
        if not items:
            await asyncio.sleep(RELAY_EVERY)
            continue
        keeper = asyncio.create_task(_keep_claim(store, [i.id for i in items], process), name="outbox-claim")
        try:
            for item in items:
                if not await _still_mine(store, item, process):
                    log.warning("outbox: message %s to %s was reaped from this gateway; not sent here", item.id,
                                item.target)
                    continue
                platform, _, chat_id = item.target.partition(":")
                try:
                    delivered = await send_message(platform, chat_id, item.text, key=item.idempotency_key)
                    error = "" if delivered else "kept in the gateway's undelivered list"
                except Exception as exc:  # noqa: BLE001 - recorded for the waiting process
                    delivered, error = False, f"{type(exc).__name__}: {exc}"
                log.info("outbox: %s to %s from %s: %s", "delivered" if delivered else "not delivered",
                         item.target, item.origin or "?", error or "ok")
                try:
                    await store.outbox_finish(item.id, delivered=bool(delivered), error=error)
                except Exception as exc:  # noqa: BLE001 - a lost database must not end the relay
                    log.warning("outbox: could not record the outcome of message %s: %s", item.id, exc)
        finally:
            keeper.cancel()


class OutboxSender:
    """`services["send_message"]` of a process without adapters: queue, then wait for a gateway.

    Raises OutboxUndelivered when no gateway runs on this home (checked first, so nothing waits
    for nobody), when none took the message within `wait` seconds (the row is withdrawn, so it is
    never sent late), or when the gateway that took it could not deliver it."""

    def __init__(self, store: _Outbox, home_root: Path, *, origin: str = "", wait: float = 30.0) -> None:
        self.store = store
        self.home_root = home_root
        self.origin = origin
        self.wait = wait

    async def gateway_running(self) -> bool:
        from gateway.pidfile import running_gateway_pid

        if await asyncio.to_thread(running_gateway_pid, self.home_root) is not None:
            return True
        members = await self.store.list_members()
        return any(time.time() - m.heartbeat_at < STALE_MEMBER for m in members)

    async def __call__(self, platform: str, chat_id: str, text: str, thread_id: str | None = None,
                       key: str = "") -> bool:
        if thread_id is not None:
            raise ValueError("the outbox sends to a chat target (platform:chat); put a thread in the target")
        target = f"{platform}:{chat_id}"
        if not await self.gateway_running():
            raise OutboxUndelivered(f"no gateway is running on {self.home_root} to deliver to {platform}: start "
                                    "`hermes gateway` (or use the dashboard's Run now)")
        item_id = await self.store.outbox_put(target, text, key or f"outbox:{time.time_ns()}",
                                              origin=self.origin, ttl=self.wait)
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            item = await self.store.outbox_get(item_id)
            if item is not None and item.state == "delivered":
                return True
            if item is not None and item.state == "failed":
                raise OutboxUndelivered(f"the gateway could not deliver it: {item.error}")
            await asyncio.sleep(0.1)
        if await self.store.outbox_expire(item_id):
            raise OutboxUndelivered(f"no gateway took it within {self.wait:.0f}s (is {platform} enabled in the "
                                    "running gateway's config?)")
        raise OutboxUndelivered(f"a gateway took it but did not finish within {self.wait:.0f}s; it may still arrive")
