"""`HERMES_HOME/gateway.pid`: one running gateway per home, and a way for other commands to see it.

The running gateway holds an exclusive `fcntl.flock` on the file for its whole life and writes
its pid into it. The kernel drops the lock when the process dies (even on SIGKILL), so a stale
file left behind (after a crash) never reads as "running": `running_gateway_pid` asks for the
lock, and only a live holder refuses it. A clean stop removes the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PID_FILE_NAME = "gateway.pid"


class GatewayAlreadyRunning(RuntimeError):
    """Another gateway holds this home's pid file."""


def pid_file(home_root: Path) -> Path:
    return home_root / PID_FILE_NAME


@contextmanager
def hold_pidfile(home_root: Path) -> Iterator[Path]:
    """Hold the home's pid file while the block runs, and remove it when the block ends; raise
    GatewayAlreadyRunning if it is taken."""
    path = pid_file(home_root)
    fd = _lock(path, home_root)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
        # a clean stop leaves no pid file; removed while still locked, so a gateway starting now
        # either waited for this lock (and finds its file gone: it retries on a new one) or comes after
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    finally:
        os.close(fd)  # closing releases the lock


def _lock(path: Path, home_root: Path) -> int:
    """An fd of `path` holding its exclusive lock. The file may be removed by the previous holder
    between our open and our lock: then lock the file that is there now."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise GatewayAlreadyRunning(
                f"a gateway is already running on {home_root} (pid {pid or '?'}); stop it first"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def running_gateway_pid(home_root: Path) -> int | None:
    """The pid of the gateway running on this home, or None when none holds the pid file."""
    path = pid_file(home_root)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
