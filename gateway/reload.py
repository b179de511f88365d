"""SIGHUP: re-read the configuration and apply what can change without dropping a connection.

`diff_reloadable(old, new)` compares two configs setting by setting and returns a `ReloadPlan`:
which changed settings apply live, which need a restart, and `effective`: the old config with
only the live settings taken from the new one (so a restart-only change, e.g. a new token, is
not half-applied). `apply_reload(plan, gateway)` swaps it in: the router (teams), access control
(allowlists, admins, allowed channels, mention rules), the learning loop's settings, the log
level, and `config` on the gateway and its runtime (maintenance reads `[store].retention_days`
from there). It builds everything first, so a plan that cannot be applied changes nothing.

Names of settings are logged, never their values (tokens stay out of the log).

    install_sighup(asyncio.get_running_loop(), gateway, config_path)   # after gateway.start()
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.config import Config, ConfigError, load_config
from gateway.logging_setup import set_level

log = logging.getLogger(__name__)

PLATFORM_LIVE = ("allow_users", "admins", "allow_channels", "require_mention", "session_scope", "channels")
# Setting paths (or prefixes, ending in ".") that apply without a restart. Everything else
# (model, agent, tools, api host/port/token, platform enabled/token/mode, memory, skills, cron,
# the rest of store) is only read at start, so a change there is named as "needs a restart".
LIVE_SETTINGS: tuple[str, ...] = (
    *(f"{platform}.{key}" for platform in ("telegram", "discord", "slack") for key in PLATFORM_LIVE),
    "teams",
    "learning.",
    "logging.level",
    "store.retention_days",
    "trajectories_export",
)
RESTART_EXCEPTIONS = ("learning.model",)  # the checkpoint model's client is built at start


@dataclass
class ReloadPlan:
    effective: Config
    live: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.live or self.restart)

    def summary(self) -> str:
        if not self.changed:
            return "configuration reloaded: nothing changed"
        parts = []
        if self.live:
            parts.append("applied " + ", ".join(self.live))
        if self.restart:
            parts.append("NOT applied until restart: " + ", ".join(self.restart))
        return "configuration reloaded: " + "; ".join(parts)


def _is_live(path: str) -> bool:
    if path in RESTART_EXCEPTIONS:
        return False
    return any(path == rule or (rule.endswith(".") and path.startswith(rule)) for rule in LIVE_SETTINGS)


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted setting paths of a config: nested sections recurse; lists and dicts are one setting."""
    if isinstance(value, BaseModel):
        found: dict[str, Any] = {}
        for name in type(value).model_fields:
            found.update(_leaves(getattr(value, name), f"{prefix}{name}."))
        return found
    if isinstance(value, list):
        value = [v.model_dump() if isinstance(v, BaseModel) else v for v in value]
    elif isinstance(value, dict):
        value = {k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in value.items()}
    return {prefix.rstrip("."): value}


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data[part]
    data[last] = value


def diff_reloadable(old: Config, new: Config) -> ReloadPlan:
    """What changed between `old` and `new`, split into live and restart-only settings."""
    before, after = _leaves(old), _leaves(new)
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    live = [path for path in changed if _is_live(path)]
    restart = [path for path in changed if not _is_live(path)]
    data = old.model_dump()
    for path in live:
        _set_path(data, path, after[path])
    effective = Config.model_validate(data)
    return ReloadPlan(effective, live, restart)


def apply_reload(plan: ReloadPlan, gateway: Any) -> None:
    """Swap `plan.effective` into a running gateway (duck-typed: config, router, access, runtime)."""
    if not plan.live:
        return
    from gateway.routing import Router

    config = plan.effective
    router = Router(config)  # raises ValueError on a bad [[teams]] entry, before anything changed
    level = config.logging.level
    runtime = getattr(gateway, "runtime", None)
    learning = runtime.services.get("learning") if runtime is not None else None

    gateway.config = config
    if hasattr(gateway, "router"):
        gateway.router = router
    access = getattr(gateway, "access", None)
    if access is not None:
        access.router = router
    if runtime is not None:
        runtime.config = config
    if learning is not None and hasattr(learning, "settings"):
        learning.settings = config.learning
    set_level(level)


async def reload_gateway(gateway: Any, config_path: Path | None) -> ReloadPlan | None:
    """Re-read the config file and apply it; a bad file is logged and changes nothing (returns None)."""
    try:
        new = await asyncio.to_thread(load_config, config_path, gateway.home)
        plan = diff_reloadable(gateway.config, new)
        apply_reload(plan, gateway)
    except (ConfigError, ValueError) as exc:
        log.error("configuration reload failed, keeping the running configuration: %s", exc)
        return None
    log.info(plan.summary())
    if plan.restart:
        log.warning("these settings changed but only take effect after a restart: %s", ", ".join(plan.restart))
    return plan


def install_sighup(loop: asyncio.AbstractEventLoop, gateway: Any, config_path: Path | None, *,
                   on_reloaded: Callable[[ReloadPlan | None], None] | None = None) -> Callable[[], None]:
    """Reload on SIGHUP (one reload at a time; a signal during a reload queues one more). Returns an
    uninstall function."""
    state: dict[str, Any] = {"task": None, "again": False}

    async def run() -> None:
        while True:
            state["again"] = False
            plan = await reload_gateway(gateway, config_path)
            if on_reloaded is not None:
                on_reloaded(plan)
            if not state["again"]:
                break
        state["task"] = None

    def on_signal() -> None:
        log.info("SIGHUP received: reloading the configuration")
        if state["task"] is not None:
            state["again"] = True
            return
        state["task"] = loop.create_task(run(), name="config-reload")

    loop.add_signal_handler(signal.SIGHUP, on_signal)
    return lambda: loop.remove_signal_handler(signal.SIGHUP)
