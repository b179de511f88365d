"""SIGHUP reload: the plan names live and restart-only settings; a running gateway applies the live
ones without dropping its platform connection or its HTTP listener."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.config import parse_config
from gateway.reload import apply_reload, diff_reloadable, install_sighup
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer, text

BASE = """
[telegram]
enabled = true
token = "old-token-value"
allow_users = ["u1"]

[learning]
auto_skills = "on"
"""


def _config(text_: str):
    return parse_config(text_, Path("config.toml"), {})


def test_plan_splits_live_from_restart_and_keeps_restart_only_values() -> None:
    old = _config(BASE + '[api]\nport = 8765\n')
    new = _config("""
[telegram]
enabled = true
token = "new-token-value"
allow_users = ["u1", "u2"]
admins = ["u1"]

[telegram.channels."-100"]
require_mention = false

[learning]
auto_skills = "ask"
model = "openai/other"

[logging]
level = "DEBUG"

[store]
retention_days = 30

[[teams]]
name = "ops"
channels = ["telegram:-100"]

[api]
port = 9000
""")
    plan = diff_reloadable(old, new)
    assert plan.live == ["learning.auto_skills", "logging.level", "store.retention_days", "teams",
                         "telegram.admins", "telegram.allow_users", "telegram.channels"]
    assert plan.restart == ["api.port", "learning.model", "telegram.token"]
    effective = plan.effective
    assert effective.telegram.allow_users == ["u1", "u2"] and effective.telegram.admins == ["u1"]
    assert effective.telegram.channels["-100"].require_mention is False
    assert [t.name for t in effective.teams] == ["ops"]
    assert effective.learning.auto_skills == "ask" and effective.learning.model == ""
    assert effective.telegram.token == "old-token-value" and effective.api.port == 8765
    summary = plan.summary()
    assert "NOT applied until restart: api.port, learning.model, telegram.token" in summary
    assert "old-token-value" not in summary and "new-token-value" not in summary

    same = diff_reloadable(old, _config(BASE + '[api]\nport = 8765\n'))
    assert not same.changed and same.summary() == "configuration reloaded: nothing changed"


def test_a_bad_teams_entry_changes_nothing() -> None:
    class Target:
        config = _config(BASE)
        runtime = None

    target = Target()
    bad = _config(BASE + '[[teams]]\nname = "ops"\nchannels = ["no-colon"]\n')
    with pytest.raises(ValueError, match="must look like"):
        apply_reload(diff_reloadable(target.config, bad), target)
    assert target.config.teams == []


TELEGRAM_U1 = '[telegram]\nallow_users = ["u1"]\n'
TELEGRAM_U1_U2 = '[telegram]\nallow_users = ["u1", "u2"]\n[learning]\nannounce = false\n[logging]\nlevel = "DEBUG"\n'


async def test_sighup_applies_allowlist_on_a_running_gateway(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Hello u2."))
    gateway, adapters = await start_gateway(home, model_config(model_server) + api_section() + TELEGRAM_U1)
    tg = adapters["telegram"]
    level_before = logging.getLogger().level
    reloaded: asyncio.Queue = asyncio.Queue()
    uninstall = install_sighup(asyncio.get_running_loop(), gateway, None, on_reloaded=reloaded.put_nowait)
    try:
        await tg.inject("hi", user="u2")
        await tg.wait_for(lambda: any("pairing code" in t for t in tg.texts()))
        url = gateway.url

        (home / "config.toml").write_text(
            model_config(model_server) + api_section(port=1) + TELEGRAM_U1_U2, encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        plan = await asyncio.wait_for(reloaded.get(), 10)
        assert plan is not None
        assert plan.live == ["learning.announce", "logging.level", "telegram.allow_users"]
        assert plan.restart == ["api.port"]
        assert gateway.runtime.config.learning.announce is False
        learning = gateway.runtime.services.get("learning")
        assert learning is None or learning.settings.announce is False
        assert logging.getLogger().level == logging.DEBUG

        await tg.inject("hi again", user="u2")
        await tg.wait_for(lambda: "Hello u2." in tg.texts(), timeout=60)  # first model call imports LiteLLM
        assert adapters["telegram"] is gateway.adapters["telegram"] and tg.started  # same connection
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with http.get(url + "healthz") as response:
                assert response.status == 200  # the listener on the old port was never closed

        (home / "config.toml").write_text("[telegram\nbroken", encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        assert await asyncio.wait_for(reloaded.get(), 10) is None
        assert gateway.config.telegram.allow_users == ["u1", "u2"]
    finally:
        uninstall()
        await gateway.stop()
        logging.getLogger().setLevel(level_before)


def _sighup_wired() -> bool:
    source = (Path(__file__).resolve().parent.parent / "gateway" / "cli" / "gateway_cmd.py").read_text()
    return "install_sighup" in source


@pytest.mark.skipif(not _sighup_wired(), reason="`hermes gateway` does not install the SIGHUP handler yet "
                    "(gateway/cli/gateway_cmd.py must call gateway.reload.install_sighup)")
async def test_sighup_on_a_real_hermes_gateway_process(home: Path, model_server: FakeModelServer) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(model_config(model_server) + api_section() + TELEGRAM_U1.replace(
        "[telegram]", "[telegram]\ntoken = \"123\""), encoding="utf-8")
    env = {**os.environ, "HERMES_HOME": str(home)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gateway", "--grace", "5", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    try:
        banner = ""
        while "Stop with" not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, (await process.stderr.read()).decode()
            banner += line.decode()
        url = re.search(r"Web chat:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        (home / "config.toml").write_text(model_config(model_server) + api_section(port=1) + TELEGRAM_U1_U2
                                          .replace("[telegram]", "[telegram]\ntoken = \"456\""), encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        seen = ""
        while "configuration reloaded" not in seen:
            line = await asyncio.wait_for(process.stderr.readline(), 15)
            assert line, f"gateway exited on SIGHUP: {seen}"
            seen += line.decode()
        assert "applied learning.announce, logging.level, telegram.allow_users" in seen
        assert "NOT applied until restart: api.port, telegram.token" in seen
        assert "456" not in seen
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with http.get(url + "healthz") as response:
                assert response.status == 200
        assert process.returncode is None
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
