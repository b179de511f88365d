"""Profiles: pack a home's skills (with history), memory, cron jobs and config (without secrets)
into a .tar.gz, and restore one on another installation.

Archive layout: `profile.json` (format, version, what is included, `env_names`: every `${NAME}`
the config and jobs need, `secret_names`: the ones export made and where), `skills/` (the library
with `.history/` and `skills.lock`), `memories/` and `teams/<team>/memories/`, `cron/jobs.json`
(rows of `cron_jobs` of the home's store, SQLite or PostgreSQL, when that table exists),
`config.toml`.

No literal secret leaves: in config.toml and the cron jobs every secret (values under secret keys,
URL user-info and secret query keys, webhook paths, header credentials, MCP env and args, DSNs,
anything secret-shaped; see `agent.secret_fields`) is replaced by a `${NAME}` reference, the
same name for the same value. Import lists the names and says which are not set yet.

Import never overwrites silently. `merge` (the default) adds what is missing, fast-forwards a
skill whose local version is in the profile's history, keeps a local skill that is newer, and
reports a conflict when the same skill changed on both sides; `replace` lets the profile win.
Every skill is scanned by the guard first: `dangerous` is quarantined unless forced, `caution`
needs confirmation. Local items absent from the profile are never deleted.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.redact import Redactor
from gateway.config import read_secrets_file
from gateway.profile_config import ProfileError, SecretNames, references, replace_secrets, sanitize_config
from gateway.home import Home
from skills.document import SkillFormatError, parse
from skills.guard import GuardReport, scan_folder
from skills.history import HISTORY_DIR, SKILL_FILE
from skills.hub.archive import unpack
from skills.hub.checks import Budget
from skills.hub.content import file_hashes, tree_hash
from skills.hub.errors import HubError
from skills.hub.lockfile import LOCK_FILE, LockFile
from skills.hub.settings import HubSettings
from skills.paths import safe_join
from skills.validate import name_problems

if TYPE_CHECKING:
    from gateway.store.database import URL

FORMAT = "hermes-profile"
VERSION = 1
PARTS = ("skills", "memory", "cron", "config")
SKIP_IN_LIBRARY = {".locks", ".staging", ".quarantine"}
ARCHIVE_LIMITS = HubSettings(max_file_bytes=20_000_000, max_total_bytes=500_000_000, max_files=200_000)
Confirm = Callable[[GuardReport], bool]


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_local: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env_names: list[str] = field(default_factory=list)   # ${NAME}s the imported config and jobs need

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.__dict__.items()}


# ---------------------------------------------------------------------------------- export


def _add_tree(archive: tarfile.TarFile, source: Path, arcname: str, skip: set[str] = frozenset()) -> int:
    count = 0
    if not source.is_dir():
        return 0
    for dirpath, dirnames, filenames in os.walk(source):
        relative_dir = Path(dirpath).relative_to(source)
        dirnames[:] = sorted(d for d in dirnames if not (relative_dir == Path(".") and d in skip)
                             and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file() or name.endswith(".lock") or ".tmp-" in name:
                continue
            archive.add(path, arcname=f"{arcname}/{path.relative_to(source).as_posix()}", recursive=False)
            count += 1
    return count


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))


def home_store_url(home: Home) -> URL:
    """The home's store as the gateway opens it: HERMES_STORE_URL, else `[store] url` (its
    `${NAME}` references filled from the environment and secrets.env), else `[store] path`,
    else state.db. Only the `[store]` section is read, so a config that needs other secrets
    still exports."""
    from gateway.config import ENV_REFERENCE
    from gateway.store.database import resolve_url

    section: dict[str, Any] = {}
    if home.config_file.exists():
        try:
            section = tomllib.loads(home.config_file.read_text(encoding="utf-8")).get("store") or {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{home.config_file}: {exc}") from None
    environ = {**read_secrets_file(home.secrets_file), **{k: v for k, v in os.environ.items() if v}}
    missing = [m.group(1) for m in ENV_REFERENCE.finditer(str(section.get("url", ""))) if m.group(1) not in environ]
    if missing and not os.environ.get("HERMES_STORE_URL"):
        raise ProfileError(f"{home.config_file}: [store] url: environment variable {missing[0]} is not set")
    url = ENV_REFERENCE.sub(lambda m: environ.get(m.group(1), ""), str(section.get("url", "")))
    try:
        return resolve_url(url, str(section.get("path", "")), home.state_db)
    except ValueError as exc:
        raise ProfileError(str(exc)) from None


async def _cron_rows(home: Home, url: URL) -> list[dict[str, Any]] | None:
    """The `cron_jobs` rows by id, or None when the store has no such table (cron not installed)."""
    from gateway.store import StoreUnavailableError, open_store
    from gateway.store.snapshot import table_rows

    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        return None
    try:
        store = await open_store(url, migrate=False)   # read as it is: an export changes nothing
    except StoreUnavailableError as exc:
        raise ProfileError(str(exc)) from None
    try:
        return await table_rows(store.db, "cron_jobs")
    finally:
        await store.close()


async def export_profile(home: Home, output: Path, include: tuple[str, ...] = PARTS, *,
                         store_url: URL | None = None) -> dict[str, Any]:
    """Write the profile archive; returns its manifest (what went in). The cron jobs come from
    `store_url`, by default the home's store (`home_store_url`)."""
    unknown = sorted(set(include) - set(PARTS))
    if unknown:
        raise ProfileError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    manifest: dict[str, Any] = {"format": FORMAT, "version": VERSION, "created": time.time(),
                                "includes": list(include), "counts": {}, "removed_secrets": [],
                                "secret_names": {}, "env_names": []}
    if "cron" in include:
        cron = await _cron_rows(home, store_url or await asyncio.to_thread(home_store_url, home))
    else:
        cron = None
    if "cron" in include and cron is None:
        manifest["notes"] = ["cron: no cron_jobs table in this home's store; no jobs exported"]
    redactor = Redactor.from_environ()
    names = SecretNames()
    if cron is not None:
        cron = [replace_secrets(row, names, redactor, ("cron", str(row.get("id", i))), {})
                for i, row in enumerate(cron)]
    config_text: str | None = None
    if "config" in include and home.config_file.exists():
        raw = await asyncio.to_thread(home.config_file.read_text, encoding="utf-8")
        config_text, manifest["removed_secrets"] = sanitize_config(raw, redactor, names)
    manifest["secret_names"] = {name: places for name, places in names.where.items()}
    manifest["env_names"] = references((config_text or "") + json.dumps(cron or []))

    def work() -> None:
        output.parent.mkdir(parents=True, exist_ok=True)
        temporary = output.with_name(f".{output.name}.tmp-{os.getpid()}")
        with tarfile.open(temporary, "w:gz") as archive:
            if "skills" in include:
                manifest["counts"]["skill_files"] = _add_tree(archive, home.skills_dir, "skills", SKIP_IN_LIBRARY)
            if "memory" in include:
                count = _add_tree(archive, home.memories_dir, "memories")
                teams = home.root / "teams"
                if teams.is_dir():
                    for team in sorted(p for p in teams.iterdir() if p.is_dir()):
                        count += _add_tree(archive, team / "memories", f"teams/{team.name}/memories")
                manifest["counts"]["memory_files"] = count
            if cron is not None:
                _add_bytes(archive, "cron/jobs.json", json.dumps(cron, indent=1).encode())
                manifest["counts"]["cron_jobs"] = len(cron)
            if config_text is not None:
                _add_bytes(archive, "config.toml", config_text.encode())
            _add_bytes(archive, "profile.json", json.dumps(manifest, indent=1).encode())
        os.replace(temporary, output)

    await asyncio.to_thread(work)
    return manifest


