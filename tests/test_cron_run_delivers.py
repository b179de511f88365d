"""`hermes cron run ID` delivers a platform result through the gateway running on the same home
(the store's outbox), and records a run nobody received as `undelivered`, never `ok`.

Real processes: `hermes gateway` connected to the fake Telegram server with python-telegram-bot,
`hermes cron run` beside it on the same home, LiteLLM against the fake model server.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cli_support import hermes
from tests.conftest import write_config
from tests.fakes.gateway_harness import api_section, start_gateway_process
from tests.fakes.model_server import FakeModelServer, text
from tests.fakes.telegram_server import FakeTelegramServer

BOT_TOKEN = "123456:cron-run-delivery-test-token"
CHAT = "-100777"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer(token=BOT_TOKEN).start()
    yield server
    await server.stop()


def config_text(model_server: FakeModelServer, tg: FakeTelegramServer) -> str:
    return (f'[model]\nname = "openai/fake-model"\napi_base = "{model_server.base_url}"\napi_key = "sk-test"\n'
            "max_retries = 0\nstream = false\n" + api_section()
            + f'[telegram]\nenabled = true\ntoken = "{BOT_TOKEN}"\napi_base = "{tg.api_base}"\n'
              f'poll_timeout = 0.5\nallow_users = ["8"]\n')




async def add_job(home: Path) -> str:
    code, out, err = await hermes("cron", "add", "every 1d", "--prompt", "summarise the night", "--deliver",
                                  f"telegram:{CHAT}", "--name", "night", "--json", home=home)
    assert code == 0, err
    return str(json.loads(out)[0]["id"])


async def last_run(home: Path, job_id: str) -> dict:
    code, out, err = await hermes("cron", "runs", job_id, "--json", home=home)
    assert code == 0, err
    return json.loads(out)[0]


async def test_cron_run_without_a_gateway_records_not_delivered(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    write_config(home, config_text(model_server, tg))
    job_id = await add_job(home)
    model_server.add(text("All quiet overnight."))
    code, out, err = await hermes("cron", "run", job_id, home=home)
    assert code != 0
    assert "All quiet overnight." in out
    assert f"not delivered: telegram:{CHAT}: no gateway is running on {home}" in err, err
    run = await last_run(home, job_id)
    assert run["status"] == "undelivered" and "no gateway is running" in run["delivery_error"]
    code, out, err = await hermes("cron", "runs", job_id, home=home)  # what a person reads
    assert code == 0, err
    [line] = [line for line in out.splitlines() if "undelivered" in line]
    assert f"[not delivered: telegram:{CHAT}: no gateway is running" in line and " ok " not in line, out
    assert tg.sent(CHAT) == []


async def test_cron_run_delivers_through_the_gateway_running_on_the_same_home(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    write_config(home, config_text(model_server, tg))
    job_id = await add_job(home)
    gateway = await start_gateway_process(home)
    try:
        model_server.add(text("All quiet overnight."))
        code, out, err = await hermes("cron", "run", job_id, home=home)
        assert code == 0, err
        assert "not delivered" not in err
        sent = await tg.wait_sent(CHAT, 1, timeout=10)
        assert [m["text"] for m in sent] == ["All quiet overnight."]
        run = await last_run(home, job_id)
        assert run["status"] == "ok" and not run["delivery_error"]
    finally:
        gateway.send_signal(signal.SIGTERM)
        await asyncio.wait_for(gateway.wait(), 30)
    assert len(tg.sent(CHAT)) == 1  # delivered once
