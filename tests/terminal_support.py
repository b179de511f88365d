"""Driving `hermes chat` the way a person does: in a real terminal (tmux), by keys, reading the screen.

`Terminal` starts a command in a detached tmux session on a private server socket, sends keys with
`send-keys` and reads the screen with `capture-pane`. Every wait is bounded and async, so a fake
server running on the test's event loop keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

EXIT_MARK = "HERMES-EXIT="


def require_tmux() -> str:
    path = shutil.which("tmux")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing: .ci/run installs it")
        pytest.skip("tmux is not installed (apt-get install -y tmux)")
    return path


class Terminal:
    """One tmux pane running one command."""

    def __init__(self, tmux: str, name: str) -> None:
        self.tmux = tmux
        self.socket = f"hermes-test-{os.getpid()}-{name}"
        self.name = name

    async def _run(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(self.tmux, "-L", self.socket, *args,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 20)
        if process.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {err.decode()}")
        return out.decode()

    async def start(self, args: list[str], *, cwd: Path, env: dict[str, str], width: int = 110,
                    height: int = 45) -> Terminal:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = (f"cd {shlex.quote(str(cwd))} && env {exports} {shlex.join(args)}; "
                   f"echo {EXIT_MARK}$?; sleep 60")
        await self._run("-f", "/dev/null", "new-session", "-d", "-s", self.name, "-x", str(width),
                        "-y", str(height), command)
        return self

    async def keys(self, *keys: str, literal: bool = False) -> None:
        await self._run("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)

    async def type(self, text: str, enter: bool = True) -> None:
        await self.keys(text, literal=True)
        if enter:
            await self.keys("Enter")

    async def screen(self) -> str:
        return await self._run("capture-pane", "-p", "-J", "-S", "-500", "-t", self.name)

    async def wait_for(self, text: str, timeout: float = 90.0, *, after: str = "") -> str:
        """The screen once it shows `text` (below the last `after`, when given); AssertionError
        with the screen after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            screen = await self.screen()
            if not after or after in screen:
                tail = screen.rsplit(after, 1)[-1] if after else screen
                if text in tail:
                    return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")
            await asyncio.sleep(0.1)

    async def wait_for_last_line(self, line: str, timeout: float = 30.0) -> str:
        """The screen once its last non-empty line is `line` (trailing spaces ignored)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = await self.screen()
            lines = [row.rstrip() for row in screen.splitlines() if row.strip()]
            if lines and lines[-1] == line.rstrip():
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"last line is not {line!r} after {timeout}s:\n{screen}")
            await asyncio.sleep(0.1)

    async def exit_status(self, timeout: float = 30.0) -> int:
        screen = await self.wait_for(EXIT_MARK, timeout)
        return int(screen.split(EXIT_MARK, 1)[1].split()[0])

    async def close(self) -> None:
        process = await asyncio.create_subprocess_exec(self.tmux, "-L", self.socket, "kill-server",
                                                       stdout=asyncio.subprocess.DEVNULL,
                                                       stderr=asyncio.subprocess.DEVNULL)
        await process.wait()


def hermes_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def child_env(home: Path) -> dict[str, str]:
    """What the child needs: this worktree's code, the test's home, LiteLLM offline."""
    keep = ("PATH", "PYTHONPATH", "LITELLM_LOCAL_MODEL_COST_MAP", "LITELLM_MODE", "LANG", "LC_ALL")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({"HERMES_HOME": str(home), "TERM": "xterm-256color", "LANG": os.environ.get("LANG", "C.UTF-8")})
    if "PYTHONPATH" not in env:
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return env
