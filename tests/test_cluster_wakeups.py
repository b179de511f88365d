"""Wake-ups between processes (gateway/cluster/wakeups.py) over the real PostgreSQL LISTEN/NOTIFY.

Two store clients stand for two gateway processes: what one sends on a channel reaches the
other's handler; when PostgreSQL ends the listener's connection (`pg_terminate_backend`, as in
a network blip or a server restart) it listens again and the next wake-up arrives. On SQLite
there is one process: a wake-up goes straight to its own handlers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from gateway.cluster.wakeups import APPROVAL_ANSWERED, TURN_STOP, Wakeups
from gateway.store import StateStore, open_store
from gateway.store.notify import LISTEN_APPLICATION_NAME


async def until(condition: object, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():   # type: ignore[operator]
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


async def end_listen_connections(store: StateStore) -> int:
    async with store.db.transaction() as connection:
        ended = await connection.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = :name AND datname = current_database()"),
            {"name": LISTEN_APPLICATION_NAME})
        return len(ended.all())


async def test_a_wake_up_sent_by_one_process_reaches_the_other_and_survives_a_cut_connection(
        postgres_url: str, pg_store: StateStore) -> None:
    sender_store, listener_store = await open_store(postgres_url), await open_store(postgres_url)
    sender, listener = Wakeups(sender_store), Wakeups(listener_store, retry_every=0.2)
    stops: list[str] = []
    answers: list[str] = []
    listener.on(TURN_STOP, stops.append)
    listener.on(APPROVAL_ANSWERED, answers.append)
    try:
        await listener.start()
        await asyncio.wait_for(listener.listening.wait(), 10)
        await sender.send(TURN_STOP, "slack:dm:U1")
        await sender.send(APPROVAL_ANSWERED, "a1b2c3")
        await until(lambda: stops == ["slack:dm:U1"] and answers == ["a1b2c3"])

        assert await end_listen_connections(pg_store) == 1
        await until(lambda: listener.connections == 2 and listener.listening.is_set())   # on a new connection
        await sender.send(TURN_STOP, "telegram:dm:42")
        await until(lambda: stops == ["slack:dm:U1", "telegram:dm:42"])
        assert answers == ["a1b2c3"]                                  # each channel to its own handler
    finally:
        await listener.close()
        await sender.close()
        await sender_store.close()
        await listener_store.close()


async def test_on_sqlite_a_wake_up_goes_to_the_process_own_handlers(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'state.db'}")
    wakeups = Wakeups(store)
    stops: list[str] = []
    wakeups.on(TURN_STOP, stops.append)
    try:
        await wakeups.start()
        await wakeups.send(TURN_STOP, "console:dm:me")
        assert stops == ["console:dm:me"]
        assert await store.open_listen_connection({}) is None
    finally:
        await wakeups.close()
        await store.close()
