"""Start a real Gateway in the test's event loop with in-memory adapters and a strong token."""

from __future__ import annotations

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
