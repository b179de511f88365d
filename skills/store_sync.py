"""Keeping the skill files in step with a `SkillVersionStore` (the gateway's database), which is
then the truth: a skill the store has never seen is adopted with its `.history` and provenance,
a person's edit of a file becomes a version (and makes the skill protected), and a stale or
missing copy is rewritten from the store; each of those is a compare-and-set. `mirror` copies a
commit's entries and provenance into `.history/` (the files follow the store)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from skills.errors import SkillError
from skills.history import SKILL_FILE, HistoryEntry, SkillHistory, unified_diff
from skills.paths import safe_join
from skills.provenance import ProvenanceFile
from skills.skill_text import DEFAULT_CATEGORY, MAX_SUPPORTING_FILE, write_atomic
from skills.validate import name_problems
from skills.versions import (
    KEEP,
    Apply,
    Commit,
    NewEntry,
    Provenance,
    SkillVersionStore,
    StoredSkill,
    VersionConflict,
    file_digest,
    text_digest,
)

MAX_ATTEMPTS = 60


class StoreSync:
    """The store side of one library: `root`, its history and provenance, `candidates()` (the
    scanner's (category, folder) pairs), `lock(name)` (the library's asyncio lock per skill) and
    `invalidate()` (the scanner's, after any change on disk)."""

    def __init__(self, root: Path, versions: SkillVersionStore, history: SkillHistory, provenance: ProvenanceFile,
                 candidates: Callable[[], Iterator[tuple[str, Path]]], lock: Callable[[str], asyncio.Lock],
                 invalidate: Callable[[], None]) -> None:
        self.root = root
        self.versions = versions
        self.history = history
        self.provenance = provenance
        self._candidates = candidates
        self._lock = lock
        self._invalidate = invalidate

    async def in_step(self, name: str) -> StoredSkill:
        """The skill as the store holds it, once the files on disk agree with it: a skill the store
        has never seen is adopted (with its `.history` and provenance), a person's edit of a file
        becomes a version (and the skill protected), and a stale or missing copy is rewritten from
        the store. Each of those is a compare-and-set too."""
        for _ in range(MAX_ATTEMPTS):
            stored = await self.versions.skill_state(name)
            disk = await asyncio.to_thread(self.disk_files, name, stored.category)
            plan = await self.reconcile(name, stored, disk)
            if plan is None:
                return stored
            try:
                await self.versions.skill_commit(name, *plan)
            except VersionConflict:
                continue
            finally:
                self._invalidate()
        raise SkillError(f"skill {name!r} is being changed by others all the time; try again")

    def disk_files(self, name: str, category: str) -> tuple[Path, str, dict[str, str]] | None:
        """(folder, category, {file: text}) of the skill on disk, or None (sync)."""
        folder: Path | None = None
        hint = self.root / category / name if category else self.root / name
        if (hint / SKILL_FILE).is_file():
            folder = hint
        else:
            for _category, candidate in self._candidates():
                if candidate.name == name:
                    folder = candidate
                    break
        if folder is None:
            return None
        return self.disk_texts(folder)

    def disk_texts(self, folder: Path) -> tuple[Path, str, dict[str, str]]:
        texts: dict[str, str] = {}
        for path in [folder / SKILL_FILE, *sorted(folder.rglob("*"))]:
            relative = path.relative_to(folder).as_posix()
            if relative in texts or not path.is_file() or any(part.startswith(".") for part in Path(relative).parts):
                continue
            try:
                if path.stat().st_size <= MAX_SUPPORTING_FILE:
                    texts[relative] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
        found = folder.parent.name if folder.parent.resolve() != self.root.resolve() else ""
        return folder, found, texts

    async def reconcile(self, name: str, stored: StoredSkill,
                         disk: tuple[Path, str, dict[str, str]] | None) -> tuple[Commit, Apply | None] | None:
        """What brings the store and the files in step (None: they are)."""
        if disk is None:
            if not stored.present:
                return None
            folder = safe_join(self.root, stored.category or DEFAULT_CATEGORY, name)
            return Commit(stored.seq), self.rewrite(folder, stored.files, {})
        folder, category, texts = disk
        if stored.seq == 0:
            return await asyncio.to_thread(self.adoption, name, category, texts)
        if not stored.present:
            if SKILL_FILE in texts and await self.versions.skill_known(
                    name, SKILL_FILE, file_digest(SKILL_FILE, texts[SKILL_FILE])):
                return Commit(stored.seq), self.rewrite(folder, {}, texts)  # a stale copy of a deleted skill
            entries = [NewEntry("edit", f, None, t, "file") for f, t in sorted(texts.items())]
            return Commit(stored.seq, dict(texts), entries, category=category, owner=None), \
                self.mirror(name, stored.version, entries, None)
        edits: dict[str, str] = {}
        stale = False
        for file in sorted(set(texts) | set(stored.files)):
            text = texts.get(file)
            if text is not None and text_digest(text) == stored.digests.get(file):
                continue
            if text is None or await self.versions.skill_known(name, file, file_digest(file, text)):
                stale = True  # missing here or an older version: another process's copy is newer
            else:
                edits[file] = text  # a person's edit (or a file a person added)
        if edits:
            entries = [NewEntry("edit", f, stored.files.get(f), t, "file") for f, t in edits.items()]
            return Commit(stored.seq, dict(edits), entries, owner=None), self.mirror(name, stored.version, entries, None)
        if stale:
            return Commit(stored.seq), self.rewrite(folder, stored.files, texts)
        return None

    def rewrite(self, folder: Path, files: dict[str, str], disk: dict[str, str]) -> Apply:
        """Make `folder` hold exactly `files` (of what we track: the text files in `disk`)."""
        def run() -> None:
            for relative in disk:
                if relative not in files:
                    with contextlib.suppress(OSError):
                        (folder / relative).unlink()
            for relative, text in files.items():
                target = safe_join(folder, *Path(relative).parts)
                if disk.get(relative) != text:
                    write_atomic(target, text)
            if not files:
                shutil.rmtree(folder, ignore_errors=True)

        async def apply() -> None:
            await asyncio.to_thread(run)

        return apply

    def adoption(self, name: str, category: str, texts: dict[str, str]) -> tuple[Commit, Apply | None]:
        """The first commit of a skill the store has never seen: its `.history` and provenance as
        the files keep them, and an "import" entry for what the history does not account for."""
        entries = [NewEntry(e.action, e.file, e.before, e.after, e.origin, e.time) for e in self.history.entries(name)]
        replayed: dict[str, str | None] = {}
        for entry in entries:
            replayed[entry.file] = entry.after
        for file, text in sorted(texts.items()):
            if replayed.get(file) != text:
                entries.append(NewEntry("import", file, replayed.get(file), text, "file"))
        owner = self.provenance.read().get(name)
        provenance = Provenance(str(owner.get("fingerprint", "")), str(owner.get("origin", "")),
                                str(owner.get("time", ""))) if owner else None
        if not texts:  # only a history is left: a deleted skill, kept so it can be reverted
            category = next((e.action.split(":", 1)[1] for e in reversed(entries) if e.action.startswith("delete:")),
                            DEFAULT_CATEGORY)
        return Commit(0, dict(texts), entries, category=category, owner=provenance), \
            self.mirror(name, 0, entries, KEEP)

    def mirror(self, name: str, version: int, entries: list[NewEntry], owner: Provenance | None | str) -> Apply:
        """Copy `entries` (numbered after `version`) and the provenance into `.history/`."""
        def run() -> None:
            for offset, entry in enumerate(entries, start=1):
                self.history.write(name, HistoryEntry(
                    number=version + offset, action=entry.action, file=entry.file, time=entry.time or time.time(),
                    origin=entry.origin, before=entry.before, after=entry.after,
                    diff=unified_diff(entry.before, entry.after, entry.file)))
            if owner != KEEP:
                self.provenance.write(name, asdict(owner) if isinstance(owner, Provenance) else None)

        async def apply() -> None:
            await asyncio.to_thread(run)

        return apply

    async def sync_store(self) -> int:
        """Bring every skill of the library and the store in step (at start): skills made before the
        store and their history are adopted, edits made while the gateway was down become versions,
        and skills the store has but the disk lacks are written. Returns how many skills changed."""
        digests = await self.versions.skill_digests()
        before = {name: seq for name, (seq, _files) in digests.items()}

        def look() -> tuple[set[str], set[str], set[str]]:  # one pass over the disk, in a thread
            folders = {folder.name: folder for _category, folder in self._candidates()}
            same = set()
            for name, (_seq, files) in digests.items():
                folder = folders.get(name)
                if folder is None:
                    if not files:
                        same.add(name)  # deleted, and absent here too
                    continue
                texts = self.disk_texts(folder)[2]
                if files and set(texts) == set(files) and all(
                        text_digest(t) == files[f] for f, t in texts.items()):
                    same.add(name)
            return set(folders), set(self.history.names()), same

        on_disk, historic, same = await asyncio.to_thread(look)
        changed = 0
        for name in sorted(on_disk | set(before) | historic):
            if name_problems(name) or name in same:
                continue
            async with self._lock(name):
                state = await self.in_step(name)
                if state.seq == 0 and name in historic:  # deleted before the store: adopt its history
                    commit, _ = await asyncio.to_thread(self.adoption, name, "", {})
                    with contextlib.suppress(VersionConflict):
                        await self.versions.skill_commit(name, commit)
                    state = await self.versions.skill_state(name)
            changed += state.seq != before.get(name, 0)
        self._invalidate()
        return changed

    # ------------------------------------------------------------------ writing
