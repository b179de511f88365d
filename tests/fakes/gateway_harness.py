"""Start a real Gateway in the test's event loop with in-memory adapters and a strong token."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

from adapters.base import PlatformLimits
from gateway.app import Gateway
from gateway.config import load_config
from gateway.delivery import RetryPolicy
from gateway.home import Home
from tests.fakes.memory_adapter import MemoryAdapter

TOKEN = "test-token-3f9a1c77e2b84d0c9e5a6b7c8d9e0f1a"


def api_section(token: str = TOKEN, port: int = 0) -> str:
    return f'[api]\nport = {port}\ntoken = "{token}"\n'


async def start_gateway(home: Path, config_text: str, *, platforms: tuple[str, ...] = ("telegram",),
                        limits: PlatformLimits | None = None, **options: Any) -> tuple[Gateway, dict[str, MemoryAdapter]]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(config_text, encoding="utf-8")
    hermes_home = Home(home)
    config = load_config(None, hermes_home, environ={})
    adapters: dict[str, MemoryAdapter] = {}

    def factory(on_event: Any) -> list[MemoryAdapter]:
        for name in platforms:
            adapters[name] = MemoryAdapter(on_event, name=name, limits=limits)
        return list(adapters.values())

    options.setdefault("retry_policy", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    options.setdefault("grace", 5.0)
    gateway = Gateway(config, hermes_home, adapter_factory=factory, **options)
    await gateway.start()
    return gateway, adapters


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def gateway_process_with_banner(home: Path, grace: float = 5, timeout: float = 60,
                                      env: dict[str, str] | None = None) -> tuple[asyncio.subprocess.Process, str]:
    """`hermes gateway` as a real process on HERMES_HOME=home, and its start-up banner once it is out;
    `env`: the process's whole environment instead of this one's (HERMES_HOME is set in it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gateway", "--grace", str(grace),
        env={**(os.environ if env is None else env), "HERMES_HOME": str(home)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    banner = ""
    while "Stop with" not in banner:
        line = await asyncio.wait_for(process.stdout.readline(), timeout)
        assert line, f"gateway exited early: {banner}"
        banner += line.decode()
    return process, banner


async def start_gateway_process(home: Path, grace: float = 5) -> asyncio.subprocess.Process:
    """`hermes gateway` as a real process on HERMES_HOME=home, once its start-up banner is out."""
    process, _ = await gateway_process_with_banner(home, grace)
    return process