# ---------------------------------------------------------------------------------- import


def _fingerprint(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return parse(text).document.fingerprint()
    except SkillFormatError:
        return None


def _history_fingerprints(library_root: Path, name: str) -> set[str]:
    folder = library_root / HISTORY_DIR / name
    found: set[str] = set()
    if folder.is_dir():
        for path in folder.glob("*.json"):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if entry.get("file") == SKILL_FILE:
                for side in ("before", "after"):
                    fp = _fingerprint(entry.get(side))
                    if fp:
                        found.add(fp)
    return found


def _skill_folders(root: Path) -> dict[str, tuple[str, Path]]:
    found: dict[str, tuple[str, Path]] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.glob("*/*/" + SKILL_FILE)) + sorted(root.glob("*/" + SKILL_FILE)):
        rel = path.parent.relative_to(root).parts
        if any(part.startswith(".") for part in rel):
            continue
        category = rel[0] if len(rel) == 2 else ""
        found.setdefault(path.parent.name, (category, path.parent))
    return found


def _copy_skill(source: Path, target: Path) -> None:
    staging = target.with_name(f".{target.name}.import-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(source, staging, symlinks=False)
    if target.exists():
        aside = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, aside)
        os.rename(staging, target)
        shutil.rmtree(aside)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, target)


def _replace_history(source_root: Path, target_root: Path, name: str) -> None:
    source = source_root / HISTORY_DIR / name
    if not source.is_dir():
        return
    target = safe_join(target_root, HISTORY_DIR, name)
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target)


