"""Backups of a home: a consistent snapshot of the state database plus the home's files, as tar.gz.

`create_backup` copies the database with SQLite's online backup API (`sqlite3.Connection.backup`,
in a worker thread): the copy is one consistent snapshot even while the gateway writes (in WAL
mode a reader never blocks the writer). It adds `config.toml` as it is (literal secrets in it
included: a backup restores the installation exactly, unlike `hermes profile export`), `skills/`,
`memories/` and, only when asked, `secrets.env`, plus a `manifest.json` (`config_as_is`). The
archive is created mode 0600 (`mkstemp`) and renamed into place, so it is never readable by others,
not even while it is written; the CLI says what it contains.

`restore_backup` validates every member before it writes anything (regular files and folders
only, relative paths inside the allowed top-level names, no links or devices), refuses a
database whose schema is newer than this Hermes knows, and refuses a home whose gateway is
running unless forced. What it replaces is moved to `HERMES_HOME/pre-restore-<time>/` first, so
a restore never destroys anything.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath

from gateway.home import Home
from gateway.pidfile import running_gateway_pid
from gateway.store.legacy import last_legacy_version

FORMAT = 1
MANIFEST = "manifest.json"
DB_MEMBER = "state.db"
FILE_MEMBERS = ("config.toml",)
SECRET_MEMBERS = ("secrets.env",)
DIR_MEMBERS = ("skills", "memories")
ALLOWED_TOP = {MANIFEST, DB_MEMBER, *FILE_MEMBERS, *SECRET_MEMBERS, *DIR_MEMBERS}
SKIPPED_SUFFIXES = (".lock",)
CONFIG_AS_IS_NOTE = ("the archive holds config.toml as it is (any literal secrets in it included) and the "
                     "transcripts in state.db; it is readable by you only (mode 0600): keep it private "
                     "(`hermes profile export` is the one to share)")


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why."""


@dataclass
class BackupReport:
    path: Path
    schema_version: int
    files: int
    size: int
    includes_secrets: bool


@dataclass
class RestoreReport:
    schema_version: int
    files: int
    moved_aside: Path | None
    restored: list[str] = field(default_factory=list)


def known_schema_version() -> int:
    return last_legacy_version()


def _version() -> str:
    try:
        return metadata.version("hermes-gateway")
    except metadata.PackageNotFoundError:
        return "unknown"


def snapshot_database(source: Path, target: Path) -> int:
    """Copy `source` to `target` with the online backup API; returns the schema version (user_version)."""
    if not source.exists():
        raise BackupError(f"{source}: no state database to back up")
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one consistent read transaction
            version = int(dst.execute("PRAGMA user_version").fetchone()[0])
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    return version


def _home_files(home: Home, include_secrets: bool) -> list[tuple[Path, str]]:
    """(path on disk, name in the archive) for the home's files; regular files only, links skipped."""
    found: list[tuple[Path, str]] = []
    for name in FILE_MEMBERS + (SECRET_MEMBERS if include_secrets else ()):
        path = home.root / name
        if path.is_file() and not path.is_symlink():
            found.append((path, name))
    for name in DIR_MEMBERS:
        top = home.root / name
        if not top.is_dir() or top.is_symlink():
            continue
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
            for file_name in sorted(files):
                path = Path(root) / file_name
                if path.is_symlink() or not path.is_file() or file_name.endswith(SKIPPED_SUFFIXES):
                    continue
                found.append((path, path.relative_to(home.root).as_posix()))
    return found


def _create(home: Home, db_path: Path, output: Path, include_secrets: bool) -> BackupReport:
    output = output.expanduser().resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hermes-backup-") as scratch:
        snapshot = Path(scratch) / DB_MEMBER
        version = snapshot_database(db_path, snapshot)
        files = _home_files(home, include_secrets)
        manifest = {
            "format": FORMAT, "hermes_version": _version(), "schema_version": version,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "includes_secrets": include_secrets, "config_as_is": True, "files": [DB_MEMBER] + [name for _, name in files],
        }
        fd, temp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                data = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(data))
                tar.add(snapshot, arcname=DB_MEMBER, recursive=False)
                for path, name in files:
                    try:
                        tar.add(path, arcname=name, recursive=False)
                    except FileNotFoundError:  # deleted while we walked (a skill removed): skip it
                        continue
            os.chmod(temp_name, 0o600)
            os.replace(temp_name, output)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
    return BackupReport(output, version, len(files) + 1, output.stat().st_size, include_secrets)


async def create_backup(home: Home, db_path: Path, output: Path, *, include_secrets: bool = False) -> BackupReport:
    """Write a backup of `home` (database at `db_path`) to `output`; safe while the gateway runs."""
    return await asyncio.to_thread(_create, home, db_path, output, include_secrets)


