"""No secret at rest: a hostile scripted model cannot get the API key or the bot token into the store
or onto the dashboard, and LiteLLM at DEBUG prints no prompt or key on the terminal.

The model's replies and the tool results carry the model API key (a literal in config.toml,
shaped like nothing the redactor knows by shape: only "known value from the config" can catch
it), the Telegram bot token, an environment secret, a password in a DSN and a webhook signature.
The real Telegram adapter (python-telegram-bot) talks to the fake Bot API; afterwards the raw bytes
of state.db and its WAL (on SQLite), and every cell of every table (on either engine), are searched.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.secret_fields import redactor_for_config
from gateway.app import Gateway
from gateway.config import load_config
from gateway.delivery import RetryPolicy
from gateway.home import Home
from tests.approvals_support import wait_for
from tests.conftest import write_config
from tests.fakes.gateway_harness import TOKEN, api_section
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.fakes.telegram_server import FakeTelegramServer

MODEL_KEY = "hermes-model-key-Zq8vT2pLm9Rw4Xc7"          # no known shape: found as a config value
BOT_TOKEN = "7012345678:AAH9vQx2Lr5Tz8Kp3Wm6Yn1Bc4Df7Gh0Jk2"
ENV_SECRET = "env-secret-value-9dK3mQ7xR2"
DB_PASSWORD = "pg-pass-W7yQ2"
SIG = "sig-8f7e6d5c4b3a2918"
USER = 4242
SECRETS = (MODEL_KEY, BOT_TOKEN, ENV_SECRET, DB_PASSWORD, SIG)


def leak_text(label: str) -> str:
    return (f"{label}: key {MODEL_KEY}, bot {BOT_TOKEN}, env {ENV_SECRET}, "
            f"dsn postgres://app:{DB_PASSWORD}@db.internal/app, hook https://hooks.example/a?sig={SIG}")


def config_text(model_server: FakeModelServer, tg: FakeTelegramServer) -> str:
    return (f'[model]\nname = "openai/fake-model"\napi_base = "{model_server.base_url}"\n'
            f'api_key = "{MODEL_KEY}"\nretry_base_delay = 0.01\nstream = false\n'
            + api_section()
            + f'[telegram]\nenabled = true\ntoken = "{BOT_TOKEN}"\napi_base = "{tg.api_base}"\n'
              f'poll_timeout = 0.5\nallow_users = ["{USER}"]\n')


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer(token=BOT_TOKEN).start()
    yield server
    await server.stop()


async def scan_store(home: Path) -> list[str]:
    """Every place a secret appears: on SQLite the raw bytes of the database files, then on either
    engine every cell of every table, read through the store's snapshot reader."""
    from gateway.store.database import resolve_url
    from gateway.store.snapshot import open_verbatim, read_snapshot

    found = []
    url = resolve_url("", "", home / "state.db")
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        for file in sorted(path.parent.glob(path.name + "*")):
            data = file.read_bytes()
            for secret in SECRETS:
                if secret.encode() in data:
                    found.append(f"{file.name}: raw bytes contain {secret}")
    db = open_verbatim(url)
    try:
        snapshot = await read_snapshot(db)
    finally:
        await db.close()
    assert any(t.rows for t in snapshot.tables if t.name == "messages"), "nothing was stored: nothing scanned"
    for table in snapshot.tables:
        for row in table.rows:
            for cell in row:
                found.extend(f"{table.name}: {secret}" for secret in SECRETS if secret in str(cell))
    return found


async def test_hostile_model_cannot_put_secrets_in_state_db_or_on_the_dashboard(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_API_TOKEN", ENV_SECRET)
    model_server.add(
        tool_calls(("write_file", {"path": "notes.txt", "content": leak_text("written")}),
                   content=leak_text("thinking")),
        tool_calls(("read_file", {"path": "notes.txt"})),
        text(leak_text("final answer")),
    )
    write_config(home, config_text(model_server, tg))
    hermes_home = Home(home)
    gateway = Gateway(load_config(None, hermes_home, environ=dict(os.environ)), hermes_home, grace=5.0,
                      retry_policy=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02))
    await gateway.start()
    try:
        tg.queue_message(USER, USER, f"please remember {BOT_TOKEN} and {MODEL_KEY}")
        await wait_for(lambda: any("final answer" in m["text"] for m in tg.sent(USER)), what="the answer",
                       timeout=60)
        # the model did get the real values (the tools work); only what is stored is masked
        assert MODEL_KEY in json.dumps(model_server.requests[-1]["messages"])
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}",
                                                  "Accept": "text/html"}) as http:
            async with http.get(gateway.url + "sessions") as response:
                listing = await response.text()
            session_ids = set(re.findall(r'href="/sessions/([0-9a-f]+)"', listing))
            assert session_ids, listing[:500]
            pages = [listing]
            for session_id in session_ids:
                async with http.get(gateway.url + f"sessions/{session_id}") as response:
                    assert response.status == 200
                    pages.append(await response.text())
        transcript = "\n".join(pages)
        assert "read_file" in transcript and "final answer" in transcript and "[REDACTED]" in transcript
        for secret in SECRETS:
            assert secret not in transcript, f"the dashboard shows {secret}"
    finally:
        await gateway.stop()
    assert await scan_store(home) == []


