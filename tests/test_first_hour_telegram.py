"""The first hour on Telegram: `/stop` says one thing.

Real processes and libraries: `hermes gateway` connected to the fake Telegram Bot API with
python-telegram-bot, LiteLLM against the fake model server.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.fakes.gateway_harness import api_section, start_gateway_process
from tests.fakes.model_server import FakeModelServer, hang, text
from tests.fakes.telegram_server import FakeTelegramServer

BOT_TOKEN = "123456:first-hour-telegram-test-token"
USER = 8


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer(token=BOT_TOKEN).start()
    yield server
    await server.stop()


@pytest.fixture
async def gateway(home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> AsyncIterator[None]:
    write_config(home, f'[model]\nname = "openai/fake-model"\napi_base = "{model_server.base_url}"\n'
                       'api_key = "sk-test"\nmax_retries = 0\n' + api_section()
                 + f'[telegram]\nenabled = true\ntoken = "{BOT_TOKEN}"\napi_base = "{tg.api_base}"\n'
                   f'poll_timeout = 0.5\nallow_users = ["{USER}"]\n')
    process = await start_gateway_process(home)
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


async def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def texts(tg: FakeTelegramServer) -> list[str]:
    return [m["text"] for m in tg.sent(USER)]


async def test_stop_says_stopped_once(home: Path, model_server: FakeModelServer, tg: FakeTelegramServer,
                                      gateway: None) -> None:
    model_server.add(hang(60), text("After the stop."), purpose="chat")
    tg.queue_message(USER, USER, "do something slow")
    await wait_for(lambda: len(model_server.requests_with_purpose("chat")) == 1, timeout=60,
                   what="the slow turn to start")
    tg.queue_message(USER, USER, "/stop", entities=[{"type": "bot_command", "offset": 0, "length": 5}])
    await tg.wait_sent(USER, 1, timeout=30)
    tg.queue_message(USER, USER, "are you there?")  # answered after everything /stop said
    await wait_for(lambda: "After the stop." in texts(tg), timeout=60, what="the next answer")
    assert texts(tg) == ["Stopped.", "After the stop."]  # no "Stopping." before the stopped turn's word
