"""A portable snapshot of the store: every table's rows, read in one consistent transaction, on
either engine, plus the Alembic revision they were read at.

On disk (a backup's `store/` folder) a snapshot is `revision` (one line), `tables.json` (the
tables in load order with their row counts and checksums) and one `<table>.jsonl` per table, one
JSON object per row (column -> value; ASCII escapes, so a lone surrogate survives). A checksum is
the SHA-256 of the table's rows as canonical JSON, sorted, so it does not depend on the engine's
order of rows or on how an engine spells a number (a SQLite REAL column holding 5 reads as 5.0,
as PostgreSQL's double precision does).

Rows are copied verbatim: what was stored was redacted when it was first written, so the
databases here are opened without a redactor (a cron job's webhook URL kept with `KeepSecret`
must not be masked by a copy). Nothing else in the gateway opens a store that way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.redact import Redactor
from gateway.store.database import Database, create_engine_for

VERBATIM = Redactor(env_values=(), patterns=())
REVISION_FILE = "revision"
TABLES_FILE = "tables.json"
SKIPPED_TABLES = {"alembic_version"}
INSERT_BATCH = 500


class SnapshotError(RuntimeError):
    """A snapshot that cannot be read or loaded; the message names the file, line or table."""


@dataclass(frozen=True)
class TableRows:
    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def digest(self) -> TableDigest:
        return TableDigest(self.name, len(self.rows), checksum(self.columns, self.rows))


@dataclass(frozen=True)
class TableDigest:
    name: str
    rows: int
    checksum: str


@dataclass(frozen=True)
class Snapshot:
    revision: str | None
    tables: list[TableRows]

    def digests(self) -> dict[str, TableDigest]:
        return {t.name: t.digest() for t in self.tables}


def open_verbatim(url: URL, *, pool_size: int = 2) -> Database:
    """A Database on `url` that writes values as given (see the module docstring); SQLite with
    foreign keys off, as a copy loads tables one after another."""
    return Database(create_engine_for(url, foreign_keys=False, pool_size=pool_size), url, VERBATIM)


def _normalizer(column_type: sa.types.TypeEngine[Any]):  # type: ignore[no-untyped-def]
    if isinstance(column_type, (sa.Float, sa.Numeric)) and not isinstance(column_type, sa.Integer):
        return lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
    if isinstance(column_type, sa.Integer):
        return lambda v: int(v) if isinstance(v, float) and v.is_integer() else (int(v) if isinstance(v, bool) else v)
    return lambda v: v


def canonical_row(columns: Sequence[str], row: Sequence[Any]) -> str:
    return json.dumps(dict(zip(columns, row)), sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def checksum(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    digest = hashlib.sha256()
    for line in sorted(canonical_row(columns, row) for row in rows):
        digest.update(line.encode("ascii"))
        digest.update(b"\n")
    return digest.hexdigest()


async def reflect_tables(connection: AsyncConnection) -> list[sa.Table]:
    """The database's tables in load order (parents before children), Alembic's own left out."""
    def reflect(sync: sa.Connection) -> list[sa.Table]:
        metadata = sa.MetaData()
        metadata.reflect(sync)
        return [t for t in metadata.sorted_tables if t.name not in SKIPPED_TABLES]
    return await connection.run_sync(reflect)


async def _revision(connection: AsyncConnection) -> str | None:
    def read(sync: sa.Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext
        return MigrationContext.configure(sync).get_current_revision()
    return await connection.run_sync(read)


async def read_snapshot(db: Database) -> Snapshot:
    """Every table's rows and the revision, all read in one transaction (REPEATABLE READ on
    PostgreSQL; one read transaction of the WAL on SQLite), so the snapshot is consistent while
    the gateway keeps writing."""
    async with db.engine.connect() as connection:
        if db.is_postgresql:
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            revision = await _revision(connection)
            tables = []
            for table in await reflect_tables(connection):
                normal = [_normalizer(c.type) for c in table.columns]
                key = list(table.primary_key.columns) or list(table.columns)
                result = await connection.execute(sa.select(table).order_by(*key))
                rows = [tuple(f(v) for f, v in zip(normal, row)) for row in result.all()]
                tables.append(TableRows(table.name, tuple(table.columns.keys()), rows))
    return Snapshot(revision, tables)


async def table_rows(db: Database, name: str) -> list[dict[str, Any]] | None:
    """The rows of one table as dicts, in key order; None when the database has no such table."""
    async with db.reading() as connection:
        tables = {t.name: t for t in await reflect_tables(connection)}
        table = tables.get(name)
        if table is None:
            return None
        key = list(table.primary_key.columns) or list(table.columns)
        return [dict(row._mapping) for row in (await connection.execute(sa.select(table).order_by(*key))).all()]


async def digests(db: Database) -> dict[str, TableDigest]:
    return (await read_snapshot(db)).digests()


async def row_counts(db: Database) -> dict[str, int]:
    """Rows per table (tables with none left out)."""
    counts: dict[str, int] = {}
    async with db.reading() as connection:
        for table in await reflect_tables(connection):
            count = int((await connection.execute(sa.select(sa.func.count()).select_from(table))).scalar() or 0)
            if count:
                counts[table.name] = count
    return counts


async def load_snapshot(db: Database, snapshot: Snapshot, *, replace: bool = False) -> None:
    """Insert every table's rows into `db` (at the snapshot's revision) in one transaction; with
    `replace`, what the tables held is deleted first. PostgreSQL's id sequences are moved past the
    loaded ids, so the next insert does not collide."""
    async with db.transaction() as connection:
        tables = {t.name: t for t in await reflect_tables(connection)}
        missing = [t.name for t in snapshot.tables if t.name not in tables]
        if missing:
            raise SnapshotError(f"the target database has no table {', '.join(missing)} "
                                f"(is it at revision {snapshot.revision}?)")
        if replace:
            for table in reversed(list(tables.values())):
                await connection.execute(table.delete())
        by_name = {t.name: t for t in snapshot.tables}
        for name, table in tables.items():
            data = by_name.get(name)
            if data is None or not data.rows:
                continue
            unknown = [c for c in data.columns if c not in table.columns]
            if unknown:
                raise SnapshotError(f"table {name}: the target has no column {', '.join(unknown)}")
            for start in range(0, len(data.rows), INSERT_BATCH):
                batch = [dict(zip(data.columns, row)) for row in data.rows[start:start + INSERT_BATCH]]
                try:
                    await connection.execute(table.insert(), batch)
                except sa.exc.DBAPIError as exc:
                    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                    raise SnapshotError(f"table {name}, rows {start + 1}-{start + len(batch)}: {reason}") from None
            if db.is_postgresql:
                await _advance_sequences(connection, table)


async def _advance_sequences(connection: AsyncConnection, table: sa.Table) -> None:
    for column in table.primary_key.columns:
        if isinstance(column.type, sa.Integer):
            await connection.execute(sa.select(sa.func.setval(
                sa.func.pg_get_serial_sequence(table.name, column.name),
                sa.select(sa.func.coalesce(sa.func.max(column), 0) + 1).scalar_subquery(), False)))


# -- on disk ------------------------------------------------------------------------------------


def write_snapshot(snapshot: Snapshot, folder: Path) -> list[Path]:
    """Write `snapshot` into `folder` (blocking; run it in a thread); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / REVISION_FILE, folder / TABLES_FILE]
    (folder / REVISION_FILE).write_text((snapshot.revision or "") + "\n", encoding="ascii")
    index = [{"name": t.name, "columns": list(t.columns), "rows": d.rows, "checksum": d.checksum}
             for t, d in ((t, t.digest()) for t in snapshot.tables)]
    (folder / TABLES_FILE).write_text(json.dumps(index, indent=1), encoding="ascii")
    for table in snapshot.tables:
        path = folder / f"{table.name}.jsonl"
        with open(path, "w", encoding="ascii") as out:
            for row in table.rows:
                out.write(json.dumps(dict(zip(table.columns, row)), ensure_ascii=True))
                out.write("\n")
        written.append(path)
    return written


