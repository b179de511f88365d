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
read. A writer reads the store, brings the files in step with it (`_in_step`: a person's edit of a
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
import difflib
import fcntl
import json
import logging
import os
import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from skills.document import SkillDocument, SkillFormatError, parse, render
from skills.guard import GuardReport, guard_skill_text
from skills.history import HISTORY_DIR, SKILL_FILE, HistoryEntry, SkillHistory, state_at, unified_diff
from skills.paths import PathEscapeError, safe_join
from skills.search import Document, Hit, SearchIndex, weighted_terms
from skills.validate import document_problems, name_problems, strict_render
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

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCK_DIR = ".locks"
DEFAULT_CATEGORY = "general"
MAX_SUPPORTING_FILE = 1_000_000
MAX_ATTEMPTS = 60


class SkillError(Exception):
    """A request the library refuses; the message says why and what to do instead."""


class SkillNotFound(SkillError):
    pass


RefusalKind = Literal["guard", "duplicate", "protected", "size", "mode", "invalid", "budget"]


class SkillRefused(SkillError):
    """A write a `WritePolicy` refuses; `kind` says which check (guard, protected, size...)."""

    def __init__(self, kind: RefusalKind, message: str, report: GuardReport | None = None) -> None:
        super().__init__(message)
        self.kind: RefusalKind = kind
        self.report = report


Writer = Literal["checkpoint", "person", "none"]


@dataclass(frozen=True)
class WritePolicy:
    """Checks run under the skill's lock on the final text, and whose write it is.

    writer: "checkpoint" keeps (or, for a create, starts) the skill's checkpoint provenance;
    "person" ends it (the skill becomes protected); "none" leaves it as it is.
    """

    guard: bool = False
    protect: bool = False
    max_skill_chars: int | None = None
    writer: Writer = "person"


PERSON = WritePolicy()
PROVENANCE_FILE = "provenance.json"
PROVENANCE_LOCK = ".provenance"


def _dangerous(report: GuardReport) -> Counter[tuple[str, str, str]]:
    return Counter((f.file, f.rule, f.excerpt) for f in report.findings if f.severity == "dangerous")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Skill:
    """One loaded skill."""

    name: str
    category: str
    folder: Path
    document: SkillDocument
    warnings: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return self.document.description

    @property
    def use_count(self) -> int:
        try:
            return int(self.document.metadata.get("use_count", "0"))
        except ValueError:
            return 0

    @property
    def last_used(self) -> str:
        return self.document.metadata.get("last_used", "")

    @property
    def skill_file(self) -> Path:
        return self.folder / SKILL_FILE

    def files(self) -> list[str]:
        """Supporting files, relative to the skill's folder (sync)."""
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*")
                      if p.is_file() and p.name != SKILL_FILE
                      and not any(part.startswith(".") for part in p.relative_to(self.folder).parts))

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "category": self.category, "description": self.description,
                "version": self.document.metadata.get("version", ""), "use_count": self.use_count,
                "last_used": self.last_used, "path": str(self.skill_file), "warnings": list(self.warnings)}


