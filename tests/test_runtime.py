"""The runtime's per-session workspaces."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Config
from gateway.home import Home
from gateway.runtime import Runtime


async def test_workspaces_are_per_session_and_never_collide(tmp_path: Path) -> None:
    runtime = await Runtime.open(Config(), Home(tmp_path).ensure())
    try:
        first = runtime.workspace_for("telegram:42")
        second = runtime.workspace_for("telegram_42")   # same readable name, another session
        again = runtime.workspace_for("telegram:42")
        assert first.root != second.root and first.root == again.root
        assert first.root.is_dir() and second.root.is_dir()
        assert first.root.parent == tmp_path / "workspaces" and first.root.name.startswith("telegram_42-")
        assert runtime.workspace_for("../../etc").root.parent == tmp_path / "workspaces"
    finally:
        await runtime.close()
