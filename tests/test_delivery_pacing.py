"""Telegram's rate limits held across processes: two gateways' deliveries share one budget.

Two store clients on one database (two gateway processes) each send through their own real
python-telegram-bot adapter to one fake Bot API; Telegram asks for at most about one message a
second in one chat. The bot's sendMessage calls, as the fake Bot API sees them arrive: a burst
of 3, then one a second, whichever process sends; another chat is not held back by the first.
"""

from __future__ import annotations

import asyncio
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


@pytest.mark.timeout(120)
async def test_sends_to_one_chat_from_two_processes_keep_to_one_a_second_after_a_burst(
        tg: FakeTelegramServer, store_url: str) -> None:
    arrivals: dict[str, list[float]] = {"42": [], "43": []}

    def observe(method: str, params: dict[str, Any], phase: str) -> bool:
        if method == "sendMessage" and phase == "before":
            arrivals[str(params.get("chat_id"))].append(time.monotonic())
        return False

    tg.observers.append(observe)
    stores = [await open_store(store_url), await open_store(store_url)]
    adapters = [TelegramAdapter(Inbox(), token=tg.token, api_base=tg.api_base) for _ in stores]
    deliveries = [Delivery(s, Metrics(), RetryPolicy(attempts=3, base_delay=0.01)) for s in stores]
    try:
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
    finally:
        for adapter in adapters:
            await adapter.stop()
        for store in stores:
            await store.close()
