"""The first hour on Telegram: the command menu lists the skills (with underscores, which Telegram
accepts, and no log line per skill whose name has a dash), `/code_review` typed runs the skill
code-review, and `/stop` says one thing.

Real processes and libraries: `hermes gateway` connected to the fake Telegram Bot API with
python-telegram-bot, LiteLLM against the fake model server; what the admin reads is the gateway's
log file.
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
BUNDLED = Path(__file__).parents[1] / "skills" / "bundled"


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


async def test_the_command_menu_lists_skills_with_underscores_and_they_run(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer, gateway: None) -> None:
    skills = sorted(p.parent.name for p in BUNDLED.rglob("SKILL.md"))
    assert "code-review" in skills and sum("-" in name for name in skills) >= 10
    await wait_for(lambda: bool(tg.commands), timeout=30, what="the command menu")
    menu = [c["command"] for c in tg.commands]
    assert menu[:2] == ["help", "new"]
    assert set(menu) >= {name.replace("-", "_") for name in skills}, menu
    assert all("-" not in name for name in menu)
    log = (home / "logs" / "hermes.jsonl").read_text(encoding="utf-8")
    assert "cannot be in the command menu" not in log  # every bundled skill fits: no line about any

    model_server.add(text("Reviewed: two findings."), purpose="chat")
    tg.queue_message(USER, USER, "/code_review the diff in PR 12",
                     entities=[{"type": "bot_command", "offset": 0, "length": 12}])
    await tg.wait_sent(USER, 1, timeout=60)
    assert texts(tg) == ["Reviewed: two findings."]
    [request] = model_server.requests_with_purpose("chat")
    asked = str(request["messages"][-1]["content"])
    assert asked.startswith("Follow the skill code-review below.") and "Request: the diff in PR 12" in asked


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
