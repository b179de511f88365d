"""Discord gateway connections, one per shard, each opened and closed on its own.

Discord splits a bot's guilds over `shard_count` shards (a guild's shard is
`(guild_id >> 22) % shard_count`; DMs arrive on shard 0), and every connection of one shard
receives every event of that shard. So each shard is a connection that only one process of a
cluster may hold, and the processes hold different shards. discord.py runs a single shard with
`Client(shard_id=i, shard_count=n)`; `AutoShardedClient(shard_ids=...)` runs a fixed subset, but
the subset a process owns changes at every handover, so we keep one `Client` per shard: a shard
is opened when its duty becomes ours and closed when it is lost, without touching the others.

IDENTIFY is rate limited per bot (`max_concurrency` sessions per 5 s, 1,000 a day) across every
process, not per client, so every IDENTIFY first waits for the `identify_gate` the gateway wires
in (a slot reserved in the shared store); discord.py documents `before_identify_hook` for exactly
this. Without a gate, discord.py's own default applies (5 s before a re-IDENTIFY).

An unsharded bot (`shard_count = 1`) keeps one client for REST and its gateway connection, and
closing the connection leaves the HTTP session for sending open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

log = logging.getLogger(__name__)

IdentifyGate = Callable[[int], Awaitable[None]]
IDENTIFY_WINDOW = 5.0          # Discord: max_concurrency IDENTIFYs per 5 seconds


class GatedClient(discord.Client):
    """A discord.py client whose every IDENTIFY first asks `gate(shard_id)` when one is set
    (`identify_gate` may be set after the client is made, once the store is open)."""

    def __init__(self, *, identify_gate: Callable[[], IdentifyGate | None], **options: Any) -> None:
        super().__init__(**options)
        self._identify_gate = identify_gate

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        gate = self._identify_gate()
        if gate is None:
            await super().before_identify_hook(shard_id, initial=initial)
            return
        await gate(shard_id or 0)


class ShardConnection:
    """One gateway websocket on `client` (shard `shard_id`, or unsharded when None).

    `owns_client`: the client exists for this shard only and is closed with it; otherwise (the
    unsharded bot's REST client) only the websocket closes and sending keeps working.
    """

    def __init__(self, client: discord.Client, shard_id: int | None, *, owns_client: bool) -> None:
        self.client = client
        self.shard_id = shard_id
        self.owns_client = owns_client
        self.ready = asyncio.Event()
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        return "gateway" if self.shard_id is None else f"shard {self.shard_id}"

    @property
    def open(self) -> bool:
        return self._task is not None and not self._task.done()

    async def connect(self, timeout: float) -> None:
        """Open the websocket and wait for READY; RuntimeError (closed again) when none comes."""
        if self.open:
            return
        self.ready.clear()
        self.last_error = ""
        self._task = asyncio.create_task(self._run(), name=f"discord-{self.label.replace(' ', '-')}")
        ready = asyncio.create_task(self.ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            error = self.last_error or f"no READY from the gateway within {timeout:.0f}s"
            await self.close()
            raise RuntimeError(f"discord: could not connect ({self.label}): {error}")

    async def _run(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            self.last_error = ("the Message Content intent is not enabled for this bot "
                               "(Developer Portal → Bot → Privileged Gateway Intents)")
            log.error("discord: %s", self.last_error)
        except Exception as exc:                     # e.g. 4004 authentication failed, 4010 invalid shard
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("discord: the %s connection ended: %s", self.label, self.last_error)

    async def close(self) -> None:
        """Close the websocket and stop reconnecting (and the client, when it is this shard's own)."""
        task, self._task = self._task, None
        if self.owns_client:
            await self.client.close()
            if task is not None:
                try:
                    await asyncio.wait_for(task, 10)
                except (TimeoutError, asyncio.CancelledError):
                    task.cancel()
        else:
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            ws = getattr(self.client, "ws", None)
            if ws is not None and ws.open:
                try:
                    await ws.close(code=1000)
                except Exception as exc:  # noqa: BLE001 - a dead socket closes with an error
                    log.debug("discord: closing the %s connection: %s", self.label, exc)
        self.ready.clear()
