"""The library as read from disk: `Skill` (one loaded SKILL.md and its folder), `Snapshot` (all
of them, with a search index built on first need) and `SkillScanner`, which rebuilds the
snapshot when files change (an mtime/size scan, at most once every `rescan_interval` seconds,
and at once after `invalidate`). Malformed files are skipped with a warning naming the file and
the problem, and listed in `Snapshot.problems`."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skills.document import SkillDocument, SkillFormatError, parse
from skills.history import SKILL_FILE
from skills.search import Document, Hit, SearchIndex, weighted_terms
from skills.validate import name_problems

log = logging.getLogger(__name__)


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



class SkillScanner:
    """Scans `<root>/<category>/<name>/SKILL.md` (and `<root>/<name>/SKILL.md`) into snapshots,
    reloading only the files whose mtime or size changed."""

    def __init__(self, root: Path, rescan_interval: float = 1.0) -> None:
        self.root = root
        self.rescan_interval = rescan_interval
        self._cache: dict[Path, _Loaded] = {}
        self._snapshot: Snapshot | None = None
        self._scanned_at = 0.0
        self._generation = 0
        self._scan_lock = threading.Lock()

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

    def candidates(self) -> Iterator[tuple[str, Path]]:
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
        for category, folder in self.candidates():
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
