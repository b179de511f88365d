"""Where a skill library keeps its versions when a database is the source of truth.

`SkillVersionStore` is what `SkillLibrary` needs from it (the gateway's store implements it in
`gateway/store/skills.py`; this package imports nothing of the gateway). Every write is a
compare-and-set: the library reads a skill's `StoredSkill` (its `seq`), works out the change, and
`commit` applies it only when `seq` is still the same, raising `VersionConflict` otherwise; the
library then reads the new state and does the work again on the new text. `commit` runs `apply`
(writing the files under the library root) inside the transaction, after the compare and before
the commit, so files are written in the order the versions are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from skills.history import SKILL_FILE, HistoryEntry


class VersionConflict(Exception):
    """Someone else wrote first: the version the writer read is no longer the current one."""


@dataclass(frozen=True)
class Provenance:
    """What a checkpoint of the library last wrote to a skill (None on a skill: protected)."""

    fingerprint: str
    origin: str = ""
    time: str = ""


@dataclass(frozen=True)
class StoredSkill:
    """A skill as the store holds it. `seq` 0: never stored; `files` empty: deleted (or never)."""

    seq: int = 0
    version: int = 0
    category: str = ""
    files: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # `text_digest` of each file as written
    owner: Provenance | None = None

    @property
    def present(self) -> bool:
        return SKILL_FILE in self.files


@dataclass(frozen=True)
class NewEntry:
    """One history entry to append (the store numbers it)."""

    action: str
    file: str
    before: str | None
    after: str | None
    origin: str = ""
    time: float | None = None


KEEP = "keep"
"""`Commit.owner` value that leaves the provenance as it is."""


@dataclass(frozen=True)
class Commit:
    """A change to one skill, applied only if the skill's `seq` is still `expected`."""

    expected: int
    files: dict[str, str | None] = field(default_factory=dict)  # changed files: text, or None = removed
    entries: list[NewEntry] = field(default_factory=list)
    category: str | None = None          # None: keep
    owner: Provenance | None | str = KEEP
    gone: bool = False                   # the skill is deleted: every file goes


Apply = Callable[[], Awaitable[None]]


class SkillVersionStore(Protocol):
    """One library's skills in the database (see the module docstring)."""

    async def skill_state(self, name: str) -> StoredSkill: ...

    async def skill_commit(self, name: str, commit: Commit, apply: Apply | None = None) -> int:
        """Apply `commit` if the skill's seq is `commit.expected` (else VersionConflict); the new seq."""
        ...

    async def skill_entries(self, name: str) -> list[HistoryEntry]: ...

    async def skill_known(self, name: str, file: str, digest: str) -> bool:
        """Whether some version of `file` had `digest` (a stale copy rather than a person's edit)."""
        ...

    async def skill_names(self) -> dict[str, int]:
        """{name: seq} of every skill the store has for this library (deleted ones included)."""
        ...

    async def skill_digests(self) -> dict[str, tuple[int, dict[str, str]]]:
        """{name: (seq, {file: digest})} of every skill of this library ({} files: deleted)."""
        ...


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_digest(file: str, text: str) -> str:
    """The digest a version of `file` is known by: SKILL.md's fingerprint (usage counters left
    out, so counting a use is no edit), the SHA-256 of the text otherwise."""
    if file == SKILL_FILE:
        from skills.document import SkillFormatError, parse

        try:
            return "f:" + parse(text).document.fingerprint()
        except SkillFormatError:
            pass
    return text_digest(text)