@dataclass
class Snapshot:
    """The library as last scanned. Immutable in use; the search index is built on first need."""

    skills: tuple[Skill, ...]
    problems: tuple[tuple[str, str], ...]
    generation: int
    _terms: dict[str, Any] = field(default_factory=dict, repr=False)
    _index: SearchIndex | None = field(default=None, repr=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {s.name: s for s in self.skills}

    def get(self, name: str) -> Skill | None:
        return self.by_name.get(name)

    @property
    def index(self) -> SearchIndex:
        with self._index_lock:
            if self._index is None:
                self._index = SearchIndex([s.name for s in self.skills], [self._terms[s.name] for s in self.skills])
            return self._index

    def search(self, query: str, limit: int = 10) -> list[Hit]:
        return self.index.search(query, limit)


@dataclass
class _Loaded:
    signature: tuple[int, int]
    skill: Skill | None
    problem: str | None
    terms: Any = None


class SkillLibrary:
    """A skill library rooted at one folder (the home's `skills/`, or a team's)."""

    def __init__(self, root: Path, *, rescan_interval: float = 1.0,
                 versions: SkillVersionStore | None = None) -> None:
        self.root = Path(root)
        self.versions = versions
        self.rescan_interval = rescan_interval
        self.history = SkillHistory(self.root)
        self._cache: dict[Path, _Loaded] = {}
        self._snapshot: Snapshot | None = None
        self._scanned_at = 0.0
        self._generation = 0
        self._scan_lock = threading.Lock()
        self._locks: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}

    # ------------------------------------------------------------------ reading

    def scan(self, force: bool = False) -> Snapshot:
        """The current snapshot, rescanning when stale (sync: call from a thread in async code)."""
        with self._scan_lock:
            fresh = time.monotonic() - self._scanned_at < self.rescan_interval
            if self._snapshot is not None and fresh and not force:
                return self._snapshot
            self._rescan()
            self._scanned_at = time.monotonic()
            assert self._snapshot is not None
            return self._snapshot

    def invalidate(self) -> None:
        self._scanned_at = 0.0

    def _candidates(self) -> Iterator[tuple[str, Path]]:
        """(category, skill folder) for every folder holding a SKILL.md ("" = no category)."""
        if not self.root.is_dir():
            return
        for top in sorted(os.scandir(self.root), key=lambda e: e.name):
            if top.name.startswith(".") or not top.is_dir():
                continue
            if os.path.exists(os.path.join(top.path, SKILL_FILE)):
                yield "", Path(top.path)
                continue
            for entry in sorted(os.scandir(top.path), key=lambda e: e.name):
                if not entry.name.startswith(".") and entry.is_dir() \
                        and os.path.exists(os.path.join(entry.path, SKILL_FILE)):
                    yield top.name, Path(entry.path)

    def _rescan(self) -> None:
        changed = self._snapshot is None
        seen: dict[Path, _Loaded] = {}
        for category, folder in self._candidates():
            path = folder / SKILL_FILE
            try:
                st = path.stat()
            except OSError:
                continue
            signature = (st.st_mtime_ns, st.st_size)
            cached = self._cache.get(path)
            if cached is None or cached.signature != signature:
                cached = self._load(category, folder, signature)
                changed = True
            seen[path] = cached
        if set(seen) != set(self._cache):
            changed = True
        self._cache = seen
        if not changed:
            return
        skills: list[Skill] = []
        problems: list[tuple[str, str]] = []
        names: dict[str, Path] = {}
        term_map: dict[str, Any] = {}
        for path, loaded in sorted(seen.items(), key=lambda item: str(item[0])):
            if loaded.skill is None:
                problems.append((str(path), loaded.problem or "unreadable"))
                continue
            if loaded.skill.name in names:
                problem = f"a skill named {loaded.skill.name!r} already exists at {names[loaded.skill.name]}; skipped"
                log.warning("skipping skill %s: %s", path, problem)
                problems.append((str(path), problem))
                continue
            names[loaded.skill.name] = path
            skills.append(loaded.skill)
            term_map[loaded.skill.name] = loaded.terms
        self._generation += 1
        skills.sort(key=lambda s: s.name)
        self._snapshot = Snapshot(tuple(skills), tuple(problems), self._generation, _terms=term_map)

    def _load(self, category: str, folder: Path, signature: tuple[int, int]) -> _Loaded:
        path = folder / SKILL_FILE
        try:
            parsed = parse(path.read_text(encoding="utf-8"))
            document = parsed.document
            problems = name_problems(document.name)
            if document.name != folder.name:
                problems.append(f"name {document.name!r} does not match its folder name {folder.name!r}")
            if problems:
                raise SkillFormatError("; ".join(problems))
        except (OSError, UnicodeDecodeError, SkillFormatError) as exc:
            log.warning("skipping skill file %s: %s", path, exc)
            return _Loaded(signature, None, str(exc))
        if parsed.warnings:
            log.info("skill file %s loaded with lint warnings: %s", path, "; ".join(parsed.warnings))
        skill = Skill(document.name, category, folder, document, parsed.warnings)
        terms = weighted_terms(Document(skill.name, skill.name, document.description, document.body))
        return _Loaded(signature, skill, None, terms)

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
        target = skill.skill_file if not file else self._supporting_path(skill.folder, file, must_exist=True)

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
        if self.versions is not None:
            async with self._async_lock(name):
                await self._in_step(name)
            return await self.versions.skill_entries(name)
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

    def _supporting_path(self, folder: Path, file: str, must_exist: bool = False) -> Path:
        try:
            target = safe_join(folder, *Path(file).parts) if file and not os.path.isabs(file) \
                else safe_join(folder, file)
        except PathEscapeError as exc:
            raise SkillError(f"{exc}; supporting files must stay inside the skill's folder") from exc
        relative = target.relative_to(folder.resolve())
        if not relative.parts or relative.as_posix() == SKILL_FILE:
            raise SkillError("use action 'edit' or 'patch' to change SKILL.md itself")
        if any(part.startswith(".") for part in relative.parts):
            raise SkillError(f"{file}: hidden files are not allowed in a skill")
        if must_exist and not target.is_file():
            raise SkillError(f"{file}: no such file in skill {folder.name!r}")
        return target

    @staticmethod
    def write_atomic(target: Path, text: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)

    @staticmethod
    def _parse_for_write(text: str, name: str) -> SkillDocument:
        try:
            document = parse(text).document
        except SkillFormatError as exc:
            raise SkillError(f"invalid SKILL.md: {exc}") from exc
        if document.name != name:
            raise SkillError(f"the front matter says name {document.name!r} but the skill is {name!r}; "
                             "they must be equal")
        return document

    @staticmethod
    def _render_checked(document: SkillDocument, name: str) -> str:
        problems = document_problems(document, name)
        if problems:
            raise SkillError("the result would not be a valid skill, nothing was written: " + "; ".join(problems))
        return strict_render(document, name)

    @staticmethod
    def _next_version(metadata: dict[str, str]) -> str:
        current = metadata.get("version", "0")
        return str(int(current) + 1) if current.isdigit() else current

    def _patched(self, before: str, old_text: str, new_text: str, name: str) -> str:
        """SKILL.md as `patch` would store it (front matter decoded and rendered again)."""
        count = before.count(old_text)
        if count != 1:
            raise SkillError(describe_mismatch(before, old_text, count))
        document = self._parse_for_write(before.replace(old_text, new_text, 1), name)
        document = document.with_metadata(version=self._next_version(document.metadata), updated=now_iso())
        return self._render_checked(document, name)

    def _edited(self, before: str, document: SkillDocument, name: str) -> str:
        """SKILL.md as `edit` would store it (`before`: the text now): creation time and usage counters kept."""
        current = self._parse_for_write(before, name).metadata
        kept = {k: v for k, v in current.items() if k in ("created", "origin", "use_count", "last_used")}
        final = document.with_metadata(**kept)
        final = final.with_metadata(version=self._next_version(current), updated=now_iso())
        return self._render_checked(final, name)

    async def preview(self, action: str, name: str, *, content: str | None = None, old_text: str | None = None,
                      new_text: str | None = None) -> tuple[str | None, str]:
        """(SKILL.md now, SKILL.md as a create/edit/patch would store it), writing nothing."""
        self._check_name(name)

        def work() -> tuple[str | None, str]:
            skill = self._find(name)
            before = skill.skill_file.read_text(encoding="utf-8") if skill is not None else None
            if action == "create":
                document = self._parse_for_write(content or "", name)
                stamp = now_iso()
                return before, self._render_checked(
                    document.with_metadata(version="1", created=stamp, updated=stamp, use_count="0"), name)
            if skill is None or before is None:
                raise SkillNotFound(f"there is no skill named {name!r}; use skill_search to find one, or create it")
            if action == "patch":
                if not old_text:
                    raise SkillError("old_text is empty; give the exact passage to replace")
                return before, self._patched(before, old_text, new_text or "", name)
            if action == "edit":
                return before, self._edited(before, self._parse_for_write(content or "", name), name)
            raise SkillError(f"nothing to preview for action {action!r}")

        return await asyncio.to_thread(work)

    # ------------------------------------------------------------------ provenance and policy

    def _provenance_path(self) -> Path:
        return self.root / HISTORY_DIR / PROVENANCE_FILE

    def provenance(self) -> dict[str, dict[str, Any]]:
        """{skill name: {"fingerprint", "origin", "time"}} for skills a checkpoint last wrote (sync)."""
        try:
            data = json.loads(self._provenance_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def _set_provenance(self, name: str, text: str | None, origin: str = "") -> None:
        """Record `text` as what a checkpoint last wrote to `name` (None: forget the skill)."""
        self._write_provenance(name, None if text is None else {
            "fingerprint": parse(text).document.fingerprint(), "origin": origin, "time": now_iso()})

    def _write_provenance(self, name: str, value: dict[str, Any] | None) -> None:
        with self.file_lock(PROVENANCE_LOCK):
            data = self.provenance()
            if value is None:
                if data.pop(name, None) is None:
                    return
            else:
                data[name] = value
            path = self._provenance_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{PROVENANCE_FILE}.tmp-{os.getpid()}-{threading.get_ident()}")
            temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(temporary, path)

    def _owned(self, name: str, text: str) -> bool:
        return _matches(self.provenance().get(name), text)

    def checkpoint_owned(self, name: str) -> bool:
        """Whether a checkpoint of this library created `name` and nobody else changed it since (sync)."""
        skill = self._find(name)
        if skill is None:
            return False
        try:
            return self._owned(name, skill.skill_file.read_text(encoding="utf-8"))
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
        return not _matches(owner, text)

    def check(self, policy: WritePolicy, name: str, before: str | None, after: str | None,
               files: dict[str, str] | None = None, file_before: str | None = None,
               changes: _Changes | None = None) -> None:
        """Refuse (SkillRefused) what `policy` forbids; call under the skill's lock, before writing."""
        owned = (changes.owned(before) if changes is not None else self._owned(name, before)) \
            if policy.protect and before is not None else True
        if not owned:
            raise SkillRefused("protected", (
                f"skill {name!r} is protected: no checkpoint of this library created it (it is bundled, installed "
                "or was written or edited by a person), so a review may not rewrite it. Propose a patch instead "
                "(skill_manage action=patch): it becomes a proposal an admin approves."))
        if policy.max_skill_chars and after is not None and len(after) > policy.max_skill_chars:
            raise SkillRefused("size", (
                f"SKILL.md would be {len(after)} characters; the limit is {policy.max_skill_chars} "
                "([skills] max_skill_chars). Keep the procedure short: move long reference material into a "
                "supporting file (write_file references/...) and cut repetition."))
        if not policy.guard:
            return
        if files:
            report = guard_skill_text("", files, name=name)
            previous = guard_skill_text("", {k: file_before for k in files}, name=name) \
                if file_before is not None else None
        elif after is not None:
            report = guard_skill_text(after, name=name)
            previous = guard_skill_text(before, name=name) if before is not None else None
        else:
            return
        if report.verdict != "dangerous":
            return
        now = _dangerous(report)
        if previous is not None:
            was = _dangerous(previous)
            if was and not (now - was) and sum(now.values()) < sum(was.values()):
                return  # the skill was already dangerous and this write removes findings without adding any
        raise SkillRefused("guard", (
            "refused by the skills guard, nothing was written. Remove what it flags (skills must not carry "
            "such commands or instructions):\n" + report.describe()), report)

    @staticmethod
    def _after_write(changes: _Changes, policy: WritePolicy, created: bool, owned_before: bool, text: str | None,
                     origin: str) -> None:
        if policy.writer == "checkpoint":
            if created or owned_before:
                changes.set_owner(text, origin)
        elif policy.writer == "person":
            changes.set_owner(None)

    # ------------------------------------------------------------------ the store: compare-and-set

    async def _write(self, name: str, work: Callable[[_Changes], Callable[[], T]], *, history: bool = False) -> T:
        """Run `work` on the skill and apply what it changed.

        Without a store: under the skill's locks, changes applied as they are made. With one: `work`
        runs on the state read (after `_in_step`), its changes are committed only if the skill's
        version is still the one read, and on a conflict everything is done again on the new text.
        `work` returns what to answer once the change is on disk."""
        self._check_name(name)
        versions = self.versions
        if versions is None:
            return await self._locked(name, lambda: work(_Changes(self, name, None))())
        async with self._async_lock(name):  # only queues this process's writers; the store decides
            for attempt in range(MAX_ATTEMPTS):
                stored = await self._in_step(name)
                entries = await versions.skill_entries(name) if history else None
                changes = _Changes(self, name, stored, entries)
                try:
                    answer = await asyncio.to_thread(work, changes)
                finally:
                    self.invalidate()
                if changes.empty:
                    return await asyncio.to_thread(answer)
                try:
                    await versions.skill_commit(name, changes.commit(), changes.apply_async)
                except VersionConflict:
                    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                    continue
                finally:
                    self.invalidate()
                return await asyncio.to_thread(answer)
        raise SkillError(f"skill {name!r} is being changed by others all the time; try again")

    async def _in_step(self, name: str) -> StoredSkill:
        """The skill as the store holds it, once the files on disk agree with it: a skill the store
        has never seen is adopted (with its `.history` and provenance), a person's edit of a file
        becomes a version (and the skill protected), and a stale or missing copy is rewritten from
        the store. Each of those is a compare-and-set too."""
        assert self.versions is not None
        for _ in range(MAX_ATTEMPTS):
            stored = await self.versions.skill_state(name)
            disk = await asyncio.to_thread(self._disk_files, name, stored.category)
            plan = await self._reconcile(name, stored, disk)
            if plan is None:
                return stored
            try:
                await self.versions.skill_commit(name, *plan)
            except VersionConflict:
                continue
            finally:
                self.invalidate()
        raise SkillError(f"skill {name!r} is being changed by others all the time; try again")

    def _disk_files(self, name: str, category: str) -> tuple[Path, str, dict[str, str]] | None:
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
        return self._disk_texts(folder)

    def _disk_texts(self, folder: Path) -> tuple[Path, str, dict[str, str]]:
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

    async def _reconcile(self, name: str, stored: StoredSkill,
                         disk: tuple[Path, str, dict[str, str]] | None) -> tuple[Commit, Apply | None] | None:
        """What brings the store and the files in step (None: they are)."""
        assert self.versions is not None
        if disk is None:
            if not stored.present:
                return None
            folder = safe_join(self.root, stored.category or DEFAULT_CATEGORY, name)
            return Commit(stored.seq), self._rewrite(folder, stored.files, {})
        folder, category, texts = disk
        if stored.seq == 0:
            return await asyncio.to_thread(self._adoption, name, category, texts)
        if not stored.present:
            if SKILL_FILE in texts and await self.versions.skill_known(
                    name, SKILL_FILE, file_digest(SKILL_FILE, texts[SKILL_FILE])):
                return Commit(stored.seq), self._rewrite(folder, {}, texts)  # a stale copy of a deleted skill
            entries = [NewEntry("edit", f, None, t, "file") for f, t in sorted(texts.items())]
            return Commit(stored.seq, dict(texts), entries, category=category, owner=None), \
                self._mirror(name, stored.version, entries, None)
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
            return Commit(stored.seq, dict(edits), entries, owner=None), self._mirror(name, stored.version, entries, None)
        if stale:
            return Commit(stored.seq), self._rewrite(folder, stored.files, texts)
        return None

    def _rewrite(self, folder: Path, files: dict[str, str], disk: dict[str, str]) -> Apply:
        """Make `folder` hold exactly `files` (of what we track: the text files in `disk`)."""
        def run() -> None:
            for relative in disk:
                if relative not in files:
                    with contextlib.suppress(OSError):
                        (folder / relative).unlink()
            for relative, text in files.items():
                target = safe_join(folder, *Path(relative).parts)
                if disk.get(relative) != text:
                    self.write_atomic(target, text)
            if not files:
                shutil.rmtree(folder, ignore_errors=True)

        async def apply() -> None:
            await asyncio.to_thread(run)

        return apply

    def _adoption(self, name: str, category: str, texts: dict[str, str]) -> tuple[Commit, Apply | None]:
        """The first commit of a skill the store has never seen: its `.history` and provenance as
        the files keep them, and an "import" entry for what the history does not account for."""
        entries = [NewEntry(e.action, e.file, e.before, e.after, e.origin, e.time) for e in self.history.entries(name)]
        replayed: dict[str, str | None] = {}
        for entry in entries:
            replayed[entry.file] = entry.after
        for file, text in sorted(texts.items()):
            if replayed.get(file) != text:
                entries.append(NewEntry("import", file, replayed.get(file), text, "file"))
        owner = self.provenance().get(name)
        provenance = Provenance(str(owner.get("fingerprint", "")), str(owner.get("origin", "")),
                                str(owner.get("time", ""))) if owner else None
        if not texts:  # only a history is left: a deleted skill, kept so it can be reverted
            category = next((e.action.split(":", 1)[1] for e in reversed(entries) if e.action.startswith("delete:")),
                            DEFAULT_CATEGORY)
        return Commit(0, dict(texts), entries, category=category, owner=provenance), \
            self._mirror(name, 0, entries, KEEP)

    def _mirror(self, name: str, version: int, entries: list[NewEntry], owner: Provenance | None | str) -> Apply:
        """Copy `entries` (numbered after `version`) and the provenance into `.history/`."""
        def run() -> None:
            for offset, entry in enumerate(entries, start=1):
                self.history.write(name, HistoryEntry(
                    number=version + offset, action=entry.action, file=entry.file, time=entry.time or time.time(),
                    origin=entry.origin, before=entry.before, after=entry.after,
                    diff=unified_diff(entry.before, entry.after, entry.file)))
            if owner != KEEP:
                self._write_provenance(name, asdict(owner) if isinstance(owner, Provenance) else None)

        async def apply() -> None:
            await asyncio.to_thread(run)

        return apply

    async def sync_store(self) -> int:
        """Bring every skill of the library and the store in step (at start): skills made before the
        store and their history are adopted, edits made while the gateway was down become versions,
        and skills the store has but the disk lacks are written. Returns how many skills changed."""
        if self.versions is None:
            return 0
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
                texts = self._disk_texts(folder)[2]
                if files and set(texts) == set(files) and all(
                        text_digest(t) == files[f] for f, t in texts.items()):
                    same.add(name)
            return set(folders), set(self.history.names()), same

        on_disk, historic, same = await asyncio.to_thread(look)
        changed = 0
        for name in sorted(on_disk | set(before) | historic):
            if name_problems(name) or name in same:
                continue
            async with self._async_lock(name):
                state = await self._in_step(name)
                if state.seq == 0 and name in historic:  # deleted before the store: adopt its history
                    commit, _ = await asyncio.to_thread(self._adoption, name, "", {})
                    with contextlib.suppress(VersionConflict):
                        await self.versions.skill_commit(name, commit)
                    state = await self.versions.skill_state(name)
            changed += state.seq != before.get(name, 0)
        self.invalidate()
        return changed

    # ------------------------------------------------------------------ writing

    async def create(self, name: str, content: str, category: str = DEFAULT_CATEGORY, origin: str = "",
                     policy: WritePolicy = PERSON) -> Skill:
        """Add a skill from full SKILL.md text."""
        category = category or DEFAULT_CATEGORY
        self._check_name(name)
        self._check_name(category, "category")
        document = self._parse_for_write(content, name)

        def work(changes: _Changes) -> Callable[[], Skill]:
            existing = self._find(name)
            if existing is not None:
                raise SkillError(f"a skill named {name!r} already exists (category {existing.category!r}); "
                                 "use action 'patch' or 'edit' to change it")
            stamp = now_iso()
            final = document.with_metadata(version="1", created=stamp, updated=stamp, use_count="0")
            if origin:
                final = final.with_metadata(origin=origin)
            text = self._render_checked(final, name)
            self.check(policy, name, None, text, changes=changes)
            folder = safe_join(self.root, category, name)
            changes.category = category
            changes.write(folder, SKILL_FILE, text)
            changes.record("create", SKILL_FILE, None, text, origin)
            self._after_write(changes, policy, True, False, text, origin)
            return lambda: self._require(name)

        return await self._write(name, work)

    async def patch(self, name: str, old_text: str, new_text: str, origin: str = "",
                    policy: WritePolicy = PERSON) -> Skill:
        """Replace the one occurrence of `old_text` in SKILL.md with `new_text`."""
        if not old_text:
            raise SkillError("old_text is empty; give the exact passage to replace")

        def work(changes: _Changes) -> Callable[[], Skill]:
            skill = self._require(name)
            before = skill.skill_file.read_text(encoding="utf-8")
            count = before.count(old_text)
            if count != 1:
                raise SkillError(describe_mismatch(before, old_text, count))
            text = self._patched(before, old_text, new_text, name)
            self.check(policy, name, before, text, changes=changes)
            owned = changes.owned(before)
            changes.write(skill.folder, SKILL_FILE, text)
            changes.record("patch", SKILL_FILE, before, text, origin)
            self._after_write(changes, policy, False, owned, text, origin)
            return lambda: self._require(name)

        return await self._write(name, work)

    async def edit(self, name: str, content: str, origin: str = "", policy: WritePolicy = PERSON) -> Skill:
        """Replace SKILL.md with `content`; creation time and usage counters are kept."""
        self._check_name(name)
        document = self._parse_for_write(content, name)

        def work(changes: _Changes) -> Callable[[], Skill]:
            skill = self._require(name)
            before = skill.skill_file.read_text(encoding="utf-8")
            text = self._edited(before, document, name)
            self.check(policy, name, before, text, changes=changes)
            owned = changes.owned(before)
            changes.write(skill.folder, SKILL_FILE, text)
            changes.record("edit", SKILL_FILE, before, text, origin)
            self._after_write(changes, policy, False, owned, text, origin)
            return lambda: self._require(name)

        return await self._write(name, work)

    async def delete(self, name: str, origin: str = "", policy: WritePolicy = PERSON) -> str:
        """Remove the skill's folder; its text files stay in the history (revert brings them back)."""
        def work(changes: _Changes) -> Callable[[], str]:
            skill = self._require(name)
            self.check(policy, name, skill.skill_file.read_text(encoding="utf-8"), None, changes=changes)
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

        def work(changes: _Changes) -> Callable[[], str]:
            skill = self._require(name)
            target = self._supporting_path(skill.folder, file_path)
            relative = target.relative_to(skill.folder.resolve()).as_posix()
            before = target.read_text(encoding="utf-8") if target.is_file() else None
            skill_text = skill.skill_file.read_text(encoding="utf-8")
            self.check(dataclasses.replace(policy, max_skill_chars=None), name, skill_text, None,
                       {relative: content}, before, changes=changes)
            changes.write(skill.folder, relative, content, target)
            changes.record("write_file", relative, before, content, origin)
            message = f"wrote {relative} in skill {name!r} ({len(content)} characters)"
            return lambda: message

        return await self._write(name, work)

    async def remove_file(self, name: str, file_path: str, origin: str = "", policy: WritePolicy = PERSON) -> str:
        def work(changes: _Changes) -> Callable[[], str]:
            skill = self._require(name)
            self.check(dataclasses.replace(policy, guard=False, max_skill_chars=None), name,
                       skill.skill_file.read_text(encoding="utf-8"), None, changes=changes)
            target = self._supporting_path(skill.folder, file_path, must_exist=True)
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
        def work(changes: _Changes) -> Callable[[], str]:
            entries = changes.history()
            try:
                state = state_at(entries, name, to)
            except KeyError as exc:
                raise SkillError(str(exc.args[0])) from exc
            if not state:
                message = f"skill {name!r} is already at version {to}"
                return lambda: message
            skill = self._find(name)
            category = skill.category if skill else _last_category(entries)
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
                self._parse_for_write(restored, name)
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
        def work(changes: _Changes) -> Callable[[], None]:
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


def _matches(owner: dict[str, Any] | None, text: str) -> bool:
    """Whether `text` is what a checkpoint last wrote (`owner`: its provenance entry)."""
    if owner is None:
        return False
    try:
        return parse(text).document.fingerprint() == owner.get("fingerprint")
    except SkillFormatError:
        return False


def _last_category(entries: list[HistoryEntry]) -> str:
    for entry in reversed(entries):
        if entry.action.startswith("delete:"):
            return entry.action.split(":", 1)[1] or DEFAULT_CATEGORY
    return DEFAULT_CATEGORY


class _Changes:
    """What one write changes. Without a store each change is made at once (files, `.history`,
    provenance), as it always was; with one they are collected into a `Commit` and made on disk by
    `apply`, inside the store's transaction (the `.history` and provenance files mirror the store)."""

    def __init__(self, library: SkillLibrary, name: str, stored: StoredSkill | None,
                 entries: list[HistoryEntry] | None = None) -> None:
        self.library = library
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
            return self.library.history.entries(self.name)
        return self._history

    def owned(self, text: str) -> bool:
        if self.stored is None:
            return self.library._owned(self.name, text)
        return _matches(asdict(self.stored.owner) if self.stored.owner is not None else None, text)

    def write(self, folder: Path, relative: str, text: str, target: Path | None = None) -> None:
        path = target if target is not None else folder / relative
        if self.stored is None:
            self.library.write_atomic(path, text)
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
            self.library.history.record(self.name, action, file, before, after, origin)
        elif before != after:
            self.entries.append(NewEntry(action, file, before, after, origin, time.time()))

    def set_owner(self, text: str | None, origin: str = "") -> None:
        if self.stored is None:
            self.library._set_provenance(self.name, text, origin)
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
                self.library.write_atomic(path, text)
            elif op == "unlink":
                path.unlink(missing_ok=True)
            elif op == "rmtree":
                shutil.rmtree(path, ignore_errors=True)

    async def apply_async(self) -> None:
        assert self.stored is not None
        await asyncio.to_thread(self.apply)
        await self.library._mirror(self.name, self.stored.version, self.entries, self.owner)()


def describe_mismatch(text: str, old_text: str, count: int) -> str:
    """The error for a patch whose `old_text` does not occur exactly once."""
    if count > 1:
        lines = [text[:m].count("\n") + 1 for m in _occurrences(text, old_text)]
        return (f"old_text occurs {count} times (at lines {', '.join(map(str, lines))}); "
                "include more surrounding text so it matches exactly once")
    closest = closest_passage(text, old_text)
    hint = f"\nThe closest passage is:\n{closest}" if closest else ""
    return f"old_text occurs 0 times in SKILL.md; copy the exact text (skill_view shows it).{hint}"


def _occurrences(text: str, needle: str) -> Iterator[int]:
    start = text.find(needle)
    while start != -1:
        yield start
        start = text.find(needle, start + 1)


def closest_passage(text: str, needle: str) -> str:
    """The run of lines in `text` most similar to `needle`, with line numbers."""
    lines = text.splitlines()
    width = max(1, len(needle.splitlines()))
    best, best_ratio = 0, -1.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(needle)
    for start in range(max(1, len(lines) - width + 1)):
        matcher.set_seq1("\n".join(lines[start:start + width]))
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best, best_ratio = start, ratio
    if best_ratio <= 0:
        return ""
    return "\n".join(f"{n + 1:>4}| {lines[n]}" for n in range(best, min(len(lines), best + width)))
