"""The store lost while the gateway runs: PostgreSQL away for a few seconds during 20 turns.

A real `hermes gateway` on a PostgreSQL store polls the fake Telegram Bot API; one user sends 20
numbered messages while the database refuses every connection, once for 1.5 s (less than a
turn claim's TTL) and once for 4 s (its connections ended, as a server restart does). The gateway stays up, the pool reconnects, and once the database is
back every message is answered, once and in order, as the chat shows it; nothing is left in the
inbox.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.store import StateStore
from tests.approvals_support import wait_for
from tests.cluster_support import USER, cluster_config, echo, health, start_member, stop_member
from tests.cluster_support import tg  # noqa: F401 - the fake Bot API (a fixture)
from tests.fakes.model_server import FakeModelServer, Reply
from tests.fakes.telegram_server import FakeTelegramServer
from tests.postgres import PostgresServer

COUNT = 20
OUTAGES = {4: 1.5, 12: 4.0}      # at message n, the database away for so many seconds


def slow_echo(body: dict[str, Any]) -> Reply:
    reply = echo(body)
    reply.delay = 0.3
    return reply


def answers(tg: FakeTelegramServer) -> list[str]:
    return [m["text"] for m in tg.sent(USER) if m["text"].startswith("answer ")]


@pytest.mark.timeout(300)
async def test_postgres_away_during_20_turns_every_message_is_answered_once_in_order(
        tmp_path: Path, postgres_server: PostgresServer, postgres_url: str, pg_store: StateStore,
        model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    model_server.add(*([slow_echo] * 200), purpose="chat")
    member = await start_member(tmp_path / "gateway", cluster_config(postgres_url, model_server, tg))
    database = postgres_url.rsplit("/", 1)[1]
    try:
        cuts: list[asyncio.Task[None]] = []

        async def away(seconds: float) -> None:
            with postgres_server.outage(database):
                await asyncio.sleep(seconds)

        # a blip shorter than the claims' TTL (the process keeps its sessions), then a longer outage
        for n in range(1, COUNT + 1):
            tg.queue_message(USER, USER, f"msg-{n}")
            if n in OUTAGES:
                if cuts:
                    await cuts[-1]
                cuts.append(asyncio.create_task(asyncio.to_thread(asyncio.run, away(OUTAGES[n]))))
            await asyncio.sleep(0.3)
        await asyncio.gather(*cuts)
        back = time.monotonic()
        await wait_for(lambda: len(set(answers(tg))) >= COUNT, timeout=120, what="every message answered")
        took = time.monotonic() - back
        await asyncio.sleep(2.0)                        # time for a second answer, if one were coming
        assert answers(tg) == [f"answer msg-{n}" for n in range(1, COUNT + 1)]
        assert member.process.returncode is None
        assert (await health(member))["status"] in ("ok", "degraded")
        assert await pg_store.inbox_rows() == []
        print(f"\nall answered {took:.1f}s after the database came back")
        log = "".join(p.read_text(encoding="utf-8") for p in (member.home / "logs").glob("*.jsonl"))
        assert "the lease connection to the store ended" in log          # the outage was felt
        assert "the store answers again" in log
        assert log.count("could not try the") <= 6, "a warning a second per duty while the store is away"
    finally:
        await stop_member(member)
