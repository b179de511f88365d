"""Copying a whole store into another database (SQLite -> PostgreSQL, or either way), verified.

`copy_store` brings both databases to the latest revision (the source the way the gateway would
at start; a target written by a newer Hermes is refused), refuses a target that already holds
rows unless `replace` is set, loads every table in one transaction of the target, then reads the
target back and compares each table with what was read from the source: row count and checksum
(see `gateway.store.snapshot`). The report lists every table; `ok` is false on any mismatch.
The source is read in one consistent transaction, so a gateway may keep writing to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy.engine import URL

from gateway.store.database import display_url
from gateway.store.snapshot import (Snapshot, SnapshotError, TableDigest, digests, load_snapshot,
                                    open_verbatim, read_snapshot, row_counts)
from gateway.store.upgrade import upgrade_database


class TargetNotEmptyError(SnapshotError):
    """The target database already holds rows (and replacing them was not asked for)."""


@dataclass(frozen=True)
class TableCheck:
    name: str
    source: TableDigest
    target: TableDigest | None

    @property
    def ok(self) -> bool:
        return self.target is not None and (self.source.rows, self.source.checksum) == (
            self.target.rows, self.target.checksum)


@dataclass
class CopyReport:
    source: str
    target: str
    revision: str | None
    tables: list[TableCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.source.rows for t in self.tables)


def compare(source: dict[str, TableDigest], target: dict[str, TableDigest]) -> list[TableCheck]:
    return [TableCheck(name, digest, target.get(name)) for name, digest in source.items()]


async def refuse_non_empty(url: URL) -> None:
    db = open_verbatim(url)
    try:
        counts = await row_counts(db)
    finally:
        await db.close()
    if counts:
        held = ", ".join(f"{n} {name}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:4])
        raise TargetNotEmptyError(f"{display_url(url)} is not empty ({held}{', ...' if len(counts) > 4 else ''}); "
                                  "pass --force to replace what it holds")


async def load_into(snapshot: Snapshot, target: URL, *, replace: bool = False) -> list[TableCheck]:
    """Load `snapshot` into `target` (already at the snapshot's revision) and check it table by table."""
    if not replace:
        await refuse_non_empty(target)
    db = open_verbatim(target)
    try:
        await load_snapshot(db, snapshot, replace=replace)
        return compare(snapshot.digests(), await digests(db))
    finally:
        await db.close()


async def copy_store(source: URL, target: URL, *, replace: bool = False) -> CopyReport:
    """Copy every table of `source` into `target` and verify it (see the module docstring)."""
    started = time.monotonic()
    if display_url(source) == display_url(target):
        raise SnapshotError("the source and the target are the same database")
    await upgrade_database(source)
    await upgrade_database(target)
    db = open_verbatim(source)
    try:
        snapshot = await read_snapshot(db)
    finally:
        await db.close()
    report = CopyReport(display_url(source), display_url(target), snapshot.revision)
    report.tables = await load_into(snapshot, target, replace=replace)
    report.seconds = time.monotonic() - started
    return report
