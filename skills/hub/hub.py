"""The hub's operations on one library: browse, install (and from the lock), update, uninstall,
verify. Every install stages the skill in `<root>/.staging/`, checks it, runs the guard, and only
then moves it into place under the skill's lock; a failure at any step leaves the library as it
was. A `dangerous` skill is moved to `<root>/.quarantine/` instead, unless forced."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from skills.guard import GuardReport, scan_folder
from skills.history import SKILL_FILE
from skills.hub.checks import Budget, check_staged, staged_warnings
from skills.hub.content import file_hashes, tree_hash
from skills.hub.errors import GuardRefused, HubError
from skills.hub.lockfile import LOCK_FILE, LockEntry, LockFile
from skills.hub.net import Http
from skills.hub.settings import HubSettings
from skills.hub.sources import Fetched, GitHubSource, IndexSource, LocalSource
from skills.hub.spec import Source, resolve, source_for_lock, tap_source
from skills.hub.taps import TapStore
from skills.library import SkillLibrary
from skills.paths import safe_join
from skills.skill_text import MAX_SUPPORTING_FILE, now_iso
from skills.validate import name_problems

STAGING_DIR = ".staging"
QUARANTINE_DIR = ".quarantine"
HUB_LOCK = ".hub"
Confirm = Callable[[GuardReport], "bool | Awaitable[bool]"]


@dataclass
class InstallResult:
    name: str
    action: str
    """installed | updated | unchanged | skipped"""
    source: str = ""
    ref: str = ""
    category: str = ""
    report: GuardReport | None = None
    message: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "action": self.action, "source": self.source, "ref": self.ref,
                "category": self.category, "verdict": self.report.verdict if self.report else "",
                "message": self.message}


@dataclass
class VerifyResult:
    name: str
    status: str
    """ok | modified | missing"""
    modified: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status, "modified": self.modified,
                "missing": self.missing, "added": self.added}


def _texts(folder: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    if not folder.is_dir():
        return texts
    for relative in file_hashes(folder):
        path = folder / relative
        try:
            if path.stat().st_size <= MAX_SUPPORTING_FILE:
                texts[relative] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return texts


class Hub:
    def __init__(self, library: SkillLibrary, settings: HubSettings | None = None,
                 taps: TapStore | None = None) -> None:
        self.library = library
        self.root = library.root
        self.settings = settings or HubSettings()
        self.taps = taps

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    # ------------------------------------------------------------------ browse

    def sources(self, only: str | None = None) -> list[Source]:
        sources: list[Source] = [tap_source(t) for t in (self.taps.all() if self.taps else [])]
        sources += [IndexSource(url) for url in self.settings.indexes]
        if only:
            chosen = [s for s in sources if only in (s.label, s.label.split(":", 1)[1])
                      or (isinstance(s, IndexSource) and only in s.url)]
            if chosen:
                return chosen
            if only.startswith("github:"):
                parts = only[len("github:"):].split("/")
                if len(parts) >= 2:
                    return [GitHubSource(parts[0], parts[1], "/".join(parts[2:]), self.settings)]
            if only.startswith(("http://", "https://")):
                return [IndexSource(only)]
            if Path(only).expanduser().is_dir():
                return [LocalSource(Path(only))]
            raise HubError(f"no source {only!r}; sources: {', '.join(s.label for s in sources) or 'none configured'}")
        return sources

    async def browse(self, query: str = "", only: str | None = None) -> tuple[list[dict[str, object]], list[str]]:
        """(rows, errors): every offer matching `query`, and one error line per unreachable source."""
        sources = self.sources(only)
        if not sources:
            raise HubError("no skill sources are configured; add one with `hermes skills tap add` "
                           "or [hub] indexes in the config")
        snapshot = await self.library.snapshot(force=True)
        words = query.lower().split()
        rows: list[dict[str, object]] = []
        errors: list[str] = []
        async with Http(self.settings) as http:
            results = await asyncio.gather(*(s.offers(http) for s in sources), return_exceptions=True)
        for source, result in zip(sources, results):
            if isinstance(result, HubError):
                errors.append(f"{source.label}: {result}")
                continue
            if isinstance(result, BaseException):
                raise result
            for offer in result:
                haystack = f"{offer.name} {offer.description}".lower()
                if all(w in haystack for w in words):
                    rows.append({"name": offer.name, "source": offer.source, "description": offer.description,
                                 "version": offer.version, "spec": offer.spec,
                                 "installed": snapshot.get(offer.name) is not None})
        rows.sort(key=lambda r: (str(r["name"]), str(r["source"])))
        return rows, errors

    async def verdicts(self, specs: list[str], concurrency: int = 4) -> dict[str, str]:
        """The guard's verdict of each offer (`safe`, `caution`, `dangerous`, or `unreadable: why`),
        fetched into staging and checked and scanned as `install` would, then thrown away."""
        gate = asyncio.Semaphore(concurrency)

        async def one(spec: str) -> str:
            async with gate:
                try:
                    source, name, ref = resolve(spec, self.settings, self.taps)
                    async with self._staged(source, name, ref, prefix="scan-") as (dest, fetched):
                        report = await asyncio.to_thread(scan_folder, dest, fetched.name)
                    return report.verdict
                except HubError as exc:
                    return f"unreadable: {exc}"

        found = await asyncio.gather(*(one(spec) for spec in specs))
        return dict(zip(specs, found))

    @contextlib.asynccontextmanager
    async def _staged(self, source: Source, name: str | None, ref: str,
                      prefix: str = "stage-") -> AsyncIterator[tuple[Path, Fetched]]:
        """The skill fetched into a fresh folder under staging and checked as a skill (files, names,
        sizes); the folder goes when the block ends, whatever became of the skill."""
        staging_root = self.root / STAGING_DIR
        await asyncio.to_thread(staging_root.mkdir, parents=True, exist_ok=True)
        temporary = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix, dir=staging_root))
        try:
            dest = temporary / "skill"
            budget = Budget(self.settings, source.label + (f"/{name}" if name else ""))
            async with Http(self.settings) as http:
                fetched = await source.fetch(http, name, ref, dest, budget)
            await asyncio.to_thread(check_staged, dest, fetched.name, f"{fetched.source}@{fetched.ref[:12]}")
            yield dest, fetched
        finally:
            await asyncio.to_thread(shutil.rmtree, temporary, True)

    # ------------------------------------------------------------------ install

    async def install(self, spec: str, *, force: bool = False, confirm: Confirm | None = None,
                      category: str = "") -> InstallResult:
        source, name, ref = resolve(spec, self.settings, self.taps)
        return await self._install(source, name, ref, force=force, confirm=confirm, category=category,
                                   fresh_only=True)

    async def install_from_lock(self, path: Path | None = None, *, force: bool = False,
                                confirm: Confirm | None = None) -> list[InstallResult]:
        """Install every skill of a lock file at its recorded ref; a hash mismatch is an error."""
        lock = LockFile.load(path or self.lock_path)
        if not lock.entries:
            raise HubError(f"{lock.path}: no skills to install")
        results = []
        for entry in lock.entries.values():
            source, name = source_for_lock(entry.source, entry.url, self.settings)
            results.append(await self._install(source, name or entry.name, entry.ref, force=force, confirm=confirm,
                                               category=entry.category, expect_hash=entry.hash))
        return results

    async def update(self, name: str | None = None, *, force: bool = False,
                     confirm: Confirm | None = None) -> list[InstallResult]:
        lock = await asyncio.to_thread(LockFile.load, self.lock_path)
        if name is not None and name not in lock.entries:
            raise HubError(f"skill {name!r} was not installed from the hub (it is not in {self.lock_path.name})")
        entries = [lock.entries[name]] if name else list(lock.entries.values())
        results = []
        for entry in entries:
            check = await self._verify_one(entry)
            if check.status == "modified" and not force:
                results.append(InstallResult(entry.name, "skipped", entry.source, entry.ref, entry.category,
                                             message="changed locally (" + ", ".join(check.modified + check.added
                                                                                     + check.missing)
                                             + "); pass --force to overwrite"))
                continue
            source, fetched_name = source_for_lock(entry.source, entry.url, self.settings)
            tap = self.taps.find(entry.source[4:].partition("/")[0]) if self.taps and entry.source.startswith("tap:") \
                else None
            if tap is not None:
                source = tap_source(tap)
            results.append(await self._install(source, fetched_name or entry.name, "", force=force,
                                               confirm=confirm, category=entry.category,
                                               previous=entry if check.status == "ok" else None))
        return results

    async def _install(self, source: Source, name: str | None, ref: str, *, force: bool, confirm: Confirm | None,
                       category: str = "", fresh_only: bool = False, expect_hash: str = "",
                       previous: LockEntry | None = None) -> InstallResult:
        async with self._staged(source, name, ref) as (dest, fetched):
            where = f"{fetched.source}@{fetched.ref[:12]}"
            hashes = await asyncio.to_thread(file_hashes, dest)
            digest = tree_hash(hashes)
            if expect_hash and digest != expect_hash:
                raise HubError(f"{where}: the files do not match skills.lock (expected {expect_hash}, got {digest}); "
                               "the source changed under the same ref, nothing was installed")
            if previous is not None and digest == previous.hash:
                if fetched.ref != previous.ref:
                    await asyncio.to_thread(self._touch_lock, fetched, previous)
                return InstallResult(fetched.name, "unchanged", fetched.source, fetched.ref, previous.category,
                                     message="already up to date")
            report = await asyncio.to_thread(scan_folder, dest, fetched.name)
            if report.verdict == "dangerous" and not force:
                quarantined = await asyncio.to_thread(self._quarantine, dest, fetched, report)
                raise GuardRefused(f"the guard found {fetched.name!r} dangerous; it was not installed and is kept in "
                                   f"{quarantined} (read the report; --force installs it anyway)",
                                   report, str(quarantined))
            if report.verdict == "caution" and not force:
                accepted = False
                if confirm is not None:
                    answer = confirm(report)
                    accepted = bool(await answer) if inspect.isawaitable(answer) else bool(answer)
                if not accepted:
                    raise GuardRefused(f"the guard advises caution for {fetched.name!r} and it was not accepted; "
                                       "nothing was installed (--yes accepts caution)", report)
            notes = [fetched.note] if fetched.note else []
            notes += [f"lint warning: {w}" for w in await asyncio.to_thread(staged_warnings, dest)]
            result = await self._place(dest, fetched, hashes, digest, report, category, fresh_only)
            result.message = "; ".join([*notes, *([result.message] if result.message else [])])
            return result

    def _quarantine(self, dest: Path, fetched: Fetched, report: GuardReport) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = safe_join(self.root, QUARANTINE_DIR, f"{fetched.name}-{stamp}-{os.getpid()}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(dest, target)
        (target.parent / f"{target.name}.report.json").write_text(json.dumps(
            {"source": fetched.source, "ref": fetched.ref, **report.to_dict()}, indent=2), encoding="utf-8")
        (target.parent / f"{target.name}.report.txt").write_text(
            f"source: {fetched.source} @ {fetched.ref}\n{report.explain()}\n", encoding="utf-8")
        return target

    def _touch_lock(self, fetched: Fetched, previous: LockEntry) -> None:
        with self.library.file_lock(HUB_LOCK):
            lock = LockFile.load(self.lock_path)
            entry = lock.entries.get(previous.name)
            if entry is not None:
                entry.ref = fetched.ref
                entry.version = fetched.version
                lock.save()

    async def _place(self, dest: Path, fetched: Fetched, hashes: dict[str, str], digest: str, report: GuardReport,
                     category: str, fresh_only: bool) -> InstallResult:
        name = fetched.name

        def work() -> InstallResult:
            with self.library.file_lock(name), self.library.file_lock(HUB_LOCK):
                lock = LockFile.load(self.lock_path)
                existing = self.library.scan(force=True).get(name)
                entry = lock.entries.get(name)
                if existing is not None and fresh_only:
                    if entry is None:
                        raise HubError(f"a skill named {name!r} already exists in the library at {existing.folder} "
                                       "(not from the hub); delete it first if you want to replace it")
                    if entry.source != fetched.source:
                        raise HubError(f"skill {name!r} is already installed from {entry.source}; "
                                       "uninstall it first to install it from another source")
                    raise HubError(f"skill {name!r} is already installed from {entry.source}; "
                                   f"use `hermes skills update {name}` to get the latest version")
                chosen = existing.category if existing else (category or fetched.category or "general")
                if name_problems(chosen, "category"):
                    chosen = "general"
                target = existing.folder if existing else safe_join(self.root, chosen, name)
                before = _texts(target) if existing else {}
                aside = dest.parent / "previous"
                if existing:
                    os.rename(target, aside)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(dest, target)
                except OSError:
                    if existing and aside.exists() and not target.exists():
                        os.rename(aside, target)
                    raise
                after = _texts(target)
                action = "updated" if existing else "installed"
                for relative in sorted(set(before) | set(after), key=lambda r: (r != SKILL_FILE, r)):
                    self.library.history.record(name, "hub-install" if not existing else "hub-update", relative, before.get(relative),
                                                after.get(relative), fetched.source)
                lock.entries[name] = LockEntry(name=name, source=fetched.source, url=fetched.url, ref=fetched.ref,
                                               hash=digest, category=chosen, files=hashes, version=fetched.version,
                                               verdict=report.verdict, installed_at=now_iso())
                lock.save()
                self.library.invalidate()
                return InstallResult(name, action, fetched.source, fetched.ref, chosen, report)

        return await asyncio.to_thread(work)

    # ------------------------------------------------------------------ uninstall, verify

    async def uninstall(self, name: str) -> str:
        lock = await asyncio.to_thread(LockFile.load, self.lock_path)
        if name not in lock.entries:
            raise HubError(f"skill {name!r} was not installed from the hub; use `hermes skills delete {name}`")
        message = ""
        if (await self.library.snapshot(force=True)).get(name) is not None:
            message = await self.library.delete(name, origin="hub-uninstall")

        def forget() -> None:
            with self.library.file_lock(HUB_LOCK):
                current = LockFile.load(self.lock_path)
                current.entries.pop(name, None)
                current.save()

        await asyncio.to_thread(forget)
        return f"uninstalled {name!r} (was from {lock.entries[name].source})" + (f"; {message}" if message else "")

    async def _verify_one(self, entry: LockEntry) -> VerifyResult:
        skill = (await self.library.snapshot(force=True)).get(entry.name)
        if skill is None:
            return VerifyResult(entry.name, "missing", missing=sorted(entry.files))
        current = await asyncio.to_thread(file_hashes, skill.folder)
        modified = sorted(p for p in entry.files if p in current and current[p] != entry.files[p])
        missing = sorted(p for p in entry.files if p not in current)
        added = sorted(p for p in current if p not in entry.files)
        status = "ok" if not (modified or missing or added) else "modified"
        return VerifyResult(entry.name, status, modified, missing, added)

    async def verify(self) -> list[VerifyResult]:
        lock = await asyncio.to_thread(LockFile.load, self.lock_path)
        return [await self._verify_one(entry) for _, entry in sorted(lock.entries.items())]
