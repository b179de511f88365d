"""Wake-ups between gateway processes: PostgreSQL's LISTEN/NOTIFY, on a connection of its own.

The tables stay the truth: a notification only says "look now" (a `/stop` was written for a
session, an approval was answered), so the process that should act reads the rows at once
instead of at its next tick. A notification lost while a listener reconnects costs that one
tick, never the action. `notify` runs `pg_notify` on the pool (delivered when its transaction
commits); `ListenConnection` holds one NullPool connection in autocommit with asyncpg's
listeners on it, and says when it ends so the caller can open another. On SQLite there is one
process and nothing to wake: `notify` returns False and no listen connection is opened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from gateway.store.database import CONNECT_TIMEOUT_SECONDS, Database
from gateway.store.leases import KEEPALIVES

log = logging.getLogger(__name__)

LISTEN_APPLICATION_NAME = "hermes-listen"
Handler = Callable[[str], None]      # called on the loop with the notification's payload


class ListenConnection:
    """One PostgreSQL connection that LISTENs on some channels and calls their handlers."""

    def __init__(self, engine: AsyncEngine, connection: AsyncConnection) -> None:
        self._engine = engine
        self._connection = connection
        self._lost_callbacks: list[Callable[[], None]] = []
        self.closed = False

    @classmethod
    async def open(cls, db: Database, handlers: Mapping[str, Handler]) -> ListenConnection:
        engine = create_async_engine(
            db.url, poolclass=NullPool,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "command_timeout": 10,
                          "server_settings": {"application_name": LISTEN_APPLICATION_NAME, **KEEPALIVES}})
        try:
            connection = await (await engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
            driver = (await connection.get_raw_connection()).driver_connection
            listen = cls(engine, connection)
            for channel, handler in handlers.items():
                await driver.add_listener(channel, _calling(handler))
            driver.add_termination_listener(lambda _conn: listen._ended())
        except BaseException:
            await engine.dispose()
            raise
        return listen

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the loop) when the connection ends without `close`."""
        self._lost_callbacks.append(callback)

    def _ended(self) -> None:
        if self.closed:
            return
        self.closed = True
        for callback in self._lost_callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - every callback must run
                log.exception("a listen-lost callback failed")

    async def close(self) -> None:
        self.closed = True
        try:
            await self._connection.close()
        except Exception:  # noqa: BLE001 - a dead connection closes with an error
            pass
        await self._engine.dispose()


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
        return await ListenConnection.open(self.db, handlers) if self.db.is_postgresql else None