def read_snapshot_files(folder: Path) -> Snapshot:
    """The snapshot in `folder`, checked against its `tables.json` (counts and checksums); blocking."""
    try:
        revision = (folder / REVISION_FILE).read_text(encoding="ascii").strip() or None
        index = json.loads((folder / TABLES_FILE).read_text(encoding="ascii"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{folder.name}/: not a readable store snapshot ({exc})") from None
    if not isinstance(index, list):
        raise SnapshotError(f"{folder.name}/{TABLES_FILE}: expected a list of tables")
    tables = []
    for entry in index:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise SnapshotError(f"{folder.name}/{TABLES_FILE}: every entry needs a table name")
        name, columns = entry["name"], tuple(entry.get("columns") or ())
        path = folder / f"{name}.jsonl"
        rows = []
        try:
            with open(path, encoding="ascii") as source:
                for number, line in enumerate(source, 1):
                    value = json.loads(line)
                    if not isinstance(value, dict) or tuple(value) != columns:
                        raise SnapshotError(f"{folder.name}/{path.name} line {number}: expected an object "
                                            f"with the columns {', '.join(columns)}")
                    rows.append(tuple(value.values()))
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"{folder.name}/{path.name}: {exc}") from None
        table = TableRows(name, columns, rows)
        digest = table.digest()
        if (digest.rows, digest.checksum) != (entry.get("rows"), entry.get("checksum")):
            raise SnapshotError(f"{folder.name}/{path.name}: {digest.rows} rows whose checksum does not match "
                                f"{TABLES_FILE} ({entry.get('rows')} rows): the archive is damaged")
        tables.append(table)
    return Snapshot(revision, tables)


async def dump_to_folder(url: URL, folder: Path) -> Snapshot:
    """Read the store at `url` and write it into `folder`."""
    db = open_verbatim(url)
    try:
        snapshot = await read_snapshot(db)
    finally:
        await db.close()
    await asyncio.to_thread(write_snapshot, snapshot, folder)
    return snapshot