def _import_skills(unpacked: Path, home: Home, replace: bool, force: bool, confirm: Confirm | None,
                   report: ImportReport) -> None:
    source_root = unpacked / "skills"
    target_root = home.skills_dir
    target_root.mkdir(parents=True, exist_ok=True)
    local = _skill_folders(target_root)
    imported_lock = LockFile.load(source_root / LOCK_FILE) if (source_root / LOCK_FILE).exists() else None
    local_lock = LockFile.load(target_root / LOCK_FILE)
    lock_changed = False
    for name, (category, folder) in sorted(_skill_folders(source_root).items()):
        if name_problems(name) or (category and name_problems(category, "category")):
            report.refused.append(f"{name}: not a valid skill or category name")
            continue
        verdict = scan_folder(folder, name)
        if verdict.verdict == "dangerous" and not force:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            quarantine = safe_join(target_root, ".quarantine", f"{name}-{stamp}-profile")
            quarantine.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(folder, quarantine, dirs_exist_ok=True)
            (quarantine.parent / f"{quarantine.name}.report.json").write_text(
                json.dumps(verdict.to_dict(), indent=2), encoding="utf-8")
            report.refused.append(f"{name}: dangerous ({', '.join(verdict.rules)}); quarantined in {quarantine}")
            continue
        if verdict.verdict == "caution" and not force and not (confirm and confirm(verdict)):
            report.refused.append(f"{name}: caution ({', '.join(verdict.rules)}) not accepted")
            continue
        mine = local.get(name)
        if mine is None:
            target = safe_join(target_root, category or "general", name)
            _copy_skill(folder, target)
            _replace_history(source_root, target_root, name)
            report.added.append(name)
        else:
            local_folder = mine[1]
            if tree_hash(file_hashes(local_folder)) == tree_hash(file_hashes(folder)):
                report.unchanged.append(name)
                continue
            local_fp = _fingerprint((local_folder / SKILL_FILE).read_text(encoding="utf-8"))
            theirs_fp = _fingerprint((folder / SKILL_FILE).read_text(encoding="utf-8"))
            theirs_history = _history_fingerprints(source_root, name)
            mine_history = _history_fingerprints(target_root, name)
            if replace or (local_fp in theirs_history and local_fp != theirs_fp):
                _copy_skill(folder, local_folder)
                _replace_history(source_root, target_root, name)
                report.updated.append(name)
            elif theirs_fp in mine_history:
                report.kept_local.append(name)
                continue
            else:
                report.conflicts.append(f"{name}: changed both here and in the profile; kept the local copy "
                                        "(import with --replace to take the profile's)")
                continue
        if imported_lock is not None and name in imported_lock.entries:
            local_lock.entries[name] = imported_lock.entries[name]
            lock_changed = True
    if lock_changed:
        local_lock.save()


def _merge_memory_file(source: Path, target: Path, replace: bool, report: ImportReport, label: str) -> None:
    theirs = source.read_text(encoding="utf-8")
    if not target.exists() or replace:
        existed = target.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        temporary.write_text(theirs, encoding="utf-8")
        os.replace(temporary, target)
        (report.updated if existed else report.added).append(label)
        return
    mine = target.read_text(encoding="utf-8")
    if mine == theirs:
        report.unchanged.append(label)
        return
    known = set(mine.splitlines())
    extra = [line for line in theirs.splitlines() if line.strip() and line not in known]
    if extra:
        merged = mine.rstrip("\n") + "\n" + "\n".join(extra) + "\n"
        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        temporary.write_text(merged, encoding="utf-8")
        os.replace(temporary, target)
        report.updated.append(f"{label} (+{len(extra)} entries merged)")
    else:
        report.unchanged.append(label)


def _import_memory(unpacked: Path, home: Home, replace: bool, report: ImportReport) -> None:
    pairs: list[tuple[Path, Path, str]] = []
    for source in sorted((unpacked / "memories").rglob("*")) if (unpacked / "memories").is_dir() else []:
        if source.is_file():
            relative = source.relative_to(unpacked / "memories")
            pairs.append((source, safe_join(home.memories_dir, *relative.parts), f"memories/{relative.as_posix()}"))
    teams = unpacked / "teams"
    for source in sorted(teams.rglob("*")) if teams.is_dir() else []:
        relative = source.relative_to(teams)
        if source.is_file() and len(relative.parts) >= 3 and relative.parts[1] == "memories":
            pairs.append((source, safe_join(home.root, "teams", *relative.parts), f"teams/{relative.as_posix()}"))
    for source, target, label in pairs:
        _merge_memory_file(source, target, replace, report, label)


