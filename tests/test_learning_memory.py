"""Memory files: bounds (full means the tool says so, nothing truncated), scopes, atomic serialised
writes, and `hermes memory show`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.memory import MemoryFull, MemoryOpError, MemoryStore, Scope
from agent.redact import Redactor
from gateway.sessions import SessionService
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.learning_support import hermes, open_runtime


def store(root: Path, memory_chars: int = 2_200, user_chars: int = 1_400) -> MemoryStore:
    return MemoryStore(root, memory_chars, user_chars, Redactor.from_environ({}))


async def test_a_full_memory_refuses_and_keeps_every_entry(home: Path, model_server: FakeModelServer) -> None:
    runtime, _loop = await open_runtime(home, model_server, memory="memory_chars = 200")
    try:
        for i in range(3):
            await runtime.services["memory"].add("memory", Scope(), f"fact {i}: the cluster has {i} spare nodes")
        memory_file = home / "memories" / "MEMORY.md"
        before = memory_file.read_text()
        model_server.add(tool_calls(("memory", {"action": "add", "text": "x" * 120})), text("I need to consolidate."))
        session = await runtime.store.new_session("cli:m", platform="cli", user_id="local")
        await SessionService(runtime).run_turn(session, "remember this long thing")
        result = [m for m in model_server.requests[-1]["messages"] if m["role"] == "tool"][0]["content"]
        assert result.startswith("Error: MEMORY.md is full:") and "of 200 characters used" in result
        assert "Consolidate first" in result and "fact 2: the cluster has 2 spare nodes" in result
        assert memory_file.read_text() == before  # nothing written, nothing truncated
    finally:
        await runtime.close()


async def test_replace_and_remove_need_a_unique_piece(tmp_path: Path) -> None:
    memory = store(tmp_path)
    scope = Scope(team="ops")
    await memory.add("memory", scope, "Deploys go through CI only")
    await memory.add("memory", scope, "Deploys are frozen on Fridays")
    with pytest.raises(MemoryOpError, match="2 entries of MEMORY.md contain 'Deploys'"):
        await memory.remove("memory", scope, "Deploys")
    with pytest.raises(MemoryOpError, match="no entry of MEMORY.md contains 'nothing'"):
        await memory.replace("memory", scope, "nothing", "x")
    await memory.replace("memory", scope, "Fridays", "Deploys are frozen on Fridays and holidays")
    await memory.remove("memory", scope, "CI only")
    entries = await memory.entries("memory", scope)
    assert [e.text for e in entries] == ["Deploys are frozen on Fridays and holidays"]
    assert (tmp_path / "teams" / "ops" / "memories" / "MEMORY.md").read_text().startswith("- 20")


async def test_user_files_are_per_platform_identity_and_names_cannot_escape(tmp_path: Path) -> None:
    memory = store(tmp_path)
    await memory.add("user", Scope(platform="telegram", user_id="42"), "Prefers short answers")
    await memory.add("user", Scope(platform="slack", user_id="42"), "Is the on-call lead")
    assert "short answers" in (tmp_path / "memories/users/telegram/42/USER.md").read_text()
    assert "on-call" in (tmp_path / "memories/users/slack/42/USER.md").read_text()
    weird = await memory.add("user", Scope(platform="discord", user_id="../../../etc"), "hello")
    assert Path(weird.file).resolve().is_relative_to(tmp_path / "memories" / "users" / "discord")
    dots = await memory.add("user", Scope(platform="..", user_id=".."), "dots")
    assert Path(dots.file).resolve().is_relative_to(tmp_path / "memories" / "users")
    with pytest.raises(MemoryOpError, match="cannot be used as a folder name"):
        await memory.add("memory", Scope(team=".."), "x")
    with pytest.raises(MemoryOpError, match="no user in this session"):
        await memory.add("user", Scope(), "x")


async def test_concurrent_writes_are_serialised_and_bounded(tmp_path: Path) -> None:
    memory = store(tmp_path, memory_chars=1_000)
    outcomes = await asyncio.gather(*(memory.add("memory", Scope(), f"entry number {i:03d} of many")
                                      for i in range(60)), return_exceptions=True)
    written = [o for o in outcomes if not isinstance(o, Exception)]
    full = [o for o in outcomes if isinstance(o, MemoryFull)]
    assert len(written) + len(full) == 60 and full
    text = (tmp_path / "memories" / "MEMORY.md").read_text()
    assert len(text) <= 1_000 and text.count("\n") == len(written)  # every accepted entry, none torn
    assert not [p for p in (tmp_path / "memories").iterdir() if ".tmp-" in p.name]


async def test_memory_show_cli(home: Path) -> None:
    memory = store(home)
    await memory.add("memory", Scope(team="ops"), "Staging is at staging.example.test")
    await memory.add("user", Scope(team="ops", platform="slack", user_id="U1"), "Likes tables")
    code, out, err = await hermes("memory", "show", "--team", "ops", "--user", "U1", "--json", home=home)
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["name"], r["platform"], r["user_id"]) for r in rows] == [("MEMORY.md", "", ""),
                                                                       ("USER.md", "slack", "U1")]
    assert rows[0]["entries"][0]["text"] == "Staging is at staging.example.test" and rows[0]["limit"] == 2_200
    assert rows[1]["entries"][0]["text"] == "Likes tables" and rows[1]["limit"] == 1_400
    code, out, err = await hermes("memory", "show", home=home)
    assert code == 0 and "MEMORY.md: 0/2200 characters" in out and "nothing remembered yet" in out
