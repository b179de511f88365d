"""A crash-safe checkpoint directory of trajectories: sharded JSONL plus an index of completed ids.

Layout of `DIR`:
    shards/results-00000.jsonl   one trajectory a line, appended and fsync'd one line per write
    index.jsonl                  {"id", "shard", "offset", "length", "success"} per result (derived)
    workspaces/<id>/             each prompt's workspace while it runs
    .lock                        held (flock) by the one process writing here

The shards are the source of truth. A result counts as done once its whole line (newline
included) is in a shard. Every line is written with a single `os.write` to an O_APPEND
descriptor and fsync'd before the next; when a writer is killed (even with SIGKILL) the worst
left behind is one torn final line. Opening the store truncates a torn final line, skips (and
reports) any other unreadable line, keeps the first of duplicate ids, and rebuilds the index
from the shards, so a restarted batch finishes every prompt exactly once.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from agent.trajectory import Trajectory
from skills.paths import safe_join

log = logging.getLogger(__name__)

SHARD_PATTERN = re.compile(r"^results-(\d{5})\.jsonl$")
DEFAULT_SHARD_RECORDS = 1000
DEFAULT_SHARD_BYTES = 128 * 1024 * 1024


class CheckpointError(Exception):
    """The checkpoint directory cannot be used (busy, unreadable, not a directory)."""


@dataclass(frozen=True)
class IndexEntry:
    id: str
    shard: str
    offset: int
    length: int
    success: bool


@dataclass
class RecoveryReport:
    """What opening the checkpoint found and repaired."""

    results: int = 0
    torn_bytes_truncated: int = 0
    bad_lines: list[str] = field(default_factory=list)      # "shard:line: why"
    duplicates: int = 0
    moved_aside_to: Path | None = None


def _line_id(raw: bytes) -> tuple[str, bool] | None:
    """(id, success) of a complete shard line, or None when it is not a trajectory object."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    return data["id"], bool(data.get("success"))


def scan_shard(path: Path) -> tuple[list[tuple[int, int, str, bool]], int, list[str]]:
    """Read one shard: (offset, length, id, success) of good lines, the size of the valid
    prefix (everything after it is a torn tail) and a list of problems for bad middle lines."""
    data = path.read_bytes()
    good: list[tuple[int, int, str, bool]] = []
    problems: list[str] = []
    offset = 0
    valid_end = 0
    number = 0
    while offset < len(data):
        number += 1
        newline = data.find(b"\n", offset)
        if newline < 0:  # no newline: the write never finished
            break
        raw = data[offset:newline]
        parsed = _line_id(raw)
        if parsed is None:
            problems.append(f"{path.name}:{number}: not a trajectory line, skipped")
        else:
            good.append((offset, newline + 1 - offset, parsed[0], parsed[1]))
        offset = newline + 1
        valid_end = offset
    return good, valid_end, problems


