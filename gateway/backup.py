"""Backups of a home: a consistent snapshot of the store plus the home's files, as tar.gz.

`create_backup` writes format 2: the store's every table read in one consistent transaction
through `gateway.store.snapshot` (`store/revision`, `store/tables.json` with each table's row
count and checksum, one `store/<table>.jsonl` per table), on SQLite or PostgreSQL alike, without
pg_dump; the gateway may keep writing meanwhile. It adds `config.toml` as it is (literal secrets
in it included: a backup restores the installation exactly, unlike `hermes profile export`),
`skills/`, `memories/` and, only when asked, `secrets.env`, plus a `manifest.json`
(`config_as_is`). The archive is created mode 0600 (`mkstemp`) and renamed into place, so it is
never readable by others, not even while it is written; the CLI says what it contains.

`restore_backup` validates every member before it writes anything (regular files and folders
only, relative paths inside the allowed top-level names, no links or devices), checks the
snapshot against its checksums, refuses a store revision (or a format-1 `state.db` schema
version) newer than this Hermes knows, and refuses a home whose gateway is running unless
forced. It restores into the home's store, whichever engine that is: the snapshot is loaded into
a scratch SQLite file and brought to this code's revision there, then that file replaces a SQLite
store, or its rows replace a PostgreSQL store's in one transaction, verified table by table.
Format-1 archives (`state.db`, made by SQLite's online backup API) restore the same way. What
a restore replaces is moved to `HERMES_HOME/pre-restore-<time>/` first (a PostgreSQL store's
rows as a `store/` snapshot), so a restore never destroys anything.
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
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from gateway.home import Home
from gateway.pidfile import running_gateway_pid
from gateway.store.legacy import LegacyFileError, last_legacy_version, read_legacy_file
from gateway.store.store import as_url

if TYPE_CHECKING:
    from gateway.store.database import URL

FORMAT = 2
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"
DB_MEMBER = "state.db"          # format 1: the SQLite file
STORE_MEMBER = "store"          # format 2: the snapshot folder
FILE_MEMBERS = ("config.toml",)
SECRET_MEMBERS = ("secrets.env",)
DIR_MEMBERS = ("skills", "memories")
ALLOWED_TOP = {MANIFEST, DB_MEMBER, STORE_MEMBER, *FILE_MEMBERS, *SECRET_MEMBERS, *DIR_MEMBERS}
SKIPPED_SUFFIXES = (".lock",)
CONFIG_AS_IS_NOTE = ("the archive holds config.toml as it is (any literal secrets in it included) and the "
                     "transcripts of the store; it is readable by you only (mode 0600): keep it private "
                     "(`hermes profile export` is the one to share)")


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why."""


@dataclass
class BackupReport:
    path: Path
    revision: str
    files: int
    size: int
    includes_secrets: bool
    rows: int = 0


@dataclass
class RestoreReport:
    revision: str
    files: int
    moved_aside: Path | None
    restored: list[str] = field(default_factory=list)
    rows: int = 0


def known_schema_version() -> int:
    """The newest format-1 `state.db` schema version (PRAGMA user_version) this Hermes reads."""
    return last_legacy_version()


def _version() -> str:
    try:
        return metadata.version("hermes-gateway")
    except metadata.PackageNotFoundError:
        return "unknown"


def _sqlite_url(path: Path) -> URL:
    return as_url(path)


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


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


def _write_archive(output: Path, manifest: dict, snapshot_files: list[Path], snapshot_root: Path,
                   files: list[tuple[Path, str]]) -> None:
    fd, temp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
            for path in snapshot_files:
                tar.add(path, arcname=f"{STORE_MEMBER}/{path.relative_to(snapshot_root).as_posix()}",
                        recursive=False)
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


