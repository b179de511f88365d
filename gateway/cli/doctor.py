"""`hermes doctor`: check the home, the config, the model and each platform, and say what to fix."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option
from gateway.cli.identity import CLI_USER_ID, user_md_path


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:
                pass
    return total


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


async def _check_model(config: object) -> Check:
    from gateway.model_check import check_model

    result = await check_model(config.model)  # type: ignore[attr-defined]
    return Check("model", result.ok, result.summary, result.fix)


async def _doctor(config_path: Path | None, skip_model: bool) -> list[Check]:
    from gateway.config import ConfigError, load_config
    from gateway.home import Home

    checks: list[Check] = []
    home = Home.from_env()
    try:
        home.ensure()
        probe = home.root / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
        size = await asyncio.to_thread(_size, home.root)
        checks.append(Check("home", True, f"{home.root} is writable; {_human(size)} in use"))
        mode = home.root.stat().st_mode & 0o077
        if mode:
            checks.append(Check("home permissions", True, f"{home.root} is readable by other users",
                                f"chmod 700 {home.root}", warning=True))
    except OSError as exc:
        checks.append(Check("home", False, f"{home.root}: {exc}", "set HERMES_HOME to a writable folder"))
        return checks
    file = config_path or home.config_file
    try:
        config = load_config(config_path, home)
    except ConfigError as exc:
        checks.append(Check("config", False, str(exc), _config_fix(str(exc), file)))
        return checks
    checks.append(Check("config", True, f"{file}" + ("" if file.exists() else " (absent: defaults in use)")))
    from gateway.config_checks import startup_problems

    problems = startup_problems(config)  # the checks `hermes gateway` and `hermes config check` run
    if problems:
        checks.append(Check("gateway start", False, "the gateway would refuse this config:\n    "
                            + "\n    ".join(problems), f"fix what is named above in {file}, then run "
                            "`hermes config check`"))
    checks.append(Check("terminal user", True, f"{CLI_USER_ID} (hermes chat); USER.md: {user_md_path(home.root)}"))
    try:
        from gateway.store import open_configured_store

        store = await open_configured_store(config, home)
        status = await store.schema_status()
        checks.append(Check("state database", True, f"{store.describe()}, revision {status.current}"))
        if store.db.is_postgresql:
            checks.append(_check_workspaces(config, home))
        await store.close()
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("state database", False, f"{type(exc).__name__}: {exc}",
                            "restore a backup (hermes backup restore FILE) or move state.db aside"))
    if skip_model:
        checks.append(Check("model", True, "not checked (--skip-model)", warning=True))
    else:
        checks.append(await _check_model(config))
    for name in ("telegram", "discord", "slack"):
        section = getattr(config, name)
        if not section.enabled:
            continue
        if not section.token:
            checks.append(Check(name, False, "enabled but no token", f"set [{name}] token = \"${{...}}\""))
            continue
        if not section.allow_users:
            checks.append(Check(name, True, "no allow_users: every user must pair first (hermes pairing approve)",
                                warning=True))
        checker = _platform_checker()
        if checker is not None:
            checks.append(Check(name, *await checker(name, config)))
        else:
            checks.append(Check(name, True, "token set (not verified)", warning=True))
    if config.api.enabled and not config.api.token.strip() and not os.environ.get("HERMES_API_TOKEN", "").strip():
        checks.append(Check("api token", True, "no [api] token and no HERMES_API_TOKEN yet: the gateway creates "
                            f"one in {home.secrets_file} on first start", warning=True))
    if shutil.which("git") is None:
        checks.append(Check("git", True, "git not found: skill taps need it", "install git", warning=True))
    checks += await asyncio.to_thread(_bundled_changes, home, config)
    checks.append(_check_sandbox(config.tools.terminal))
    return checks


def _bundled_changes(home: object, config: object) -> list[Check]:
    """One line when bundled skills were changed locally: upgrades keep the local copy."""
    from gateway.skills_wiring import library_root
    from skills.bundled_install import locally_changed
    from skills.library import SkillLibrary

    teams = [""] + [t.name for t in getattr(config, "teams", [])]
    changed = [f"{t + '/' if t else ''}{n}" for t in teams
               for n in locally_changed(SkillLibrary(library_root(home, t), rescan_interval=0))]  # type: ignore[arg-type]
    if not changed:
        return []
    return [Check("bundled skills", True, f"changed locally, kept on upgrade (not updated): {', '.join(changed)}",
                  "compare with skills/bundled/ and merge by hand if you want the new version", warning=True)]


def _check_workspaces(config: Any, home: Any) -> Check:
    """With a shared store any process may run a session's next turn: its files must be there too."""
    from gateway.runtime import WORKSPACES_ENV, workspaces_root

    root = workspaces_root(config, home)
    if root != home.workspaces_dir:
        return Check("workspaces", True, f"{root} (share it between the gateway processes)")
    return Check("workspaces", True, f"{root} is this home's own: with several gateway processes a session's "
                 "next turn may run on another one and not see its files", "set [tools] workspaces_dir (or "
                 f"{WORKSPACES_ENV}) to a directory every process shares", warning=True)


