"""The state store: migrations, durability across a kill -9, and resuming a session after restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.home import Home
from gateway.runtime import Runtime
from gateway.sessions import SessionService
from gateway.store import open_store
from gateway.store import SchemaTooNewError
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, hang, text, tool_calls
from tests.store_support import home_store


async def test_store_is_wal_and_migrated(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    try:
        assert await store.journal_mode() == "wal"
        status = await store.schema_status()
        assert status.up_to_date and status.current == status.head
    finally:
        await store.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await open_store(path)
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaTooNewError, match="newer than this Hermes knows"):
        await open_store(path)


async def test_session_resumes_after_restart(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server))
    h = Home.from_env()
    config = load_config(None, h)
    model_server.add(text("Nice to meet you, Ada."))
    runtime = await Runtime.open(config, h)
    session = await runtime.store.active_session("cli:local", platform="cli", user_id="local")
    await SessionService(runtime).run_turn(session, "My name is Ada.")
    await runtime.close()

    model_server.add(text("Your name is Ada."))
    runtime = await Runtime.open(config, h)
    try:
        again = await runtime.store.active_session("cli:local")
        assert again.id == session.id
        result = await SessionService(runtime).run_turn(again, "What is my name?")
        assert result.text == "Your name is Ada."
        sent = model_server.requests[-1]["messages"]
        assert [m["content"] for m in sent[1:]] == ["My name is Ada.", "Nice to meet you, Ada.", "What is my name?"]
        usage = await runtime.store.usage_for_session(session.id)
        assert usage.calls == 2 and usage.prompt_tokens == 22
    finally:
        await runtime.close()


async def test_new_session_starts_fresh(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server))
    h = Home.from_env()
    runtime = await Runtime.open(load_config(None, h), h)
    try:
        first = await runtime.store.active_session("k")
        await SessionService(runtime).run_turn(first, "one")
        fresh = await runtime.store.new_session("k")
        assert fresh.id != first.id
        assert await runtime.store.load_messages(fresh.id) == []
        assert (await runtime.store.active_session("k")).id == fresh.id
    finally:
        await runtime.close()


async def test_kill_9_mid_turn_loses_no_received_message(home: Path, model_server: FakeModelServer,
                                                         tmp_path: Path) -> None:
    """A `hermes chat -q` killed while the model is thinking keeps the user's message and tool results."""
    write_config(home, model_config(model_server))
    model_server.add(tool_calls(("write_file", {"path": "x.txt", "content": "1"})), hang(60))
    env = {**os.environ, "HERMES_HOME": str(home)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "chat", "-q", "please write x.txt", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)  # the folder it works in
    for _ in range(600):  # the first call imports LiteLLM (seconds)
        if len(model_server.requests) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(model_server.requests) == 2
    process.send_signal(signal.SIGKILL)
    await process.wait()
    async with home_store(home) as store:   # the home's store, on either engine
        rows = [m.role for s in await store.sessions_in_order() for m in await store.session_messages(s.id)]
    assert rows == ["user", "assistant", "tool"]
    assert (tmp_path / "x.txt").read_text() == "1"  # written in the folder the chat ran in
