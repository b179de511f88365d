"""The skill library on disk: `<root>/<category>/<name>/SKILL.md` plus supporting files.

Reads come from a snapshot that is rebuilt when files change (an mtime/size scan, at most once
every `rescan_interval` seconds, and at once after our own writes), so skills dropped in by hand
appear without a restart. Malformed files are skipped with a warning naming the file and the
problem. Every write is validated first, written atomically (temporary file + `os.replace`),
serialised per skill (an `asyncio.Lock` inside the process, an `fcntl` lock file across
processes) and recorded in the history. File work runs in threads, never in the event loop.

A `WritePolicy` adds the checks a write must pass under the skill's lock, on the final text as
it will be stored (the whole SKILL.md after a patch, the decoded front matter): the skills
guard, a size limit, and protection. Protection rests on provenance kept in
`.history/provenance.json`: the fingerprint of each skill as a checkpoint of this library last
wrote it. A skill without an entry, or whose file no longer matches it (a person edited it
through the CLI, the dashboard or by hand; bundled and hub skills never had one), is protected:
a write with `protect=True` (a checkpoint's) is refused with `SkillRefused(kind="protected")`.

With a `SkillVersionStore` (`versions=`, the gateway's database) the store is the source of
truth instead: history and provenance are its rows (`.history/` and `provenance.json` become
copies written with each commit), and every write is a compare-and-set on the skill's version as
read. A writer reads the store, brings the files in step with it (`StoreSync.in_step`: a person's edit of a
file becomes a version and makes the skill protected; a stale copy is rewritten), works out the
change on that text, and commits it only if nobody committed in between; the files are written
inside that transaction, so they follow the store's order. On a conflict it reads the new text
and works the change out again (a patch whose old text is gone then fails with the usual
mismatch message). No file lock is taken; the asyncio lock only queues this process's writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from skills.changes import Changes, last_category
from skills.document import SkillFormatError, parse, render
from skills.errors import SkillError, SkillNotFound, SkillRefused
from skills.history import SKILL_FILE, HistoryEntry, SkillHistory, state_at
from skills.paths import safe_join
from skills.provenance import ProvenanceFile, matches
from skills.skill_text import (
    DEFAULT_CATEGORY,
    MAX_SUPPORTING_FILE,
    describe_mismatch,
    edited,
    now_iso,
    parse_for_write,
    patched,
    render_checked,
    supporting_path,
    write_atomic,
)
from skills.snapshot import Skill, SkillScanner, Snapshot
from skills.store_sync import MAX_ATTEMPTS, StoreSync
from skills.validate import document_problems, name_problems
from skills.versions import SkillVersionStore, StoredSkill, VersionConflict
from skills.write_policy import PERSON, WritePolicy, after_write, check

# what most callers import from here (the rest from the module that defines it)
__all__ = ["Skill", "SkillError", "SkillLibrary", "SkillNotFound", "SkillRefused", "Snapshot", "WritePolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCK_DIR = ".locks"


class SkillLibrary:
    """A skill library rooted at one folder (the home's `skills/`, or a team's)."""

    def __init__(self, root: Path, *, rescan_interval: float = 1.0,
                 versions: SkillVersionStore | None = None) -> None:
        self.root = Path(root)
        self.history = SkillHistory(self.root)
        self.scanner = SkillScanner(self.root, rescan_interval)
        self.provenance_file = ProvenanceFile(self.root, self.file_lock)
        self._locks: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}
        self.versions = versions

    @property
    def versions(self) -> SkillVersionStore | None:
        """The version store that is the truth for this library, or None (the files are)."""
        return self._store.versions if self._store is not None else None

    @versions.setter
    def versions(self, versions: SkillVersionStore | None) -> None:
        self._store = StoreSync(self.root, versions, self.history, self.provenance_file, self.scanner.candidates,
                                self._async_lock, self.invalidate) if versions is not None else None

    write_atomic = staticmethod(write_atomic)

    # ------------------------------------------------------------------ reading

    def scan(self, force: bool = False) -> Snapshot:
        """The current snapshot, rescanning when stale (sync: call from a thread in async code)."""
        return self.scanner.scan(force)

    def invalidate(self) -> None:
        self.scanner.invalidate()

    async def snapshot(self, force: bool = False) -> Snapshot:
        return await asyncio.to_thread(self.scan, force)

    async def get(self, name: str) -> Skill:
        skill = (await self.snapshot()).get(name)
        if skill is None:
            skill = (await self.snapshot(force=True)).get(name)
        if skill is None:
            raise SkillNotFound(f"there is no skill named {name!r}; use skill_search to find one")
        return skill

    async def search(self, query: str, limit: int = 10) -> list[tuple[Skill, float]]:
        snap = await self.snapshot()
        hits = await asyncio.to_thread(snap.search, query, limit)
        return [(snap.by_name[h.key], h.score) for h in hits]

    async def read(self, name: str, file: str | None = None) -> str:
        """The SKILL.md text, or one supporting file's text."""
        skill = await self.get(name)
        target = skill.skill_file if not file else supporting_path(skill.folder, file, must_exist=True)

        def read() -> str:
            if target.stat().st_size > MAX_SUPPORTING_FILE:
                raise SkillError(f"{file}: larger than {MAX_SUPPORTING_FILE} bytes")
            try:
                return target.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise SkillError(f"{file}: not a text file") from exc

        return await asyncio.to_thread(read)

    async def history_of(self, name: str) -> list[HistoryEntry]:
        self._check_name(name)
        if self._store is not None:
            async with self._async_lock(name):
                await self._store.in_step(name)
            return await self._store.versions.skill_entries(name)
        return await asyncio.to_thread(self.history.entries, name)

    # ------------------------------------------------------------------ locking

    def _check_name(self, name: str, what: str = "skill name") -> None:
        problems = name_problems(name, what)
        if problems:
            raise SkillError("; ".join(problems))

    def _async_lock(self, name: str) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        entry = self._locks.get(name)
        if entry is None or entry[0] is not loop:
            entry = (loop, asyncio.Lock())
            self._locks[name] = entry
        return entry[1]

    @contextlib.contextmanager
    def file_lock(self, name: str) -> Iterator[None]:
        """An exclusive lock on `name` shared by every process using this library (blocking)."""
        path = safe_join(self.root, LOCK_DIR, f"{name}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    async def _locked(self, name: str, work: Callable[[], T]) -> T:
        self._check_name(name)

        def run() -> T:
            with self.file_lock(name):
                try:
                    return work()
                finally:
                    self.invalidate()

        async with self._async_lock(name):
            return await asyncio.to_thread(run)

    # ------------------------------------------------------------------ helpers (sync, under lock)

    def _find(self, name: str) -> Skill | None:
        skill = self.scan().get(name)
        if skill is not None and skill.skill_file.exists():
            return skill
        return self.scan(force=True).get(name)

    def _require(self, name: str) -> Skill:
        skill = self._find(name)
        if skill is None:
            raise SkillNotFound(f"there is no skill named {name!r}; use skill_search to find one, or create it")
        return skill


    async def preview(self, action: str, name: str, *, content: str | None = None, old_text: str | None = None,
                      new_text: str | None = None) -> tuple[str | None, str]:
        """(SKILL.md now, SKILL.md as a create/edit/patch would store it), writing nothing."""
        self._check_name(name)

        def work() -> tuple[str | None, str]:
            skill = self._find(name)
            before = skill.skill_file.read_text(encoding="utf-8") if skill is not None else None
            if action == "create":
                document = parse_for_write(content or "", name)
                stamp = now_iso()
                return before, render_checked(
                    document.with_metadata(version="1", created=stamp, updated=stamp, use_count="0"), name)
            if skill is None or before is None:
                raise SkillNotFound(f"there is no skill named {name!r}; use skill_search to find one, or create it")
            if action == "patch":
                if not old_text:
                    raise SkillError("old_text is empty; give the exact passage to replace")
                return before, patched(before, old_text, new_text or "", name)
            if action == "edit":
                return before, edited(before, parse_for_write(content or "", name), name)
            raise SkillError(f"nothing to preview for action {action!r}")

        return await asyncio.to_thread(work)

    # ------------------------------------------------------------------ provenance

    def provenance(self) -> dict[str, dict[str, Any]]:
        """{skill name: {"fingerprint", "origin", "time"}} for skills a checkpoint last wrote (sync)."""
        return self.provenance_file.read()


    def check(self, policy: WritePolicy, name: str, before: str | None, after: str | None,
              files: dict[str, str] | None = None, file_before: str | None = None) -> None:
        """Refuse (SkillRefused) what `policy` forbids, ownership as provenance.json says (sync)."""
        check(policy, name, before, after, _Provenance(self.provenance_file, name), files, file_before)

    def checkpoint_owned(self, name: str) -> bool:
        """Whether a checkpoint of this library created `name` and nobody else changed it since (sync)."""
        skill = self._find(name)
        if skill is None:
            return False
        try:
            return self.provenance_file.owned(name, skill.skill_file.read_text(encoding="utf-8"))
        except OSError:
            return False

    async def is_protected(self, name: str) -> bool:
        """An existing skill a checkpoint may not change itself (bundled, installed, or a person's)."""
        skill = await self.get(name)
        if self.versions is None:
            return not await asyncio.to_thread(self.checkpoint_owned, skill.name)
        stored = await self.versions.skill_state(skill.name)
        owner = asdict(stored.owner) if stored.owner is not None else None
        try:
            text = await asyncio.to_thread(skill.skill_file.read_text, encoding="utf-8")
        except OSError:
            return True
        return not matches(owner, text)

    # ------------------------------------------------------------------ the store: compare-and-set

    async def _write(self, name: str, work: Callable[[Changes], Callable[[], T]], *, history: bool = False) -> T:
        """Run `work` on the skill and apply what it changed.

        Without a store: under the skill's locks, changes applied as they are made. With one: `work`
        runs on the state read (after `StoreSync.in_step`), its changes are committed only if the skill's
        version is still the one read, and on a conflict everything is done again on the new text.
        `work` returns what to answer once the change is on disk."""
        self._check_name(name)
        store = self._store
        if store is None:
            return await self._locked(name, lambda: work(self._changes(name, None))())
        async with self._async_lock(name):  # only queues this process's writers; the store decides
            for attempt in range(MAX_ATTEMPTS):
                stored = await store.in_step(name)
                entries = await store.versions.skill_entries(name) if history else None
                changes = self._changes(name, stored, entries)
                try:
                    answer = await asyncio.to_thread(work, changes)
                finally:
                    self.invalidate()
                if changes.empty:
                    return await asyncio.to_thread(answer)
                try:
                    await store.versions.skill_commit(name, changes.commit(), changes.apply_async)
                except VersionConflict:
                    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                    continue
                finally:
                    self.invalidate()
                return await asyncio.to_thread(answer)
        raise SkillError(f"skill {name!r} is being changed by others all the time; try again")

    async def sync_store(self) -> int:
        """Bring every skill of the library and the store in step (at start): skills made before the
        store and their history are adopted, edits made while the gateway was down become versions,
        and skills the store has but the disk lacks are written. Returns how many skills changed."""
        return 0 if self._store is None else await self._store.sync_store()

    def _changes(self, name: str, stored: StoredSkill | None, entries: list[HistoryEntry] | None = None) -> Changes:
        return Changes(self.history, self.provenance_file, name, stored, entries,
                       self._store.mirror if self._store is not None else None)

    # ------------------------------------------------------------------ writing

    async def create(self, name: str, content: str, category: str = DEFAULT_CATEGORY, origin: str = "",
                     policy: WritePolicy = PERSON) -> Skill:
        """Add a skill from full SKILL.md text."""
        category = category or DEFAULT_CATEGORY
        self._check_name(name)
        self._check_name(category, "category")
        document = parse_for_write(content, name)

        def work(changes: Changes) -> Callable[[], Skill]:
            existing = self._find(name)
            if existing is not None:
                raise SkillError(f"a skill named {name!r} already exists (category {existing.category!r}); "
                                 "use action 'patch' or 'edit' to change it")
            stamp = now_iso()
            final = document.with_metadata(version="1", created=stamp, updated=stamp, use_count="0")
            if origin:
                final = final.with_metadata(origin=origin)
            text = render_checked(final, name)
            check(policy, name, None, text, changes)
            folder = safe_join(self.root, category, name)
            changes.category = category
            changes.write(folder, SKILL_FILE, text)
            changes.record("create", SKILL_FILE, None, text, origin)
            after_write(changes, policy, True, False, text, origin)
            return lambda: self._require(name)

        return await self._write(name, work)

    async def patch(self, name: str, old_text: str, new_text: str, origin: str = "",
                    policy: WritePolicy = PERSON) -> Skill:
        """Replace the one occurrence of `old_text` in SKILL.md with `new_text`."""
        if not old_text:
            raise SkillError("old_text is empty; give the exact passage to replace")

        def work(changes: Changes) -> Callable[[], Skill]:
            skill = self._require(name)
            before = skill.skill_file.read_text(encoding="utf-8")
            count = before.count(old_text)
            if count != 1:
                raise SkillError(describe_mismatch(before, old_text, count))
            text = patched(before, old_text, new_text, name)
            check(policy, name, before, text, changes)
            owned = changes.owned(before)
            changes.write(skill.folder, SKILL_FILE, text)
            changes.record("patch", SKILL_FILE, before, text, origin)
            after_write(changes, policy, False, owned, text, origin)
            return lambda: self._require(name)

        return await self._write(name, work)

    async def edit(self, name: str, content: str, origin: str = "", policy: WritePolicy = PERSON) -> Skill:
        """Replace SKILL.md with `content`; creation time and usage counters are kept."""
        self._check_name(name)
        document = parse_for_write(content, name)

        def work(changes: Changes) -> Callable[[], Skill]:
            skill = self._require(name)
            before = skill.skill_file.read_text(encoding="utf-8")
            text = edited(before, document, name)
            check(policy, name, before, text, changes)
            owned = changes.owned(before)
            changes.write(skill.folder, SKILL_FILE, text)
            changes.record("edit", SKILL_FILE, before, text, origin)
            after_write(changes, policy, False, owned, text, origin)
            return lambda: self._require(name)

        return await self._write(name, work)

    async def delete(self, name: str, origin: str = "", policy: WritePolicy = PERSON) -> str:
        """Remove the skill's folder; its text files stay in the history (revert brings them back)."""
        def work(changes: Changes) -> Callable[[], str]:
            skill = self._require(name)
            check(policy, name, skill.skill_file.read_text(encoding="utf-8"), None, changes)
            for relative in [SKILL_FILE, *skill.files()]:
                path = skill.folder / relative
                try:
                    if path.stat().st_size <= MAX_SUPPORTING_FILE:
                        changes.record(f"delete:{skill.category}", relative, path.read_text(encoding="utf-8"),
                                       None, origin)
                except (OSError, UnicodeDecodeError):
                    continue
            changes.remove_skill(skill.folder)
            changes.set_owner(None)
            message = f"deleted skill {name!r} (category {skill.category!r}); `hermes skills revert` can restore it"
            return lambda: message

        return await self._write(name, work)

    async def write_file(self, name: str, file_path: str, content: str, origin: str = "",
                         policy: WritePolicy = PERSON) -> str:
        """Create or replace a supporting file (scripts/, references/, assets/...) inside the skill."""
        if len(content.encode("utf-8")) > MAX_SUPPORTING_FILE:
            raise SkillError(f"file content is larger than {MAX_SUPPORTING_FILE} bytes")

        def work(changes: Changes) -> Callable[[], str]:
            skill = self._require(name)
            target = supporting_path(skill.folder, file_path)
            relative = target.relative_to(skill.folder.resolve()).as_posix()
            before = target.read_text(encoding="utf-8") if target.is_file() else None
            skill_text = skill.skill_file.read_text(encoding="utf-8")
            check(dataclasses.replace(policy, max_skill_chars=None), name, skill_text, None, changes,
                  {relative: content}, before)
            changes.write(skill.folder, relative, content, target)
            changes.record("write_file", relative, before, content, origin)
            message = f"wrote {relative} in skill {name!r} ({len(content)} characters)"
            return lambda: message

        return await self._write(name, work)

    async def remove_file(self, name: str, file_path: str, origin: str = "", policy: WritePolicy = PERSON) -> str:
        def work(changes: Changes) -> Callable[[], str]:
            skill = self._require(name)
            check(dataclasses.replace(policy, guard=False, max_skill_chars=None), name,
                  skill.skill_file.read_text(encoding="utf-8"), None, changes)
            target = supporting_path(skill.folder, file_path, must_exist=True)
            relative = target.relative_to(skill.folder.resolve()).as_posix()
            try:
                before: str | None = target.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                before = None
            changes.unlink(target, relative)
            if before is not None:
                changes.record("remove_file", relative, before, None, origin)
            message = f"removed {relative} from skill {name!r}"
            return lambda: message

        return await self._write(name, work)

    async def revert(self, name: str, to: int, origin: str = "") -> str:
        """Restore the skill as it was right after change number `to` (itself recorded as a change)."""
        def work(changes: Changes) -> Callable[[], str]:
            entries = changes.history()
            try:
                state = state_at(entries, name, to)
            except KeyError as exc:
                raise SkillError(str(exc.args[0])) from exc
            if not state:
                message = f"skill {name!r} is already at version {to}"
                return lambda: message
            skill = self._find(name)
            category = skill.category if skill else last_category(entries)
            folder = skill.folder if skill else safe_join(self.root, category, name)
            if SKILL_FILE in state and state[SKILL_FILE] is None:  # the skill did not exist then
                if skill is not None:
                    for relative in [SKILL_FILE, *skill.files()]:
                        with contextlib.suppress(OSError, UnicodeDecodeError):
                            changes.record("revert", relative, (folder / relative).read_text(encoding="utf-8"),
                                           None, origin)
                    changes.remove_skill(folder)
                message = f"reverted {name!r} to version {to}: the skill did not exist then, so it is removed"
                return lambda: message
            restored = state.get(SKILL_FILE)
            if restored is not None:
                parse_for_write(restored, name)
            if skill is None:
                changes.category = category
            for relative, text in sorted(state.items()):
                target = safe_join(folder, *Path(relative).parts)
                current = target.read_text(encoding="utf-8") if target.is_file() else None
                if text is None:
                    if target.exists():
                        changes.unlink(target, relative)
                else:
                    changes.write(folder, relative, text, target)
                changes.record("revert", relative, current, text, origin)
            changes.set_owner(None)  # a person chose this text: the skill is theirs now
            message = f"reverted {name!r} to version {to} ({len(state)} file(s) restored)"
            return lambda: message

        return await self._write(name, work, history=True)

    async def record_use(self, name: str) -> None:
        """Count one use of the skill (metadata use_count and last_used); never fails the caller."""
        def work(changes: Changes) -> Callable[[], None]:
            skill = self._find(name)
            if skill is None:
                return lambda: None
            before = skill.skill_file.read_text(encoding="utf-8")  # the text now, not the snapshot's
            try:
                parsed = parse(before)
            except SkillFormatError:
                return lambda: None
            document = parsed.document
            try:
                uses = int(document.metadata.get("use_count", "0"))
            except ValueError:
                uses = 0
            updated = document.with_metadata(use_count=str(uses + 1), last_used=now_iso())
            if document_problems(updated, name):
                return lambda: None  # a leniently read skill we cannot rewrite strictly: leave the user's file alone
            text = render(updated)
            changes.write(skill.folder, SKILL_FILE, text)
            if parsed.warnings:  # the file was normalised to the strict format: keep the original
                changes.record("normalise", SKILL_FILE, before, text, "record_use")
            return lambda: None

        try:
            await self._write(name, work)
        except (SkillError, OSError) as exc:
            log.warning("could not record use of skill %s: %s", name, exc)


class _Provenance:
    """The ownership of skill `name` as the library's provenance file records it."""

    def __init__(self, provenance: ProvenanceFile, name: str) -> None:
        self.provenance, self.name = provenance, name

    def owned(self, text: str) -> bool:
        return self.provenance.owned(self.name, text)