def _check_sandbox(terminal: object) -> Check:
    """Which sandbox terminal commands run in, said loudly when there is none."""
    from agent.sandbox.policy import choose_backend

    mode = terminal.sandbox  # type: ignore[attr-defined]
    backend = choose_backend(mode)
    enabled = terminal.enabled  # type: ignore[attr-defined]
    install = ("install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces, or run "
               "on Linux 5.13+ with Landlock enabled; see deploy/README.md")
    if not backend.usable:
        if not enabled:
            return Check("terminal sandbox", True, f"terminal off; it could not run here: {backend.problem}",
                         install, warning=True)
        return Check("terminal sandbox", False, f"TERMINAL ENABLED BUT NO SANDBOX CAN RUN: every command is refused "
                                                f"({backend.problem})", install)
    if backend.name == "none":
        return Check("terminal sandbox", True, f"NO SANDBOX (sandbox = \"none\"): {backend.detail}",
                     'set [tools.terminal] sandbox = "auto"', warning=True)
    state = "commands run" if enabled else "terminal off; commands would run"
    network = "network on" if terminal.network else "network off"  # type: ignore[attr-defined]
    if backend.name == "landlock" and not terminal.network:  # type: ignore[attr-defined]
        from agent.sandbox import launch

        network = ("TCP off (Landlock cannot refuse UDP)" if launch.abi_version() >= 4
                   else "NETWORK NOT BLOCKED (Landlock ABI below 4)")
    return Check("terminal sandbox", True, f"{state} in {backend.name} ({backend.detail}): workspace only, "
                                           f"HERMES_HOME hidden, {network}")
def _config_fix(error: str, file: Path) -> str:
    """What to do about a config that does not load, naming the line or the key the error names."""
    import re

    where = re.search(r":(\d+):\d+: not valid TOML", error)
    if where:
        return f"fix line {where.group(1)} of {file} (marked above); then run `hermes config check`"
    if "environment variable" in error:
        return "export the variable named above, or put NAME=... in HERMES_HOME/secrets.env"
    return f"fix the key named above in {file}; config.example.toml lists every key with its default"


def _platform_checker():  # type: ignore[no-untyped-def]
    """The adapters' credential check, when the installed adapters provide one."""
    try:
        from gateway.adapter_factory import check_credentials  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        return None
    return check_credentials


@click.command()
@config_option
@click.option("--skip-model", is_flag=True, help="Do not call the model.")
def doctor(config_path: Path | None, skip_model: bool) -> None:
    """Check the home, the config, the model's reachability and each platform's credentials."""
    checks = asyncio.run(_doctor(config_path, skip_model))
    failed = False
    for check in checks:
        mark = "!" if check.warning else ("✓" if check.ok else "✗")
        click.echo(f"{mark} {check.name}: {check.detail}")
        if check.fix and (not check.ok or check.warning):
            click.echo(f"    fix: {check.fix}")
        failed |= not check.ok
    sys.exit(1 if failed else 0)
