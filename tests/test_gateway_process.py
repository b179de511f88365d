"""`hermes gateway` as users run it: a real process, stopped by SIGTERM; first run with defaults."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

from tests.conftest import model_config, write_config
from tests.fakes.gateway_harness import TOKEN, api_section
from tests.fakes.model_server import FakeModelServer, text
from tests.store_support import home_store


async def start(home: Path, env: dict[str, str] | None = None) -> tuple[asyncio.subprocess.Process, str, str]:
    environment = {**os.environ, "HERMES_HOME": str(home), **(env or {})}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gateway", "--grace", "10", env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    banner = ""
    while "Stop with" not in banner:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line:
            err = await process.stderr.read() if process.stderr else b""
            raise AssertionError(f"gateway exited early: {banner}\n{err.decode()}")
        banner += line.decode()
    url = re.search(r"Web chat:\s+(\S+)", banner)
    assert url, banner
    return process, url.group(1), banner


async def test_sigterm_lets_the_running_turn_finish_and_exits_0(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server) + api_section())
    model_server.add(text("Finished before shutdown.", delay=1.0))
    process, url, _ = await start(home)
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async def ask() -> dict:
                async with http.post(url + "v1/chat/completions", json={
                        "model": "hermes", "user": "dana", "messages": [{"role": "user", "content": "long job"}]}) as r:
                    assert r.status == 200
                    return await r.json()

            pending = asyncio.create_task(ask())
            for _ in range(1500):  # the first turn imports LiteLLM (seconds)
                if model_server.requests:
                    break
                await asyncio.sleep(0.02)
            assert model_server.requests, "the turn never reached the model"
            process.send_signal(signal.SIGTERM)
            answer = await asyncio.wait_for(pending, 15)
        assert answer["choices"][0]["message"]["content"] == "Finished before shutdown."
        code = await asyncio.wait_for(process.wait(), 15)
        assert code == 0
        err = (await process.stderr.read()).decode() if process.stderr else ""
        assert "gateway stopped" in err
        async with home_store(home) as store:
            stored = [m.message.get("content") for s in await store.sessions_in_order()
                      for m in await store.session_messages(s.id)]
        assert "Finished before shutdown." in stored
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_first_run_generates_a_token_and_web_chat_explains_the_model(home: Path) -> None:
    write_config(home, '[api]\nport = 0\ntoken = "${HERMES_API_TOKEN}"\n')
    env = {k: v for k, v in os.environ.items() if k != "HERMES_API_TOKEN"}
    env["HERMES_HOME"] = str(home)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gateway", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        banner = ""
        while "Stop with" not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, (await process.stderr.read()).decode()  # type: ignore[union-attr]
            banner += line.decode()
        secrets = home / "secrets.env"
        token = dict(line.split("=", 1) for line in secrets.read_text().splitlines())["HERMES_API_TOKEN"]
        assert len(token) >= 40 and secrets.stat().st_mode & 0o777 == 0o600
        assert str(secrets) in banner and token not in banner and "Model:      not configured" in banner
        url = re.search(r"Web chat:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.post(url + "v1/chat/completions", json={
                    "model": "hermes", "messages": [{"role": "user", "content": "hello"}]}) as response:
                body = await response.json()
        assert "no model is configured" in body["choices"][0]["message"]["content"]
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        err = (await process.stderr.read()).decode()  # type: ignore[union-attr]
        assert token not in err
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
