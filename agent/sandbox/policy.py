"""What a sandboxed command may touch, and which sandbox this machine can give it.

A `SandboxSpec` is the same for every backend: the workspace read-write, system folders
read-only, a private temporary folder, no HERMES_HOME and nothing else of the user's home, only
the environment variables the config passes, network off unless enabled, resource limits.
`choose_backend(mode)` picks bubblewrap, Landlock or none for `[tools.terminal] sandbox` and
says why when it cannot (the message the terminal and `hermes doctor` show).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from agent.sandbox import launch

# Read-only inside the sandbox (when present): programs, libraries, system configuration.
SYSTEM_DIRS: tuple[str, ...] = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
DEVICES: tuple[str, ...] = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one command (0 = no limit)."""

    cpu_seconds: int = 60
    memory_bytes: int = 2 << 30
    processes: int = 256
    file_bytes: int = 1 << 30

    def rlimits(self) -> dict[str, int]:
        return {"cpu": self.cpu_seconds, "as": self.memory_bytes, "nproc": self.processes,
                "fsize": self.file_bytes}


@dataclass(frozen=True)
class SandboxSpec:
    """What one command may use."""

    workspace: Path
    read_only: tuple[Path, ...] = ()          # extra folders visible read-only (skill libraries, ...)
    hidden: tuple[Path, ...] = ()             # never visible, even inside the workspace (HERMES_HOME)
    env: dict[str, str] = field(default_factory=dict)
    network: bool = False
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Backend:
    """The sandbox a command runs in: "bubblewrap", "landlock" or "none"; `problem` when there is none to use."""

    name: str
    detail: str = ""
    problem: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem


@functools.lru_cache(maxsize=8)
def _bwrap_works(path: str) -> str:
    """'' when `path` can build a sandbox here, else why not (probed once per binary)."""
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all",
                                "--die-with-parent", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{path} could not run: {exc}"
    if probe.returncode != 0:
        return f"{path} cannot create namespaces here: {probe.stderr.decode(errors='replace').strip()[:300]}"
    return ""


def bubblewrap() -> Backend:
    path = shutil.which("bwrap")
    if path is None:
        return Backend("bubblewrap", problem="bubblewrap is not installed (`apt-get install bubblewrap`; "
                                             "no `bwrap` on PATH)")
    problem = _bwrap_works(path)
    return Backend("bubblewrap", detail=path, problem=problem)


def landlock() -> Backend:
    abi = launch.abi_version()
    if abi < 1:
        return Backend("landlock", problem="Landlock is not available (needs Linux 5.13+ with landlock in the "
                                           f"kernel's LSM list; this is {os.uname().release})")
    return Backend("landlock", detail=f"ABI {abi}")


def choose_backend(mode: str) -> Backend:
    """The backend for `[tools.terminal] sandbox = mode` (auto | bubblewrap | landlock | none)."""
    if mode == "none":
        return Backend("none", detail="commands run UNSANDBOXED: they can read and change everything the "
                                      "gateway's user can, HERMES_HOME and its secrets included")
    if mode == "bubblewrap":
        return bubblewrap()
    if mode == "landlock":
        return landlock()
    first = bubblewrap()
    if first.usable:
        return first
    second = landlock()
    if second.usable:
        return Backend("landlock", detail=f"{second.detail}; bubblewrap unusable: {first.problem}")
    return Backend("auto", problem=f"no sandbox is available: {first.problem}; {second.problem}. "
                                   'Install bubblewrap, or set [tools.terminal] sandbox = "none" to run '
                                   "commands without one (they can then read the gateway's secrets)")
