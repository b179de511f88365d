"""After a crash, a message whose turn never finished is answered once, with a notice, never twice.

A real `hermes gateway` process, its Telegram adapter (python-telegram-bot) polling the fake Bot
API, and the fake model holding the answer: the process is killed with SIGKILL mid-turn. Telegram
hands the update out again (the confirming poll may or may not have happened). The next process
tells the user their message was interrupted and answers it, exactly once; a second restart
answers nothing more.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.inbox import INTERRUPTED_NOTICE
from tests.approvals_support import wait_for
from tests.conftest import write_config
from tests.fakes.gateway_harness import api_section, start_gateway_process
from tests.fakes.model_server import FakeModelServer, text
from tests.fakes.telegram_server import FakeTelegramServer

USER = 42


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer().start()
    yield server
    await server.stop()


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


def texts(tg: FakeTelegramServer) -> list[str]:
    return [m["text"] for m in tg.sent(USER)]


@pytest.mark.timeout(300)   # three gateway processes, two of which import LiteLLM
async def test_sigkill_mid_turn_is_followed_by_exactly_one_answer_after_restart(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    write_config(home, f'[model]\nname = "openai/fake-model"\napi_base = "{model_server.base_url}"\n'
                       f'api_key = "sk-test"\nstream = false\n' + api_section()
                 + f'[telegram]\nenabled = true\ntoken = "{tg.token}"\napi_base = "{tg.api_base}"\n'
                   f'poll_timeout = 0.5\nallow_users = ["{USER}"]\n')
    model_server.add(text("never delivered: the process was killed", delay=120))
    first = await start_gateway_process(home)
    try:
        update = tg.queue_message(USER, USER, "what is the capital of France?")
        await wait_for(lambda: model_server.requests, timeout=90, what="the turn to reach the model")
        first.send_signal(signal.SIGKILL)
        await asyncio.wait_for(first.wait(), 10)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    assert texts(tg) == []
    tg.redeliver(update)          # Telegram hands it out again (as when the confirming poll is lost)

    model_server.add(text("Paris."))
    second = await start_gateway_process(home)
    try:
        await wait_for(lambda: "Paris." in texts(tg), timeout=90, what="the answer after the restart")
        await wait_for(lambda: not tg.unconfirmed(), timeout=30, what="the redelivered update to be confirmed")
        await asyncio.sleep(1.0)                 # time for a second answer, if one were coming
    finally:
        await stop(second)
    assert texts(tg) == [INTERRUPTED_NOTICE, "Paris."]
    assert len(model_server.requests) == 2
    assert "capital of France" in str(model_server.requests[1]["messages"])

    third = await start_gateway_process(home)                    # nothing is left to answer
    try:
        await asyncio.sleep(1.5)
    finally:
        await stop(third)
    assert texts(tg) == [INTERRUPTED_NOTICE, "Paris."] and len(model_server.requests) == 2
