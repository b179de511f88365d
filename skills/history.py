"""Every change to a skill, kept so a bad edit can be undone.

Stored under the library root in `.history/<skill name>/<N>.json` (the scanner ignores hidden
folders). Entry N records one change to one file of the skill: the action, when, who (origin),
the file's text before and after (None when absent) and a unified diff. "Version N" is the state
of the skill right after change N; reverting to it restores, for every file changed later, the
`before` text of the first later change. Callers hold the skill's lock while recording.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from skills.paths import safe_join

HISTORY_DIR = ".history"
SKILL_FILE = "SKILL.md"


@dataclass(frozen=True)
class HistoryEntry:
    number: int
    action: str
    file: str
    time: float
    origin: str
    before: str | None
    after: str | None
    diff: str

    def summary(self) -> dict[str, object]:
        added = sum(1 for line in self.diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
        removed = sum(1 for line in self.diff.splitlines() if line.startswith("-") and not line.startswith("---"))
        return {"number": self.number, "action": self.action, "file": self.file,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
                "origin": self.origin, "added": added, "removed": removed}


def unified_diff(before: str | None, after: str | None, file: str) -> str:
    return "".join(difflib.unified_diff(
        (before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True),
        fromfile=f"a/{file}" if before is not None else "/dev/null",
        tofile=f"b/{file}" if after is not None else "/dev/null"))


class SkillHistory:
    """The history folder of one library (sync; run it in a thread from async code)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, name: str) -> Path:
        return safe_join(self.root, HISTORY_DIR, name)

    def _numbers(self, name: str) -> list[int]:
        folder = self._folder(name)
        if not folder.is_dir():
            return []
        return sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())

    def record(self, name: str, action: str, file: str, before: str | None, after: str | None,
               origin: str = "") -> HistoryEntry | None:
        """Append one change (nothing when the text did not change)."""
        if before == after:
            return None
        numbers = self._numbers(name)
        entry = HistoryEntry(number=(numbers[-1] + 1) if numbers else 1, action=action, file=file,
                             time=time.time(), origin=origin, before=before, after=after,
                             diff=unified_diff(before, after, file))
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{entry.number}.json"
        temporary = folder / f".{entry.number}.json.tmp-{os.getpid()}"
        temporary.write_text(json.dumps(asdict(entry), ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, target)
        return entry

    def entries(self, name: str) -> list[HistoryEntry]:
        folder = self._folder(name)
        result = []
        for number in self._numbers(name):
            data = json.loads((folder / f"{number}.json").read_text(encoding="utf-8"))
            result.append(HistoryEntry(**data))
        return result

    def write(self, name: str, entry: HistoryEntry) -> None:
        """Store `entry` under its own number (a copy of the entry the database numbered)."""
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{entry.number}.json.tmp-{os.getpid()}"
        temporary.write_text(json.dumps(asdict(entry), ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, folder / f"{entry.number}.json")

    def names(self) -> list[str]:
        """Every skill with a history folder."""
        folder = self.root / HISTORY_DIR
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def state_at(self, name: str, number: int) -> dict[str, str | None]:
        """For each file changed after version `number`: its text as of that version (None = absent)."""
        return state_at(self.entries(name), name, number)


def state_at(entries: list[HistoryEntry], name: str, number: int) -> dict[str, str | None]:
    """For each file changed after version `number`: its text as of that version (None = absent)."""
    if not entries:
        raise KeyError(f"skill {name!r} has no history")
    if not 1 <= number <= entries[-1].number:
        raise KeyError(f"skill {name!r} has versions 1 to {entries[-1].number}; there is no version {number}")
    state: dict[str, str | None] = {}
    for entry in entries:
        if entry.number > number and entry.file not in state:
            state[entry.file] = entry.before
    return state
