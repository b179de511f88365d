"""Wake-ups between the processes of a cluster: "look now" for what another process wrote.

A process that writes something another process must act on (a `/stop` for a session whose
turn runs elsewhere, an approval answered away from the turn that waits for it) also sends a
wake-up on that concern's channel; every process listens on one connection of its own (LISTEN
on PostgreSQL, gateway/store/notify.py) and calls the channel's handlers, which read the tables
and act at once. The tables are the truth and each concern's tick the fallback: a wake-up lost
while the listener reconnects (every `retry_every` seconds while the store is away) delays the
action by that tick, nothing more. On SQLite the one process wakes its own handlers directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from gateway.store import StateStore
from gateway.store.notify import Handler

log = logging.getLogger(__name__)

TURN_STOP = "hermes_turn_stop"             # payload: the session key whose turn should stop
APPROVAL_ANSWERED = "hermes_approval"      # payload: the approval request id that was answered


class Wakeups:
    def __init__(self, store: StateStore, *, retry_every: float = 2.0) -> None:
        self.store = store
        self.retry_every = retry_every
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        self.connections = 0               # listen connections opened so far (a reconnect counts)

    def on(self, channel: str, handler: Handler) -> None:
        """Call `handler(payload)` for every wake-up on `channel` (register before `start`)."""
        self._handlers[channel].append(handler)

    async def start(self) -> None:
        if self.store.db.is_postgresql:
            self._listener = asyncio.create_task(self._keep_listening(), name="wakeups")

    async def send(self, channel: str, payload: str) -> None:
        """Wake whoever must act on `payload` (its row is already written); never raises."""
        try:
            if await self.store.notify(channel, payload):
                return
        except Exception as exc:  # noqa: BLE001 - the tick finds the row anyway
            log.warning("could not send a wake-up on %s: %s", channel, exc)
            return
        self._dispatch(channel, payload)          # SQLite: this process is the only one

    def _dispatch(self, channel: str, payload: str) -> None:
        for handler in self._handlers.get(channel, ()):
            try:
                handler(payload)
            except Exception:  # noqa: BLE001 - one handler's error must not stop the others
                log.exception("a wake-up handler of %s failed", channel)

    async def _keep_listening(self) -> None:
        handlers = {channel: (lambda payload, c=channel: self._dispatch(c, payload)) for channel in self._handlers}
        while True:
            lost = asyncio.Event()
            try:
                connection = await self.store.open_listen_connection(handlers)
            except Exception as exc:  # noqa: BLE001 - the store is away: the ticks carry on meanwhile
                log.warning("wake-ups: could not listen to the store (%s); retrying in %gs", exc, self.retry_every)
                await asyncio.sleep(self.retry_every)
                continue
            if connection is None:
                return
            connection.on_lost(lost.set)
            self.connections += 1
            self.listening.set()
            try:
                await lost.wait()
                log.warning("wake-ups: the listen connection ended; listening again")
            finally:
                self.listening.clear()
                await connection.close()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