async def create_backup(home: Home, store_url: URL, output: Path, *, include_secrets: bool = False) -> BackupReport:
    """Write a backup of `home` (its store at `store_url`, either engine) to `output`; safe while
    the gateway runs."""
    from gateway.store import StoreUnavailableError
    from gateway.store.database import check_reachable, create_engine_for, display_url
    from gateway.store.snapshot import SnapshotError, read_snapshot, open_verbatim, write_snapshot

    if _is_sqlite(store_url) and not Path(store_url.database or "").exists():
        raise BackupError(f"{store_url.database}: no state database to back up")
    output = output.expanduser().resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    if not _is_sqlite(store_url):
        engine = create_engine_for(store_url, pool_size=1)
        try:
            await check_reachable(engine, store_url)
        except StoreUnavailableError as exc:
            raise BackupError(str(exc)) from None
        finally:
            await engine.dispose()
    db = open_verbatim(store_url)
    try:
        snapshot = await read_snapshot(db)
    except (SnapshotError, OSError) as exc:
        raise BackupError(f"{display_url(store_url)}: cannot read the store: {exc}") from None
    finally:
        await db.close()
    with tempfile.TemporaryDirectory(prefix="hermes-backup-") as scratch:
        folder = Path(scratch) / STORE_MEMBER
        written = await asyncio.to_thread(write_snapshot, snapshot, folder)
        files = await asyncio.to_thread(_home_files, home, include_secrets)
        rows = sum(len(t.rows) for t in snapshot.tables)
        manifest = {
            "format": FORMAT, "hermes_version": _version(), "store_revision": snapshot.revision or "",
            "engine": store_url.get_backend_name(), "rows": rows,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "includes_secrets": include_secrets, "config_as_is": True,
            "files": [f"{STORE_MEMBER}/{p.name}" for p in written] + [name for _, name in files],
        }
        await asyncio.to_thread(_write_archive, output, manifest, written, folder, files)
    return BackupReport(output, snapshot.revision or "", len(files) + len(written), output.stat().st_size,
                        include_secrets, rows)


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
    if path.parts[0] == STORE_MEMBER and (len(path.parts) > 2 or (len(path.parts) == 2 and member.isdir())):
        raise BackupError(f"archive member {name!r}: the store snapshot holds files only")
    if member.isdir() and len(path.parts) == 1 and path.parts[0] not in (*DIR_MEMBERS, STORE_MEMBER):
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
    if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS:
        raise BackupError(f"unsupported backup format {manifest.get('format') if isinstance(manifest, dict) else '?'}"
                          f" (this Hermes reads formats {', '.join(map(str, READABLE_FORMATS))})")
    return manifest


def _unpack(archive: Path, home: Home, staged: Path) -> tuple[dict, list[str], int]:
    """Check and extract every member into `staged`: (manifest, member names, files written)."""
    try:
        tar = tarfile.open(archive, mode="r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{archive}: not a readable tar.gz backup: {exc}") from None
    with tar:
        members = tar.getmembers()
        names = [_check_member(m) for m in members]
        if len(set(names)) != len(names):
            raise BackupError("archive has duplicate members")
        manifest = read_manifest(tar)
        if manifest["format"] == 1 and DB_MEMBER not in names:
            raise BackupError("archive has no state.db")
        if manifest["format"] == 2 and f"{STORE_MEMBER}/tables.json" not in names:
            raise BackupError("archive has no store snapshot (store/tables.json)")
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
            private = name in (DB_MEMBER, *SECRET_MEMBERS) or name.startswith(f"{STORE_MEMBER}/")
            os.chmod(target, 0o600 if private else 0o644)
            files += 1
    return manifest, names, files


def _check_database(path: Path) -> int:
    """A format-1 state.db: usable, and a schema version this Hermes knows."""
    try:
        version, status = read_legacy_file(path)
    except LegacyFileError as exc:
        raise BackupError(f"state.db in the archive is not a usable SQLite database: {exc}") from None
    known = known_schema_version()
    if version > known:
        raise BackupError(f"the backup's database has schema version {version}, newer than this Hermes knows "
                          f"({known}): upgrade hermes-gateway before restoring it")
    if status != "ok":
        raise BackupError(f"state.db in the archive fails its integrity check: {status}")
    return version


async def _scratch_from_snapshot(folder: Path, scratch: Path) -> tuple[Path, str]:
    """A SQLite file holding the format-2 snapshot in `folder`, at this code's revision."""
    from gateway.store.snapshot import SnapshotError, load_snapshot, open_verbatim, read_snapshot_files
    from gateway.store.upgrade import is_known_revision, upgrade_database

    try:
        snapshot = await asyncio.to_thread(read_snapshot_files, folder)
    except SnapshotError as exc:
        raise BackupError(f"the backup's store snapshot is unusable: {exc}") from None
    if not is_known_revision(snapshot.revision):
        raise BackupError(f"the backup's store is at revision {snapshot.revision}, newer than this Hermes knows: "
                          "upgrade hermes-gateway before restoring it")
    url = _sqlite_url(scratch)
    if snapshot.revision is not None:
        await upgrade_database(url, snapshot.revision)
    db = open_verbatim(url)
    try:
        await load_snapshot(db, snapshot)
    except SnapshotError as exc:
        raise BackupError(f"the backup's store snapshot does not load: {exc}") from None
    finally:
        await db.close()
    status = await upgrade_database(url)
    return scratch, status.current or ""


