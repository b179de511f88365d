"""Helpers for the MCP tests: config for the fake stdio server, a runtime with MCP installed."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from gateway.config import load_config
from gateway.home import Home
from gateway.mcp_wiring import close_mcp, install_mcp
from gateway.runtime import Runtime
from tests.conftest import ROOT

FAKE_SERVER = ROOT / "tests" / "fakes" / "mcp_server.py"


def stdio_server(name: str = "fake", *, command: str = sys.executable, args: list[str] | None = None,
                 **extra: object) -> str:
    lines = ["[[mcp.servers]]", f'name = "{name}"', f"command = {json.dumps(command)}",
             f"args = {json.dumps(args if args is not None else [str(FAKE_SERVER)])}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def mcp_settings(**values: float) -> str:
    return "[mcp]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


@asynccontextmanager
async def mcp_runtime(home: Path) -> AsyncIterator[Runtime]:
    h = Home.from_env()
    runtime = await Runtime.open(load_config(None, h), h)
    try:
        await install_mcp(runtime)
        yield runtime
    finally:
        await close_mcp(runtime)
        await runtime.close()
