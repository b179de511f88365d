"""Bounded memory files: MEMORY.md per team library and USER.md per user per platform identity.

Layout under HERMES_HOME (every part built from a name goes through `skills.paths.safe_join`):
- `memories/MEMORY.md` for the library without a team, `teams/<team>/memories/MEMORY.md` for a team;
- `memories/users/<platform>/<user_id>/USER.md` for one person on one platform.

A file is a list of short dated entries, one per line (`- 2025-03-01 Deploys go through CI only`).
Each file has a character bound (`[memory] memory_chars`, `user_chars`). An entry that would not
fit is refused with a message saying how full the file is, so the agent consolidates (replace or
remove entries); nothing is ever truncated silently. Text that looks like a secret is refused.
Writes are atomic (temporary file + `os.replace`) and serialised per file, within this process by
an asyncio lock and across processes by an `flock` on a lock file next to it.

With a `MemoryVersionStore` (`versions=`, the gateway's database) the store holds each file and
every change to it, and a write is a compare-and-set instead of a file lock: the writer reads the
file's version, works the change out on its text and commits it only if the version is unchanged
(else it reads the new text and works it out again), writing the file inside the store's
transaction. A person's edit of the file is picked up first (a version of its own, "file"); a
stale copy (an older version, as on a second home sharing the store) is rewritten from the store.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import quote

from agent.redact import Redactor
from skills.paths import safe_join
from skills.versions import VersionConflict, text_digest

Target = Literal["memory", "user"]
MEMORY_FILE = "MEMORY.md"
USER_FILE = "USER.md"
ENTRY = re.compile(r"^- (\d{4}-\d{2}-\d{2}) (.*)$")
DEFAULT_PLATFORM = "local"
MAX_ATTEMPTS = 60


class MemoryOpError(Exception):
    """A memory operation that cannot be done as asked (the message says why and what to do)."""


class MemoryFull(MemoryOpError):
    """The entry does not fit in the file's bound: the agent must consolidate first."""


class SecretRefused(MemoryOpError):
    """The text looks like a secret; memory never stores secrets."""


@dataclass(frozen=True)
class Scope:
    """Whose memory: the team library (\"\" = no team) and the person (platform + user id)."""

    team: str = ""
    platform: str = ""
    user_id: str = ""


@dataclass(frozen=True)
class StoredMemory:
    """A memory file as the store holds it: `version` 0 = never stored, `content` None = no file."""

    version: int = 0
    content: str | None = None
    digest: str = ""


class MemoryVersionStore(Protocol):
    """The memory files in a database (the gateway's store implements it); keys are the files'
    paths under HERMES_HOME."""

    async def memory_state(self, key: str) -> StoredMemory: ...

    async def memory_commit(self, key: str, expected: int, content: str | None, *, action: str,
                            origin: str = "", apply: Callable[[], Awaitable[None]] | None = None) -> int:
        """Store `content` if the file's version is `expected` (else VersionConflict); the new version."""
        ...

    async def memory_known(self, key: str, digest: str) -> bool:
        """Whether some version of the file had `digest` (a stale copy rather than a person's edit)."""
        ...

    async def memory_refresh(self, key: str, write: Callable[[str | None, int], Awaitable[None]]) -> None:
        """Run `write(content, version)` with the stored text while no commit can land."""
        ...

    async def memory_keys(self) -> list[str]: ...


@dataclass(frozen=True)
class Entry:
    date: str
    text: str

    def line(self) -> str:
        return f"- {self.date} {self.text}"


EntryChange = Callable[[list[Entry]], list[Entry]]


@dataclass(frozen=True)
class Change:
    """One change made to a memory file (for the learning log)."""

    target: Target
    action: str
    file: str
    before: str | None
    after: str | None


def _component(value: str) -> str:
    """A platform or user id as one path component (reversible escaping of anything unusual)."""
    escaped = quote(value, safe="-_.@+")
    return escaped.replace(".", "%2E") if escaped in (".", "..") else escaped


def _team(team: str) -> str:
    if team in (".", "..") or "/" in team or "\\" in team:
        raise MemoryOpError(f"team name {team!r} cannot be used as a folder name")
    return team


def parse_entries(text: str) -> list[Entry]:
    entries = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = ENTRY.match(line)
        if match:
            entries.append(Entry(match.group(1), match.group(2).strip()))
        else:  # a line written by hand: keep it, undated
            entries.append(Entry("", line[2:].strip() if line.startswith("- ") else line))
    return entries


def render_entries(entries: list[Entry]) -> str:
    return "".join((e.line() if e.date else f"- {e.text}") + "\n" for e in entries)


def _clean(text: str) -> str:
    """One short line: whitespace (newlines included) collapsed."""
    return " ".join(text.split())


