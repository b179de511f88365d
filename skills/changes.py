"""What one write changes (`Changes`). Without a store each change is made at once (files,
`.history`, provenance); with one they are collected into a `Commit` and made on disk by
`apply_async`, inside the store's transaction (the `.history` and provenance files mirror it)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from skills.document import parse
from skills.history import HistoryEntry, SkillHistory
from skills.provenance import ProvenanceFile, matches
from skills.skill_text import DEFAULT_CATEGORY, now_iso, write_atomic
from skills.versions import KEEP, Apply, Commit, NewEntry, Provenance, StoredSkill

Mirror = Callable[[str, int, list[NewEntry], Provenance | None | str], Apply]


def last_category(entries: list[HistoryEntry]) -> str:
    """The category a deleted skill had, as its history's last delete recorded it."""
    for entry in reversed(entries):
        if entry.action.startswith("delete:"):
            return entry.action.split(":", 1)[1] or DEFAULT_CATEGORY
    return DEFAULT_CATEGORY


class Changes:
    """The changes of one write to skill `name`; `stored` is the store's state read (None: no store)."""

    def __init__(self, history: SkillHistory, provenance: ProvenanceFile, name: str, stored: StoredSkill | None,
                 entries: list[HistoryEntry] | None = None, mirror: Mirror | None = None) -> None:
        self._skill_history = history
        self._provenance = provenance
        self._mirror = mirror
        self.name = name
        self.stored = stored
        self._history = entries
        self.ops: list[tuple[str, Path, str | None]] = []
        self.entries: list[NewEntry] = []
        self.files: dict[str, str | None] = {}
        self.category: str | None = None
        self.owner: Provenance | None | str = KEEP
        self.gone = False

    def history(self) -> list[HistoryEntry]:
        if self.stored is None or self._history is None:
            return self._skill_history.entries(self.name)
        return self._history

    def owned(self, text: str) -> bool:
        if self.stored is None:
            return self._provenance.owned(self.name, text)
        return matches(asdict(self.stored.owner) if self.stored.owner is not None else None, text)

    def write(self, folder: Path, relative: str, text: str, target: Path | None = None) -> None:
        path = target if target is not None else folder / relative
        if self.stored is None:
            write_atomic(path, text)
            return
        self.ops.append(("write", path, text))
        self.files[relative] = text

    def unlink(self, path: Path, relative: str) -> None:
        if self.stored is None:
            path.unlink()
            return
        self.ops.append(("unlink", path, None))
        self.files[relative] = None

    def remove_skill(self, folder: Path) -> None:
        if self.stored is None:
            shutil.rmtree(folder)
            return
        self.ops.append(("rmtree", folder, None))
        self.files = {}
        self.gone = True

    def record(self, action: str, file: str, before: str | None, after: str | None, origin: str = "") -> None:
        if self.stored is None:
            self._skill_history.record(self.name, action, file, before, after, origin)
        elif before != after:
            self.entries.append(NewEntry(action, file, before, after, origin, time.time()))

    def set_owner(self, text: str | None, origin: str = "") -> None:
        if self.stored is None:
            self._provenance.set(self.name, text, origin)
            return
        self.owner = None if text is None else Provenance(parse(text).document.fingerprint(), origin, now_iso())

    @property
    def empty(self) -> bool:
        return not self.ops and not self.entries and self.owner == KEEP and self.category is None

    def commit(self) -> Commit:
        assert self.stored is not None
        return Commit(self.stored.seq, dict(self.files), list(self.entries), self.category, self.owner, self.gone)

    def apply(self) -> None:
        """The files under the library root as the commit says (sync; runs in a thread)."""
        assert self.stored is not None
        for op, path, text in self.ops:
            if op == "write" and text is not None:
                write_atomic(path, text)
            elif op == "unlink":
                path.unlink(missing_ok=True)
            elif op == "rmtree":
                shutil.rmtree(path, ignore_errors=True)

    async def apply_async(self) -> None:
        assert self.stored is not None
        await asyncio.to_thread(self.apply)
        assert self._mirror is not None
        await self._mirror(self.name, self.stored.version, self.entries, self.owner)()