def _check_member(member: tarfile.TarInfo) -> str:
    """The member's safe relative name, or BackupError naming what is wrong with it."""
    name = member.name
    path = PurePosixPath(name)
    if not name or path.is_absolute() or name.startswith("/") or "\\" in name:
        raise BackupError(f"archive member {name!r}: absolute or odd path refused")
    if any(part in ("..", "") for part in path.parts) or path.parts[0] == ".":
        raise BackupError(f"archive member {name!r}: path leaves the home, refused")
    if path.parts[0] not in ALLOWED_TOP:
        raise BackupError(f"archive member {name!r}: not part of a Hermes backup")
    if not (member.isfile() or member.isdir()):
        raise BackupError(f"archive member {name!r}: only regular files and folders are restored")
    if member.isdir() and len(path.parts) == 1 and path.parts[0] not in DIR_MEMBERS:
        raise BackupError(f"archive member {name!r}: expected a file")
    return path.as_posix()


def read_manifest(tar: tarfile.TarFile) -> dict:
    try:
        member = tar.getmember(MANIFEST)
    except KeyError:
        raise BackupError("not a Hermes backup: manifest.json is missing") from None
    handle = tar.extractfile(member)
    if handle is None:
        raise BackupError("manifest.json is not a file")
    try:
        manifest = json.loads(handle.read(1_000_000))
    except ValueError as exc:
        raise BackupError(f"manifest.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"unsupported backup format {manifest.get('format') if isinstance(manifest, dict) else '?'}"
                          f" (this Hermes reads format {FORMAT})")
    return manifest


def restore_backup(archive: Path, home: Home, db_path: Path, *, force: bool = False) -> RestoreReport:
    """Restore `archive` into `home` (database to `db_path`). Blocking; call from a thread in async code."""
    if not archive.is_file():
        raise BackupError(f"{archive}: no such backup file")
    home.ensure()
    pid = running_gateway_pid(home.root)
    if pid is not None and not force:
        raise BackupError(f"a gateway is running on {home.root} (pid {pid if pid > 0 else '?'}): stop it first, "
                          "or pass --force to restore under it")
    try:
        tar = tarfile.open(archive, mode="r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{archive}: not a readable tar.gz backup: {exc}") from None
    with tar, tempfile.TemporaryDirectory(prefix="hermes-restore-", dir=home.root) as scratch:
        members = tar.getmembers()
        names = [_check_member(m) for m in members]
        if len(set(names)) != len(names):
            raise BackupError("archive has duplicate members")
        read_manifest(tar)
        if DB_MEMBER not in names:
            raise BackupError("archive has no state.db")
        staged = Path(scratch) / "home"
        staged.mkdir()
        files = 0
        for member, name in zip(members, names):
            target = staged.joinpath(*PurePosixPath(name).parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            os.chmod(target, 0o600 if name in (DB_MEMBER, *SECRET_MEMBERS) else 0o644)
            files += 1
        version = _check_database(staged / DB_MEMBER)
        moved = _swap_in(staged, home, db_path)
    return RestoreReport(version, files, moved, sorted({PurePosixPath(n).parts[0] for n in names} - {MANIFEST}))


def _check_database(path: Path) -> int:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            status = connection.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"state.db in the archive is not a usable SQLite database: {exc}") from None
    known = known_schema_version()
    if version > known:
        raise BackupError(f"the backup's database has schema version {version}, newer than this Hermes knows "
                          f"({known}): upgrade hermes-gateway before restoring it")
    if status != "ok":
        raise BackupError(f"state.db in the archive fails its integrity check: {status}")
    return version


def _swap_in(staged: Path, home: Home, db_path: Path) -> Path | None:
    """Move what the backup replaces into pre-restore-<time>/, then move the staged files in."""
    home.ensure()
    aside = home.root / time.strftime("pre-restore-%Y%m%d-%H%M%S")
    suffix = 1
    while aside.exists():
        aside = aside.with_name(f"{aside.name.split('.')[0]}.{suffix}")
        suffix += 1
    moved_any = False

    def move_aside(path: Path, name: str) -> None:
        nonlocal moved_any
        if path.exists() or path.is_symlink():
            aside.mkdir(mode=0o700, exist_ok=True)
            shutil.move(str(path), str(aside / name))
            moved_any = True

    db_path.parent.mkdir(parents=True, exist_ok=True)
    for sidecar in ("-wal", "-shm"):
        move_aside(db_path.with_name(db_path.name + sidecar), DB_MEMBER + sidecar)
    move_aside(db_path, DB_MEMBER)
    shutil.move(str(staged / DB_MEMBER), str(db_path))
    for entry in sorted(staged.iterdir()):
        if entry.name in (DB_MEMBER, MANIFEST):
            continue
        target = home.root / entry.name
        move_aside(target, entry.name)
        shutil.move(str(entry), str(target))
    return aside if moved_any else None