class CheckpointStore:
    """Appends trajectories to shards; one writer per directory (an flock guards it)."""

    def __init__(self, root: Path, *, shard_records: int = DEFAULT_SHARD_RECORDS,
                 shard_bytes: int = DEFAULT_SHARD_BYTES) -> None:
        self.root = root
        self.shards_dir = root / "shards"
        self.index_path = root / "index.jsonl"
        self.workspaces_dir = root / "workspaces"
        self.shard_records = shard_records
        self.shard_bytes = shard_bytes
        self.index: dict[str, IndexEntry] = {}
        self._lock_fd: int | None = None
        self._shard_fd: int | None = None
        self._index_file = None
        self._shard_name = ""
        self._shard_count = 0
        self._shard_size = 0
        self._write_lock = asyncio.Lock()

    # -- opening and recovery -------------------------------------------------------------------
    @classmethod
    def open(cls, root: Path, *, resume: bool = True, **kwargs: int) -> tuple[CheckpointStore, RecoveryReport]:
        """Lock `root`, repair it, rebuild the index (blocking: call it with asyncio.to_thread)."""
        if root.exists() and not root.is_dir():
            raise CheckpointError(f"{root}: exists and is not a directory")
        store = cls(root, **kwargs)
        store.shards_dir.mkdir(parents=True, exist_ok=True)
        store._acquire_lock()
        report = RecoveryReport()
        try:
            if not resume and store._shard_paths():
                report.moved_aside_to = store._move_aside()
            store._recover(report)
        except BaseException:
            store.close()
            raise
        return store, report

    def _acquire_lock(self) -> None:
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CheckpointError(f"{self.root}: another hermes batch is writing to this checkpoint") from None
        self._lock_fd = fd

    def _shard_paths(self) -> list[Path]:
        return sorted(p for p in self.shards_dir.iterdir() if SHARD_PATTERN.match(p.name))

    def _move_aside(self) -> Path:
        target = self.root / f"previous-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        target.mkdir()
        shutil.move(str(self.shards_dir), str(target / "shards"))
        if self.index_path.exists():
            shutil.move(str(self.index_path), str(target / "index.jsonl"))
        self.shards_dir.mkdir()
        return target

    def _recover(self, report: RecoveryReport) -> None:
        self.index = {}
        paths = self._shard_paths()
        for path in paths:
            good, valid_end, problems = scan_shard(path)
            size = path.stat().st_size
            if valid_end < size:
                with open(path, "r+b") as handle:
                    handle.truncate(valid_end)
                    handle.flush()
                    os.fsync(handle.fileno())
                report.torn_bytes_truncated += size - valid_end
                log.warning("%s: truncated a torn final line (%d bytes)", path, size - valid_end)
            report.bad_lines.extend(problems)
            for offset, length, ident, success in good:
                if ident in self.index:
                    report.duplicates += 1
                    continue
                self.index[ident] = IndexEntry(ident, path.name, offset, length, success)
        report.results = len(self.index)
        self._write_index()
        if paths:
            last = paths[-1]
            count = sum(1 for e in self.index.values() if e.shard == last.name)
            if count < self.shard_records and last.stat().st_size < self.shard_bytes:
                self._open_shard(last.name, count)
                return
            number = int(SHARD_PATTERN.match(last.name).group(1)) + 1  # type: ignore[union-attr]
        else:
            number = 0
        self._open_shard(f"results-{number:05d}.jsonl", 0)

    def _write_index(self) -> None:
        temporary = self.root / "index.jsonl.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.writelines(_index_line(entry) for entry in self.index.values())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.index_path)
        self._index_file = open(self.index_path, "a", encoding="utf-8")

    def _open_shard(self, name: str, count: int) -> None:
        if self._shard_fd is not None:
            os.close(self._shard_fd)
        path = self.shards_dir / name
        created = not path.exists()
        self._shard_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:
            _fsync_dir(self.shards_dir)
        self._shard_name = name
        self._shard_count = count
        self._shard_size = os.fstat(self._shard_fd).st_size

    # -- queries ----------------------------------------------------------------------------
    def completed_ids(self) -> set[str]:
        return set(self.index)

    def workspace_for(self, ident: str) -> Path:
        """A fresh directory name for a prompt id (sanitised, with a hash against collisions)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", ident)[:80].lstrip(".") or "prompt"
        digest = hashlib.sha1(ident.encode("utf-8")).hexdigest()[:10]
        return safe_join(self.workspaces_dir, f"{safe}-{digest}")

    # -- writing ----------------------------------------------------------------------------
    async def append(self, trajectory: Trajectory) -> None:
        """Write one (already redacted) trajectory durably; duplicates of a done id are refused."""
        line = trajectory.to_line().encode("utf-8")
        async with self._write_lock:
            if trajectory.id in self.index:
                raise CheckpointError(f"{trajectory.id!r} is already in the checkpoint")
            await asyncio.to_thread(self._append_sync, trajectory.id, trajectory.success, line)

    def _append_sync(self, ident: str, success: bool, line: bytes) -> None:
        if self._shard_count >= self.shard_records or self._shard_size >= self.shard_bytes:
            number = int(SHARD_PATTERN.match(self._shard_name).group(1)) + 1  # type: ignore[union-attr]
            self._open_shard(f"results-{number:05d}.jsonl", 0)
        assert self._shard_fd is not None
        offset = self._shard_size
        written = os.write(self._shard_fd, line)
        while written < len(line):  # regular files write everything; loop for exotic filesystems
            written += os.write(self._shard_fd, line[written:])
        os.fsync(self._shard_fd)
        self._shard_size += len(line)
        self._shard_count += 1
        entry = IndexEntry(ident, self._shard_name, offset, len(line), success)
        self.index[ident] = entry
        if self._index_file is not None:
            self._index_file.write(_index_line(entry))
            self._index_file.flush()

    def close(self) -> None:
        if self._shard_fd is not None:
            os.close(self._shard_fd)
            self._shard_fd = None
        if self._index_file is not None:
            self._index_file.close()
            self._index_file = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None


def _index_line(entry: IndexEntry) -> str:
    return json.dumps({"id": entry.id, "shard": entry.shard, "offset": entry.offset, "length": entry.length,
                       "success": entry.success}, ensure_ascii=False) + "\n"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading (export, compress) -----------------------------------------------------------------
def iter_jsonl_trajectories(path: Path, problems: list[str] | None = None) -> Iterator[Trajectory]:
    """Trajectories of one JSONL file; unreadable lines are reported into `problems` and skipped."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            if not raw.endswith(b"\n"):
                if problems is not None:
                    problems.append(f"{path}:{number}: torn final line, skipped")
                continue
            try:
                yield Trajectory.from_line(raw.decode("utf-8"))
            except ValueError as exc:
                if problems is not None:
                    first = str(exc).splitlines()[0]
                    problems.append(f"{path}:{number}: not a trajectory ({first}), skipped")


def iter_checkpoint(root: Path, problems: list[str] | None = None) -> Iterator[Trajectory]:
    """Every trajectory of a checkpoint directory, shard by shard, first of each id only."""
    shards = root / "shards"
    if not shards.is_dir():
        raise CheckpointError(f"{root}: not a checkpoint directory (no shards/ folder)")
    seen: set[str] = set()
    for path in sorted(p for p in shards.iterdir() if SHARD_PATTERN.match(p.name)):
        for trajectory in iter_jsonl_trajectories(path, problems):
            if trajectory.id in seen:
                if problems is not None:
                    problems.append(f"{path}: duplicate id {trajectory.id!r}, skipped")
                continue
            seen.add(trajectory.id)
            yield trajectory


def iter_source(path: Path, problems: list[str] | None = None) -> Iterator[Trajectory]:
    """A checkpoint directory or a trajectory JSONL file."""
    if path.is_dir():
        return iter_checkpoint(path, problems)
    if path.is_file():
        return iter_jsonl_trajectories(path, problems)
    raise CheckpointError(f"{path}: no such checkpoint directory or trajectory file")
