"""Helpers for the approval tests: a real Gateway with real adapters, and a script for the model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.app import Gateway
from gateway.config import load_config
from gateway.delivery import RetryPolicy
from gateway.home import Home
from tests.conftest import model_config
from tests.fakes.gateway_harness import api_section
from tests.fakes.model_server import FakeModelServer, text, tool_calls

TERMINAL = "[tools.terminal]\nenabled = true\n"


def approvals_section(timeout: float = 10.0) -> str:
    return f"[approvals]\ntimeout_seconds = {timeout}\n"


async def start_real_gateway(home: Path, model_server: FakeModelServer, platform_section: str, *,
                             timeout: float = 10.0) -> Gateway:
    """The gateway as `hermes gateway` runs it: adapters built from the config, terminal on."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(model_config(model_server) + api_section() + platform_section + TERMINAL
                                      + approvals_section(timeout), encoding="utf-8")
    hermes_home = Home(home)
    config = load_config(None, hermes_home, environ={})
    gateway = Gateway(config, hermes_home, grace=5.0,
                      retry_policy=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    await gateway.start()
    return gateway


def script_cleanup(model_server: FakeModelServer, folder: str = "build", final: str = "Cleaned up.") -> None:
    """The model makes `folder` (a harmless command), then asks to `rm -rf` it, then answers."""
    model_server.add(tool_calls(("terminal", {"command": f"mkdir -p {folder}/sub && echo made"})),
                     tool_calls(("terminal", {"command": f"rm -rf {folder}"})),
                     text(final))


def folders(home: Path, name: str = "build") -> list[Path]:
    """Every `name` folder in any session workspace."""
    return [p for p in (home / "workspaces").glob(f"*/{name}") if p.is_dir()]


def tool_results(model_server: FakeModelServer) -> list[str]:
    """The tool results the model saw, in order (from the last request, which holds them all)."""
    last = model_server.requests_with_purpose("chat")[-1]  # not a learning review that followed the turn
    return [str(m.get("content")) for m in last["messages"] if m.get("role") == "tool"]


async def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def approval_rows(gateway: Gateway) -> list[dict[str, Any]]:
    assert gateway.runtime is not None
    keep = ("id", "tool", "rule", "outcome", "scope", "answered_by", "platform", "user_id")
    return [{k: r[k] for k in keep} for r in await gateway.runtime.store.approval_request_rows()]