@dataclass
class MemoryStore:
    """The memory files of one HERMES_HOME. Share one instance per process."""

    root: Path
    memory_chars: int = 2_200
    user_chars: int = 1_400
    redactor: Redactor = field(default_factory=Redactor.from_environ)
    versions: MemoryVersionStore | None = None
    _locks: dict[Path, asyncio.Lock] = field(default_factory=dict, repr=False)

    # -- paths ----------------------------------------------------------------------------------
    def memory_path(self, team: str = "") -> Path:
        if team:
            return safe_join(self.root, "teams", _team(team), "memories", MEMORY_FILE)
        return safe_join(self.root, "memories", MEMORY_FILE)

    def user_path(self, platform: str, user_id: str) -> Path:
        if not user_id:
            raise MemoryOpError("there is no user in this session, so there is no USER.md to use; "
                               "use target 'memory' instead")
        return safe_join(self.root, "memories", "users", _component(platform or DEFAULT_PLATFORM),
                         _component(user_id), USER_FILE)

    def path_for(self, target: Target, scope: Scope) -> Path:
        return self.memory_path(scope.team) if target == "memory" else self.user_path(scope.platform, scope.user_id)

    def limit_for(self, target: Target) -> int:
        return self.memory_chars if target == "memory" else self.user_chars

    # -- reading --------------------------------------------------------------------------------
    async def read(self, target: Target, scope: Scope) -> str:
        # resolving the path touches the file system too: do it in the worker thread as well
        return await asyncio.to_thread(lambda: _read(self.path_for(target, scope)))

    async def entries(self, target: Target, scope: Scope) -> list[Entry]:
        return parse_entries(await self.read(target, scope))

    async def snapshot(self, scope: Scope) -> str:
        """Both files as a system-prompt section (empty when there is nothing remembered)."""
        def read_both() -> tuple[str, str]:  # one thread hop for both files
            memory = _read(self.path_for("memory", scope)).strip()
            return memory, (_read(self.path_for("user", scope)).strip() if scope.user_id else "")

        parts = []
        memory, user = await asyncio.to_thread(read_both)
        if memory:
            parts.append(f"## Memory (notes on this environment and its conventions; "
                         f"{len(memory)}/{self.memory_chars} chars)\n{memory}")
        if user:
            parts.append(f"## About the user ({len(user)}/{self.user_chars} chars)\n{user}")
        if not parts:
            return ""
        return ("# What you remember\nThis snapshot was taken when the session started; use the `memory` "
                "tool to add, replace or remove entries (changes show here from the next session).\n\n"
                + "\n\n".join(parts))

    # -- writing --------------------------------------------------------------------------------
    def _refuse_secrets(self, text: str) -> None:
        findings = self.redactor.find(text)
        if findings:
            kinds = ", ".join(sorted({f.kind for f in findings}))
            raise SecretRefused(f"not stored: the text contains what looks like a secret ({kinds}). "
                                "Memory never stores secrets; describe where the secret lives instead "
                                "(e.g. 'the deploy token is in the DEPLOY_TOKEN variable').")

    async def add(self, target: Target, scope: Scope, text: str) -> Change:
        entry_text = _clean(text)
        if not entry_text:
            raise MemoryOpError("nothing to add: 'text' is empty")
        self._refuse_secrets(entry_text)

        def change(entries: list[Entry]) -> list[Entry]:
            if any(e.text == entry_text for e in entries):
                raise MemoryOpError(f"already remembered: {entry_text!r}")
            return entries + [Entry(_today(), entry_text)]

        return await self._update(target, scope, "add", change)

    async def replace(self, target: Target, scope: Scope, old_text: str, new_text: str) -> Change:
        new_clean = _clean(new_text)
        if not new_clean:
            raise MemoryOpError("'new_text' is empty; use action 'remove' to delete an entry")
        self._refuse_secrets(new_clean)

        def change(entries: list[Entry]) -> list[Entry]:
            index = _find_one(entries, old_text, self.path_for(target, scope).name)
            updated = list(entries)
            updated[index] = Entry(_today(), new_clean)
            return updated

        return await self._update(target, scope, "replace", change)

    async def remove(self, target: Target, scope: Scope, old_text: str) -> Change:
        def change(entries: list[Entry]) -> list[Entry]:
            index = _find_one(entries, old_text, self.path_for(target, scope).name)
            return entries[:index] + entries[index + 1:]

        return await self._update(target, scope, "remove", change)

    async def _update(self, target: Target, scope: Scope, action: str, change: EntryChange) -> Change:
        path = self.path_for(target, scope)
        limit = self.limit_for(target)
        lock = self._locks.setdefault(path, asyncio.Lock())
        async with lock:  # with a store this only queues this process's writers; the store decides
            if self.versions is None:
                before, after = await asyncio.to_thread(_locked_update, path, change, limit)
            else:
                before, after = await self._committed_update(path, action, change, limit)
        return Change(target, action, str(path), before, after)

    def key_of(self, path: Path) -> str:
        """The store's key of a memory file: its path under HERMES_HOME."""
        return path.relative_to(self.root.resolve()).as_posix()

    async def _committed_update(self, path: Path, action: str, change: EntryChange,
                                limit: int) -> tuple[str | None, str]:
        assert self.versions is not None
        key = self.key_of(path)
        for _ in range(MAX_ATTEMPTS):
            stored = await self._in_step(path, key)
            entries = parse_entries(stored.content or "")
            after = render_entries(change(entries))
            if len(after) > limit:
                raise _full(path, stored.content, entries, after, limit)
            try:
                await self.versions.memory_commit(key, stored.version, after, action=action, origin="memory",
                                                  apply=_writer(path, after))
            except VersionConflict:
                continue
            return stored.content, after
        raise MemoryOpError(f"{path.name} is being changed by others all the time; try again")

    async def _in_step(self, path: Path, key: str) -> StoredMemory:
        """The file as the store holds it, once a person's edit of the file (or a file made before
        the store) is a version of its own; a stale copy is left for the next commit to rewrite."""
        assert self.versions is not None
        for _ in range(MAX_ATTEMPTS):
            stored = await self.versions.memory_state(key)
            disk = await asyncio.to_thread(_read_or_none, path)
            if disk is None or text_digest(disk) == stored.digest:
                return stored  # in step, or the file is missing: the commit writes it
            if stored.version and await self.versions.memory_known(key, text_digest(disk)):
                return stored  # an older version: stale, rewritten by the commit
            try:
                await self.versions.memory_commit(key, stored.version, disk, action="file" if stored.version
                                                  else "import", origin="file")
            except VersionConflict:
                continue
        raise MemoryOpError(f"{path.name} is being changed by others all the time; try again")

    async def sync_store(self) -> int:
        """Bring the memory files under the home and the store in step (at start): files made
        before the store, or edited while the gateway was down, become versions; a file the store
        has and the home lacks or holds an older version of (a second home sharing the store) is
        written from the store. Returns how many files changed either way."""
        if self.versions is None:
            return 0
        root = self.root.resolve()
        paths = {self.key_of(p): p for p in await asyncio.to_thread(self._memory_files)}
        for key in await self.versions.memory_keys():
            try:
                paths.setdefault(key, safe_join(root, *key.split("/")))
            except ValueError:
                continue  # not a path under this home: never written by this code
        changed = 0
        for key, path in sorted(paths.items()):
            if path.name not in (MEMORY_FILE, USER_FILE):
                continue
            async with self._locks.setdefault(path, asyncio.Lock()):
                before = (await self.versions.memory_state(key)).version
                stored = await self._in_step(path, key)
                changed += stored.version != before
                changed += await self._write_out(path, key)
        return changed

    async def _write_out(self, path: Path, key: str) -> bool:
        """Rewrite `path` from the store when it is missing or older (under the store's row lock)."""
        assert self.versions is not None
        wrote = False

        async def write(content: str | None, _version: int) -> None:
            nonlocal wrote
            disk = await asyncio.to_thread(_read_or_none, path)
            if content is not None and disk != content and (
                    disk is None or await self.versions.memory_known(key, text_digest(disk))):  # type: ignore[union-attr]
                await asyncio.to_thread(_write_atomic, path, content)
                wrote = True

        await self.versions.memory_refresh(key, write)
        return wrote

    def _memory_files(self) -> list[Path]:
        root = self.root.resolve()
        found = [p for p in [root / "memories" / MEMORY_FILE] if p.is_file()]
        found += sorted((root / "teams").glob(f"*/memories/{MEMORY_FILE}"))
        found += sorted((root / "memories" / "users").glob(f"*/*/{USER_FILE}"))
        return [p for p in found if p.is_file() and not p.is_symlink()]


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def _find_one(entries: list[Entry], old_text: str, file_name: str) -> int:
    needle = _clean(old_text)
    if not needle:
        raise MemoryOpError("'old_text' is empty: give a piece of the entry to change")
    matches = [i for i, e in enumerate(entries) if needle in e.text]
    if not matches:
        listing = "\n".join(e.line() if e.date else f"- {e.text}" for e in entries) or "(empty)"
        raise MemoryOpError(f"no entry of {file_name} contains {needle!r}. Current entries:\n{listing}")
    if len(matches) > 1:
        shown = "\n".join(entries[i].line() for i in matches)
        raise MemoryOpError(f"{len(matches)} entries of {file_name} contain {needle!r}; give a longer, "
                           f"unique piece:\n{shown}")
    return matches[0]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _read_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _full(path: Path, before: str | None, entries: list[Entry], after: str, limit: int) -> MemoryFull:
    used = len(before or "")
    return MemoryFull(
        f"{path.name} is full: {used} of {limit} characters used, and this change would make it "
        f"{len(after)}. Nothing was written. Consolidate first: merge related entries with "
        f"'replace', shorten long ones, or 'remove' stale ones, then try again. Current entries:\n"
        + (render_entries(entries).rstrip() or "(empty)"))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{id(text)}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _writer(path: Path, text: str) -> Callable[[], Awaitable[None]]:
    async def write() -> None:
        await asyncio.to_thread(_write_atomic, path, text)
    return write


def _locked_update(path: Path, change: EntryChange, limit: int) -> tuple[str | None, str]:
    """Read, change and atomically rewrite `path` under an exclusive flock (runs in a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "a+") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            before = path.read_text(encoding="utf-8") if path.exists() else None
            entries = parse_entries(before or "")
            updated = change(entries)
            after = render_entries(updated)
            if len(after) > limit:
                raise _full(path, before, entries, after, limit)
            _write_atomic(path, after)
            return before, after
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