@pytest.mark.timeout(240)
@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "model-worker"])
async def test_litellm_at_debug_prints_no_prompt_or_key_on_the_terminal(
        home: Path, model_server: FakeModelServer, workers: int) -> None:
    marker = "PROMPT-MARKER-q7Zr1"
    model_server.add(text("the answer"))
    write_config(home, f'[model]\nname = "openai/fake-model"\napi_base = "{model_server.base_url}"\n'
                       f'api_key = "{MODEL_KEY}"\nstream = false\n' + f"[agent]\nmodel_workers = {workers}\n"
                 + api_section() + '[logging]\nlevel = "DEBUG"\n')
    environment = {**os.environ, "HERMES_HOME": str(home), "BILLING_API_TOKEN": ENV_SECRET}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gateway", "--grace", "5", env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    errors = bytearray()

    async def drain_stderr() -> None:  # at DEBUG the log fills a pipe nobody reads, and the gateway would block
        assert process.stderr is not None
        while chunk := await process.stderr.read(65536):
            errors.extend(chunk)

    draining = asyncio.create_task(drain_stderr())
    try:
        assert process.stdout is not None and process.stderr is not None
        banner = ""
        while "Stop with" not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, errors.decode()
            banner += line.decode()
        url = re.search(r"Web chat:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with http.post(url + "v1/chat/completions", json={
                    "model": "hermes", "user": "ada",
                    "messages": [{"role": "user", "content": f"{marker} with {ENV_SECRET}"}]}) as response:
                assert response.status == 200
                assert (await response.json())["choices"][0]["message"]["content"] == "the answer"
        process.send_signal(signal.SIGTERM)
        out = await asyncio.wait_for(process.stdout.read(), 30)
        await asyncio.wait_for(process.wait(), 30)
        await asyncio.wait_for(draining, 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        draining.cancel()
    terminal = banner + out.decode() + errors.decode()
    assert "DEBUG" in terminal                     # the gateway did log at DEBUG
    assert model_server.requests and model_server.requests[0]["messages"][-1]["content"].startswith(marker)
    for leaked in (MODEL_KEY, ENV_SECRET):
        lines = [line[:160] for line in terminal.splitlines() if leaked in line]
        assert not lines, f"{leaked} printed on the terminal: {lines}"
    # the prompt: nothing from LiteLLM's loggers or the SDK under it (or from LiteLLM's own handler,
    # which printed lines without our timestamp format)
    chatty = [line[:160] for line in terminal.splitlines() if marker in line
              and not re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d DEBUG (aiosqlite|gateway|agent)\b", line)]
    assert not chatty, f"the prompt was printed by: {chatty}"
    litellm_lines = re.findall(r"^\S+ \S+ \w+\s+(?:LiteLLM|openai)\b.*$", terminal, re.MULTILINE)
    assert not litellm_lines, litellm_lines[:3]
    log_file = (home / "logs" / "hermes.jsonl").read_text(encoding="utf-8")
    assert MODEL_KEY not in log_file and ENV_SECRET not in log_file


def test_the_config_redactor_knows_every_literal_secret_kind() -> None:
    config = {
        "model": {"api_key": "k3y-only-by-place", "api_base": "https://llm.example/v1?api_key=QUERYKEY77"},
        "web_search": {"url": "https://searx-user:searxpass9@searx.example"},
        "mcp": {"servers": [{"name": "db", "command": "mcp-pg", "args": ["--dsn", "postgres://u:dsnpass55@h/db"],
                             "env": {"PGPASSWORD": "envpass-66", "PLAIN": "not secret at all"}},
                            {"name": "docs", "url": "https://mcp.example/mcp",
                             "headers": {"Authorization": "Bearer hdr-token-8899"}}]},
    }
    redactor = redactor_for_config(config, {})
    line = ("k3y-only-by-place QUERYKEY77 searxpass9 dsnpass55 envpass-66 hdr-token-8899 "
            "not secret at all")
    assert redactor.redact(line) == " ".join(["[REDACTED]"] * 6) + " not secret at all"


async def test_nothing_written_through_the_store_bypasses_the_redactor(home: Path) -> None:
    from tests.store_support import home_store

    redactor = redactor_for_config({"model": {"api_key": MODEL_KEY}}, {})
    async with home_store(home, redactor, migrate=True) as store:
        hook = f"webhook:https://hooks.example/a?sig={SIG}"
        job = {"name": "job", "schedule": "0 9 * * *", "kind": "cron", "timezone": "UTC", "created_at": 0,
               "updated_at": 0}
        await store.cron_job_insert(id="j1", prompt=f"use {MODEL_KEY} and password=hunter2hunter2", target=hook,
                                    **job)
        await store.cron_job_insert(id="j2", prompt="p", target=f"webhook:https://evil.example/?k={MODEL_KEY}",
                                    **job)
        proposal_id = await store.proposal_insert(session_id="s", skill="x", action="create",
                                                  arguments=json.dumps({"content": f'a "{MODEL_KEY}"'}))
        rows = {r["id"]: dict(r) for r in await store.cron_job_rows()}
        proposal = await store.proposal_row(proposal_id)
    assert rows["j1"]["target"] == hook                      # a webhook's own signature is kept: it must work
    assert rows["j1"]["prompt"] == "use [REDACTED] and password=[REDACTED]"
    assert rows["j2"]["target"] == "webhook:https://evil.example/?k=[REDACTED]"   # our key never
    assert json.loads(proposal["arguments"]) == {"content": 'a "[REDACTED]"'}      # still valid JSON
