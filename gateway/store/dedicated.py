"""A PostgreSQL connection of a process's own, outside the pool, that says when it ends.

What lives on a server session cannot go through the pool: the duties' advisory locks
(gateway/store/leases.py) and LISTEN (gateway/store/notify.py). `DedicatedConnection.open`
makes one NullPool connection in autocommit with TCP keepalives and an application name (so an
operator, or a test, can find it in `pg_stat_activity`), and calls the `on_lost` callbacks once
when it ends without `close` (`pg_terminate_backend`, a server restart, a cut socket the driver
notices, or a statement on it that fails).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from gateway.store.database import CONNECT_TIMEOUT_SECONDS, Database

log = logging.getLogger(__name__)

KEEPALIVES = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}


class DedicatedConnection:
    def __init__(self, engine: AsyncEngine, connection: AsyncConnection, driver: Any) -> None:
        self._engine = engine
        self._connection = connection
        self.driver = driver                     # the asyncpg connection (listeners live on it)
        self._lost_callbacks: list[Callable[[], None]] = []
        self.lost = False                        # ended, or closed on purpose

    @classmethod
    async def open(cls, db: Database, application_name: str) -> Self:
        engine = create_async_engine(
            db.url, poolclass=NullPool,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "command_timeout": 10,
                          "server_settings": {"application_name": application_name, **KEEPALIVES}})
        try:
            connection = await (await engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
            driver = (await connection.get_raw_connection()).driver_connection
        except BaseException:
            await engine.dispose()
            raise
        dedicated = cls(engine, connection, driver)
        driver.add_termination_listener(lambda _conn: dedicated.ended())
        return dedicated

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the loop, synchronously) when the connection ends unasked."""
        self._lost_callbacks.append(callback)

    def ended(self) -> None:
        """The connection is gone: run the callbacks, once (not after `close`)."""
        if self.lost:
            return
        self.lost = True
        for callback in self._lost_callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - every callback must run
                log.exception("a callback for a lost store connection failed")

    async def scalar(self, statement: sa.Executable) -> Any:
        """Run `statement` on this connection; a failure means the connection is lost."""
        try:
            return (await self._connection.execute(statement)).scalar()
        except (sa.exc.DBAPIError, sa.exc.InterfaceError, OSError, TimeoutError):
            self.ended()
            raise

    async def close(self) -> None:
        self.lost = True  # a close we asked for: no callbacks
        try:
            await self._connection.close()
        except Exception:  # noqa: BLE001 - a dead connection closes with an error
            pass
        await self._engine.dispose()