async def _import_cron(unpacked: Path, home: Home, replace: bool, report: ImportReport, url: URL) -> None:
    path = unpacked / "cron" / "jobs.json"
    if not path.exists():
        return
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ProfileError(f"cron/jobs.json in the profile is not valid JSON: {exc}") from None
    if not isinstance(rows, list):
        raise ProfileError("cron/jobs.json in the profile is not a list of jobs")
    from gateway.store import RowRejectedError, StoreUnavailableError, open_store
    from gateway.store.cron import JOB_COLUMNS

    try:
        store = await open_store(url)
    except StoreUnavailableError as exc:
        raise ProfileError(str(exc)) from None
    try:
        for row in rows:
            if not isinstance(row, dict) or not row.get("id"):
                report.notes.append("cron: a job without an id in the profile was skipped")
                continue
            values = {k: v for k, v in row.items() if k in JOB_COLUMNS}
            label = f"cron job {row.get('name') or row.get('id')} ({row.get('id')})"
            existing = await store.cron_job_row(str(values["id"]))
            if existing is not None:
                same = all(existing.get(k) == v for k, v in values.items() if k != "updated_at")
                if same:
                    report.unchanged.append(label)
                    continue
                if not replace:
                    report.conflicts.append(f"{label}: differs from the local job; kept the local one")
                    continue
            try:
                await store.cron_job_put(values)   # the profile's job wins; a replaced job keeps its runs
            except RowRejectedError as exc:
                report.notes.append(f"{label}: not imported, the profile's row is incomplete ({str(exc)[:200]})")
                continue
            (report.updated if existing is not None else report.added).append(label)
    finally:
        await store.close()


def _import_config(unpacked: Path, home: Home, replace: bool, report: ImportReport) -> None:
    source = unpacked / "config.toml"
    if not source.exists():
        return
    text = source.read_text(encoding="utf-8")
    if not home.config_file.exists():
        home.config_file.write_text(text, encoding="utf-8")
        report.added.append("config.toml")
    elif home.config_file.read_text(encoding="utf-8") == text:
        report.unchanged.append("config.toml")
    elif replace:
        shutil.copyfile(home.config_file, home.root / "config.toml.bak")
        home.config_file.write_text(text, encoding="utf-8")
        report.updated.append("config.toml (previous kept as config.toml.bak)")
    else:
        (home.root / "config.imported.toml").write_text(text, encoding="utf-8")
        report.conflicts.append("config.toml: differs; the profile's is in config.imported.toml for review")


async def import_profile(home: Home, archive: Path, *, replace: bool = False, force: bool = False,
                         confirm: Confirm | None = None, store_url: URL | None = None) -> ImportReport:
    """Restore a profile into `home` (created if needed); what happened, item by item. Cron jobs
    go into `store_url`, by default the home's store as its config says before the import."""
    if not archive.is_file():
        raise ProfileError(f"{archive}: no such file")
    home.ensure()
    url = store_url or await asyncio.to_thread(home_store_url, home)
    report = ImportReport()
    with tempfile.TemporaryDirectory(prefix="hermes-profile-", dir=home.root) as temporary:
        unpacked = Path(temporary)
        try:
            data = await asyncio.to_thread(archive.read_bytes)
            await asyncio.to_thread(unpack, data, unpacked, Budget(ARCHIVE_LIMITS, str(archive)))
        except HubError as exc:
            raise ProfileError(str(exc)) from exc
        try:
            manifest = json.loads((unpacked / "profile.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProfileError(f"{archive}: not a Hermes profile (no readable profile.json)") from exc
        if manifest.get("format") != FORMAT or int(manifest.get("version", 0)) > VERSION:
            raise ProfileError(f"{archive}: unsupported profile format {manifest.get('format')!r} "
                               f"version {manifest.get('version')!r}")
        await asyncio.to_thread(_import_skills, unpacked, home, replace, force, confirm, report)
        await asyncio.to_thread(_import_memory, unpacked, home, replace, report)
        await _import_cron(unpacked, home, replace, report, url)
        await asyncio.to_thread(_import_config, unpacked, home, replace, report)
        report.notes.extend(manifest.get("notes", []))
        report.env_names = list(manifest.get("env_names") or [])
        if report.env_names:
            environ = {**read_secrets_file(home.secrets_file), **{k: v for k, v in os.environ.items() if v}}
            missing = [n for n in report.env_names if not environ.get(n)]
            report.notes.append("the imported config and cron jobs refer to these secrets by ${NAME}: "
                                + ", ".join(report.env_names))
            if missing:
                report.notes.append("not set here yet (export them, or put NAME=value lines in "
                                    f"{home.secrets_file}): " + ", ".join(missing))
        elif manifest.get("removed_secrets"):   # a profile written by an older Hermes
            report.notes.append("secrets were not exported; set them again here: "
                                + ", ".join(manifest["removed_secrets"]))
    return report