async def _into_server(scratch: Path, url: URL, aside: Path) -> int:
    """Replace the rows of the server store at `url` by the scratch file's, in one transaction and
    verified; what it held (if anything) is first written to `aside/store/`. Returns the rows loaded."""
    from gateway.store.copy import load_into
    from gateway.store.database import display_url
    from gateway.store.snapshot import SnapshotError, dump_to_folder, open_verbatim, read_snapshot, row_counts
    from gateway.store.upgrade import upgrade_database

    await upgrade_database(url)
    source = open_verbatim(_sqlite_url(scratch))
    try:
        snapshot = await read_snapshot(source)
    finally:
        await source.close()
    target = open_verbatim(url)
    try:
        held = await row_counts(target)
    finally:
        await target.close()
    if held:
        aside.mkdir(mode=0o700, parents=True, exist_ok=True)
        await dump_to_folder(url, aside / STORE_MEMBER)
    try:
        checks = await load_into(snapshot, url, replace=True)
    except SnapshotError as exc:
        raise BackupError(f"{display_url(url)}: the restore did not load, the store is unchanged: {exc}") from None
    bad = [c.name for c in checks if not c.ok]
    if bad:
        raise BackupError(f"{display_url(url)}: restored tables differ from the backup: {', '.join(bad)}")
    return sum(len(t.rows) for t in snapshot.tables)


def _aside_path(home: Home) -> Path:
    aside = home.root / time.strftime("pre-restore-%Y%m%d-%H%M%S")
    suffix = 1
    while aside.exists():
        aside = aside.with_name(f"{aside.name.split('.')[0]}.{suffix}")
        suffix += 1
    return aside


async def restore_backup(archive: Path, home: Home, store_url: URL, *, force: bool = False) -> RestoreReport:
    """Restore `archive` (format 1 or 2) into `home` and its store at `store_url` (either engine)."""
    from gateway.store import MigrationError, SchemaTooNewError, StoreUnavailableError
    from gateway.store.upgrade import upgrade_database

    if not archive.is_file():
        raise BackupError(f"{archive}: no such backup file")
    home.ensure()
    pid = running_gateway_pid(home.root)
    if pid is not None and not force:
        raise BackupError(f"a gateway is running on {home.root} (pid {pid if pid > 0 else '?'}): stop it first, "
                          "or pass --force to restore under it")
    with tempfile.TemporaryDirectory(prefix="hermes-restore-", dir=home.root) as scratch_dir:
        staged = Path(scratch_dir) / "home"
        manifest, names, files = await asyncio.to_thread(_unpack, archive, home, staged)
        aside = _aside_path(home)
        rows = 0
        try:
            if manifest["format"] == 1:
                database = staged / DB_MEMBER
                await asyncio.to_thread(_check_database, database)
                revision = f"schema version {int(manifest.get('schema_version') or 0)}"
                if not _is_sqlite(store_url):
                    revision = (await upgrade_database(_sqlite_url(database))).current or ""
            else:
                database, revision = await _scratch_from_snapshot(staged / STORE_MEMBER,
                                                                  Path(scratch_dir) / "restored.db")
            if not _is_sqlite(store_url):
                rows = await _into_server(database, store_url, aside)
                database.unlink()
        except (SchemaTooNewError, MigrationError, StoreUnavailableError) as exc:
            raise BackupError(str(exc)) from None
        db_path = Path(store_url.database) if _is_sqlite(store_url) and store_url.database else None
        moved = await asyncio.to_thread(_swap_in, staged, home, aside, database if db_path else None, db_path)
    restored = sorted({PurePosixPath(n).parts[0] for n in names} - {MANIFEST, DB_MEMBER, STORE_MEMBER})
    return RestoreReport(revision, files, moved, ["store", *restored], rows)


def _swap_in(staged: Path, home: Home, aside: Path, database: Path | None, db_path: Path | None) -> Path | None:
    """Move what the backup replaces into `aside`, then move the staged files (and the SQLite
    `database`, to `db_path`) in."""
    home.ensure()
    moved_any = aside.exists()

    def move_aside(path: Path, name: str) -> None:
        nonlocal moved_any
        if path.exists() or path.is_symlink():
            aside.mkdir(mode=0o700, exist_ok=True)
            shutil.move(str(path), str(aside / name))
            moved_any = True

    if database is not None and db_path is not None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        for sidecar in ("-wal", "-shm"):
            move_aside(db_path.with_name(db_path.name + sidecar), DB_MEMBER + sidecar)
        move_aside(db_path, DB_MEMBER)
        shutil.move(str(database), str(db_path))
        os.chmod(db_path, 0o600)
        for sidecar in ("-wal", "-shm"):
            leftover = database.with_name(database.name + sidecar)
            if leftover.exists():
                shutil.move(str(leftover), str(db_path.with_name(db_path.name + sidecar)))
    for entry in sorted(staged.iterdir()):
        if entry.name in (DB_MEMBER, MANIFEST, STORE_MEMBER):
            continue
        target = home.root / entry.name
        move_aside(target, entry.name)
        shutil.move(str(entry), str(target))
    return aside if moved_any else None
