"""Run one shell command inside the sandbox: build the bubblewrap or Landlock invocation, cap output and time.

bubblewrap: new user, PID, IPC, UTS, cgroup and network namespaces (`--unshare-all`; the network
is shared only when the spec allows it), system folders bound read-only, a fresh `/proc` of the
sandbox's own PID namespace (the gateway's processes are not in it), a minimal `/dev`, a tmpfs on
`/tmp`, the workspace bound read-write, hidden paths inside it covered by an empty tmpfs.
Landlock: the same folders allowed by a ruleset, `/proc` not at all, a private temporary folder
for `/tmp`'s role (TMPDIR, HOME), TCP refused unless the network is on (kernel ABI 4+).
Both: the environment is exactly `spec.env` (plus PATH, HOME, TMPDIR, LANG), resource limits
are set by the launcher before the command starts, output is kept to a head and a tail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.sandbox import launch
from agent.sandbox.policy import DEFAULT_PATH, DEVICES, SYSTEM_DIRS, Backend, SandboxSpec

LAUNCHER = Path(launch.__file__).resolve()
DRAIN_SECONDS = 1.0   # after the command exits, how long background children may keep the output open


class SandboxRefused(Exception):
    """The command cannot run under this sandbox (the message says which rule)."""


@dataclass(frozen=True)
class RunResult:
    returncode: int
    output: str
    timed_out: bool
    cut: int          # characters left out of the middle


class OutputCapture:
    """Keeps the first and last `limit` bytes of a stream and counts the rest: memory stays bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head.extend(chunk[:room])
            chunk = chunk[room:]
        if chunk:
            self.tail.extend(chunk)
            if len(self.tail) > self.limit:
                del self.tail[: len(self.tail) - self.limit]

    def text(self, max_chars: int) -> tuple[str, int]:
        """The output, its middle cut to fit `max_chars`; (text, characters cut)."""
        dropped = self.total - len(self.head) - len(self.tail)
        if dropped == 0:
            whole = (self.head + self.tail).decode("utf-8", errors="replace")
            if len(whole) <= max_chars:
                return whole, 0
            first, last = whole, whole
        else:
            first = self.head.decode("utf-8", errors="replace")
            last = self.tail.decode("utf-8", errors="replace")
        half = max_chars // 2
        kept_head, kept_tail = first[:half], last[-half:] if half else ""
        if dropped == 0:
            cut = len(first) - len(kept_head) - len(kept_tail)
        else:   # dropped bytes count as characters: close enough for a note
            cut = len(first) - len(kept_head) + len(last) - len(kept_tail) + dropped
        return f"{kept_head}\n[... {cut} characters cut ...]\n{kept_tail}", cut


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _strictly_inside(path: Path, root: Path) -> bool:
    return root in path.parents


def environment(spec: SandboxSpec, home: str) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "TERM": "dumb"}
    env.update(spec.env)
    env.update({"HOME": home, "TMPDIR": home, "PWD": str(spec.workspace)})
    return env


def bwrap_argv(bwrap: str, spec: SandboxSpec, argv: list[str]) -> list[str]:
    """The bubblewrap command line for `argv` under `spec`."""
    workspace = spec.workspace
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-all", "--hostname", "sandbox"]
    if spec.network:
        args.append("--share-net")
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    if spec.network and Path("/run/systemd/resolve").is_dir():
        args += ["--ro-bind", "/run/systemd/resolve", "/run/systemd/resolve"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    bound = [workspace, *(Path(name) for name in SYSTEM_DIRS)]
    for path in spec.read_only:
        if path.is_dir() and not _inside(path, workspace):
            args += ["--ro-bind", str(path), str(path)]
            bound.append(path)
    args += ["--bind", str(workspace), str(workspace)]
    for hidden in spec.hidden:
        if any(_strictly_inside(hidden, root) for root in bound) and hidden.exists():
            args += ["--tmpfs", str(hidden)] if hidden.is_dir() else ["--ro-bind", "/dev/null", str(hidden)]
    args += ["--chdir", str(workspace), "--"]
    return args + argv


def landlock_spec(spec: SandboxSpec, private_tmp: str) -> dict[str, object]:
    for hidden in spec.hidden:
        roots = (spec.workspace, *spec.read_only, *map(Path, SYSTEM_DIRS))
        if hidden.exists() and any(_strictly_inside(hidden, root) for root in roots):
            raise SandboxRefused(
                f"{hidden} must be hidden from commands but lies inside a folder they may use (the workspace "
                f"{spec.workspace}, a system folder or read_only_paths), and Landlock can only allow folders, not hide "
                "one inside another: move it, use a workspace outside it, or install bubblewrap")
    read = [*SYSTEM_DIRS, *(str(p) for p in spec.read_only)]
    if spec.network:
        read.append("/run/systemd/resolve")
    return {"read": read, "write": [str(spec.workspace), private_tmp], "devices": list(DEVICES),
            "network": spec.network}


async def run_sandboxed(backend: Backend, spec: SandboxSpec, argv: list[str], *, timeout: float,
                        max_output_chars: int) -> RunResult:
    """Run `argv` under `backend`; the output is capped while it is read, the time by `timeout`."""
    private_tmp = tempfile.mkdtemp(prefix="hermes-sandbox-")
    try:
        launcher_spec: dict[str, object] = {"rlimits": spec.limits.rlimits()}
        if backend.name == "bubblewrap":
            command = bwrap_argv(backend.detail, spec, argv)
            env = environment(spec, "/tmp")
        elif backend.name == "landlock":
            launcher_spec["landlock"] = landlock_spec(spec, private_tmp)
            command = argv
            env = environment(spec, private_tmp)
        else:
            command = argv
            env = environment(spec, private_tmp)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(launcher_spec), "--", *command,
            cwd=spec.workspace, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        capture = OutputCapture(max_output_chars * 4)
        timed_out = False

        async def read() -> None:
            assert process.stdout is not None
            while chunk := await process.stdout.read(65536):
                capture.add(chunk)

        reader = asyncio.ensure_future(read())
        try:
            await asyncio.wait_for(process.wait(), timeout)
            try:
                await asyncio.wait_for(asyncio.shield(reader), DRAIN_SECONDS)
            except TimeoutError:
                pass
        except TimeoutError:
            timed_out = True
        finally:
            _kill_group(process.pid)
            if process.returncode is None:
                await process.wait()
            reader.cancel()
            try:
                await reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - the pipe closed under us
                pass
        text, cut = capture.text(max_output_chars)
        return RunResult(process.returncode if process.returncode is not None else -1, text, timed_out, cut)
    finally:
        shutil.rmtree(private_tmp, ignore_errors=True)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
