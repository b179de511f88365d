"""`hermes gateway` processes forked from a warm parent, for tests that restart a gateway many times.

A gateway's start is mostly its imports (LiteLLM's above all, seconds of CPU each time), which a
test that SIGKILLs and restarts the gateway again and again pays at every restart. Here one
parent process (`python -m tests.fakes.gateway_forks`) imports what `hermes gateway` imports,
LiteLLM included, once, starting no thread and no event loop; each `spawn()` then forks it, and
the child, with the environment and output files asked for, runs the real command line
(`gateway.cli.main`, `hermes gateway ...`) from its start: config, store, adapters, the event loop
are all its own. Only the imports are inherited; the start-up imports themselves are exercised by
the tests that exec `python -m gateway` (tests/test_crash_recovery.py and others).

The parent reaps its children and reports each exit on its stdout (`exit PID CODE`); the test
side sees a child as a `ForkedGateway` (pid, kill, wait, returncode), like a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import signal
import sys
import time
from pathlib import Path
from typing import Any


class ForkedGateway:
    """One forked gateway process, seen from the test: signal it, wait for its exit."""

    def __init__(self, pid: int, stdout: Path) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._exited = asyncio.Event()

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    async def wait_for_output(self, text: str, timeout: float) -> str:
        """Poll the process's stdout file until it holds `text` (AssertionError if it exits first)."""
        async with asyncio.timeout(timeout):
            while True:
                output = self.stdout.read_text(errors="replace") if self.stdout.exists() else ""
                if text in output:
                    return output
                assert self.returncode is None, f"gateway exited early ({self.returncode}): {output}"
                await asyncio.sleep(0.02)

    def _exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()


class GatewayForks:
    """The warm parent, started with `start()` and ended with `stop()` (which kills children left)."""

    def __init__(self) -> None:
        self._parent: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._children: dict[int, ForkedGateway] = {}
        self._pids: asyncio.Queue[int] = asyncio.Queue()
        self._lock = asyncio.Lock()

    async def start(self, timeout: float = 180.0) -> GatewayForks:
        self._parent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fakes.gateway_forks",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert self._parent.stdout is not None
        line = await asyncio.wait_for(self._parent.stdout.readline(), timeout)
        assert line == b"ready\n", f"the fork parent did not start: {line!r}"
        self._reader = asyncio.create_task(self._read(), name="gateway-forks")
        return self

    async def spawn(self, args: list[str], env: dict[str, str], stdout: Path, stderr: Path) -> ForkedGateway:
        """Fork a child running `hermes <args>` with exactly `env`, its output appended to the files."""
        assert self._parent is not None and self._parent.stdin is not None
        async with self._lock:
            request = {"args": args, "env": env, "stdout": str(stdout), "stderr": str(stderr)}
            self._parent.stdin.write(json.dumps(request).encode() + b"\n")
            await self._parent.stdin.drain()
            pid = await asyncio.wait_for(self._pids.get(), 30)
        child = self._children.setdefault(pid, ForkedGateway(pid, stdout))
        return child

    async def stop(self) -> None:
        for child in self._children.values():
            child.kill()
        if self._parent is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*(c.wait() for c in self._children.values())), 10)
            if self._parent.stdin is not None:
                self._parent.stdin.close()
            try:
                await asyncio.wait_for(self._parent.wait(), 10)
            except TimeoutError:
                self._parent.kill()
                await self._parent.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self._parent is not None and self._parent.stdout is not None
        while line := await self._parent.stdout.readline():
            word, *rest = line.decode().split()
            if word == "pid":
                await self._pids.put(int(rest[0]))
            elif word == "exit":
                pid, code = int(rest[0]), int(rest[1])
                # an exit can be read before spawn() registered the child: register it here then
                self._children.setdefault(pid, ForkedGateway(pid, Path(os.devnull)))._exit(code)


# -- the parent's side -----------------------------------------------------------------------------
# imported by a gateway only once it serves (its components, its first model call through the
# OpenAI client): a speed-up only, so a name that is gone (a module moved) is skipped
LATER_IMPORTS = (
    "aiosqlite", "httpcore", "h2", "croniter", "apscheduler.triggers.date", "apscheduler.triggers.interval",
    "openai.resources", "openai.lib.streaming.chat", "litellm.proxy._types", "litellm.llms.litellm_proxy",
    "litellm.llms.openai_like.dynamic_config", "litellm.integrations.prometheus_services",
    "gateway.adapter_factory", "gateway.approvals", "gateway.cluster.wiring", "gateway.config_checks",
    "gateway.cron.wiring", "gateway.cron.service", "gateway.dashboard.core", "gateway.dashboard.pages",
    "gateway.maintenance", "gateway.pidfile", "gateway.reload", "anyio._backends._asyncio", "anyio.streams.memory",
)


def _preload() -> None:
    """What `hermes gateway` imports by the time it serves, LiteLLM included (no thread, no loop)."""
    import importlib

    import adapters.telegram  # noqa: F401
    import gateway.app  # noqa: F401
    import gateway.cli  # noqa: F401
    import gateway.cli.gateway_cmd  # noqa: F401
    from agent.model_call import import_litellm

    import_litellm()
    for name in LATER_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _child(request: dict[str, Any]) -> None:
    """In the forked child: take the asked environment and files, run the command line, exit."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["hermes", *request["args"]]
        from gateway.cli import main

        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on the child's stderr, then the exit code
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _serve() -> None:
    _preload()
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.buffer, selectors.EVENT_READ)
    children: set[int] = set()
    pending = b""
    open_input = True
    while open_input or children:
        if not open_input:
            time.sleep(0.02)
        elif selector.select(timeout=0.02):
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:           # the test is gone: so are the children it did not end
                open_input = False
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                out.flush()
                pid = os.fork()
                if pid == 0:
                    _child(request)
                children.add(pid)
                out.write(f"pid {pid}\n".encode())
                out.flush()
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                out.write(f"exit {pid} {os.waitstatus_to_exitcode(status)}\n".encode())
                out.flush()


if __name__ == "__main__":
    _serve()
