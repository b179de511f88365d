"""Wake-ups between gateway processes: PostgreSQL's LISTEN/NOTIFY, on a connection of its own.

The tables stay the truth: a notification only says "look now" (a `/stop` was written for a
session, an approval was answered), so the process that should act reads the rows at once
instead of at its next tick. A notification lost while a listener reconnects costs that one
tick, never the action. `notify` runs `pg_notify` on the pool (delivered when its transaction
commits); `ListenConnection` is a dedicated connection (gateway/store/dedicated.py) with
asyncpg's listeners on it, which says when it ends so the caller can open another. On SQLite there is one
process and nothing to wake: `notify` returns False and no listen connection is opened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.dedicated import DedicatedConnection

log = logging.getLogger(__name__)

LISTEN_APPLICATION_NAME = "hermes-listen"
Handler = Callable[[str], None]      # called on the loop with the notification's payload


class ListenConnection(DedicatedConnection):
    """One PostgreSQL connection that LISTENs on some channels and calls their handlers."""

    @classmethod
    async def open_listening(cls, db: Database, handlers: Mapping[str, Handler]) -> ListenConnection:
        listen = await cls.open(db, LISTEN_APPLICATION_NAME)
        try:
            for channel, handler in handlers.items():
                await listen.driver.add_listener(channel, _calling(handler))
        except BaseException:
            await listen.close()
            raise
        return listen


def _calling(handler: Handler) -> Callable[[Any, int, str, str], None]:
    def on_notification(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            handler(payload)
        except Exception:  # noqa: BLE001 - a handler's error must not end the listener
            log.exception("a wake-up handler failed")
    return on_notification


class NotifyStore:
    """Mixin of the store: NOTIFY on the pool, and the dedicated LISTEN connection."""

    db: Database

    async def notify(self, channel: str, payload: str) -> bool:
        """Wake the processes listening on `channel` (PostgreSQL); False on SQLite (one process)."""
        if not self.db.is_postgresql:
            return False
        await self.db.execute(sa.select(sa.func.pg_notify(channel, payload)))
        return True

    async def open_listen_connection(self, handlers: Mapping[str, Handler]) -> ListenConnection | None:
        """A connection listening on `handlers`' channels (PostgreSQL); None on SQLite."""
        return await ListenConnection.open_listening(self.db, handlers) if self.db.is_postgresql else None
