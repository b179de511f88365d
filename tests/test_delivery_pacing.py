"""Telegram's rate limits held across processes: two gateways' deliveries share one budget.

Two store clients on one database (two gateway processes) each send through their own real
python-telegram-bot adapter to one fake Bot API; Telegram asks for at most about one message a
second in one chat. The bot's sendMessage calls, as the fake Bot API sees them arrive: a burst
of 3, then one a second, whichever process sends; another chat is not held back by the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.base import OutboundMessage
from adapters.telegram import TelegramAdapter
from gateway.delivery import Delivery, RetryPolicy
from gateway.metrics import Metrics
from gateway.store import open_store
from tests.fakes.inbox import Inbox
from tests.fakes.telegram_server import FakeTelegramServer


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer().start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def two_processes(tg: FakeTelegramServer, store_url: str
                        ) -> AsyncIterator[tuple[list[TelegramAdapter], list[Delivery]]]:
    """Two gateway processes' delivery halves: a store client, a real adapter and a Delivery each."""
    stores = [await open_store(store_url), await open_store(store_url)]
    adapters = [TelegramAdapter(Inbox(), token=tg.token, api_base=tg.api_base) for _ in stores]
    try:
        yield adapters, [Delivery(s, Metrics(), RetryPolicy(attempts=3, base_delay=0.01)) for s in stores]
    finally:
        for adapter in adapters:
            await adapter.stop()
        for store in stores:
            await store.close()


@pytest.mark.timeout(120)
async def test_sends_to_one_chat_from_two_processes_keep_to_one_a_second_after_a_burst(
        tg: FakeTelegramServer, store_url: str) -> None:
    arrivals: dict[str, list[float]] = {"42": [], "43": []}

    def observe(method: str, params: dict[str, Any], phase: str) -> bool:
        if method == "sendMessage" and phase == "before":
            arrivals[str(params.get("chat_id"))].append(time.monotonic())
        return False

    tg.observers.append(observe)
    async with two_processes(tg, store_url) as (adapters, deliveries):
        began = time.monotonic()
        await asyncio.gather(*(deliveries[n % 2].send(adapters[n % 2], OutboundMessage(chat_id="42", text=f"m{n}"))
                               for n in range(7)),
                             deliveries[1].send(adapters[1], OutboundMessage(chat_id="43", text="elsewhere")))
        assert sorted(m["text"] for m in tg.sent(42)) == [f"m{n}" for n in range(7)]
        times = sorted(t - began for t in arrivals["42"])
        assert max(times[:3]) < 0.8, times                         # the burst goes at once
        gaps = [b - a for a, b in zip(times[2:], times[3:], strict=False)]
        assert min(gaps) >= 0.85, times                            # then one a second, across both processes
        assert arrivals["43"][0] - began < 0.8                     # another chat has its own budget


@pytest.mark.timeout(120)
async def test_edits_from_two_processes_share_the_bots_budget_with_new_messages(
        tg: FakeTelegramServer, store_url: str) -> None:
    """Telegram counts edits against the bot's ~30 requests a second too: 80 edits of 20 messages
    in 20 chats, from two processes at once, go out at a burst of about 30, then about 30 a second."""
    edits: list[float] = []

    def observe(method: str, params: dict[str, Any], phase: str) -> bool:
        if method == "editMessageText" and phase == "before":
            edits.append(time.monotonic())
        return False

    tg.observers.append(observe)
    async with two_processes(tg, store_url) as (adapters, deliveries):
        sent = [await deliveries[n % 2].send(adapters[n % 2], OutboundMessage(chat_id=str(100 + n), text="draft"))
                for n in range(20)]
        await asyncio.sleep(1.2)                    # the sends' share of the budget is back
        began = time.monotonic()
        done = await asyncio.gather(*(deliveries[n % 2].edit(adapters[n % 2], sent[n % 20], f"draft {n}")
                                      for n in range(80)))
        assert all(done) and len(edits) == 80
        times = sorted(t - began for t in edits)
        for count, at in enumerate(times, start=1):
            assert count <= 30 + 30 * at + 3, (count, at)       # never ahead of the bot's budget
        assert times[-1] >= 1.4, times[-1]                       # (80 - 30) / 30 s after the burst
        assert [m["text"] for m in tg.sent(100)] in (["draft 0"], ["draft 20"], ["draft 40"], ["draft 60"])
