"""The numbered SQL files of the store before Alembic (NNNN_name.sql, tracked by `PRAGMA user_version`).

Only `gateway.store.upgrade` reads them: a home made before the store moved to Alembic runs the
ones it lacks, then is stamped at Alembic's baseline revision (0001), which is the schema of the
last file here. New tables and columns come as Alembic revisions, never as files here.

`read_legacy_file` checks such an old `state.db` (a format-1 backup's) with the standard
library's `sqlite3`, read-only: it is a plain file from before the store, not a database the
store opens.
"""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

LEGACY_PACKAGE = "gateway.store.legacy"


def legacy_migrations() -> list[tuple[int, str]]:
    """(number, SQL) for every legacy migration file, in order."""
    found = []
    for entry in resources.files(LEGACY_PACKAGE).iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class LegacyFileError(ValueError):
    """An old `state.db` that SQLite cannot read."""


def read_legacy_file(path: Path) -> tuple[int, str]:
    """(`PRAGMA user_version`, `PRAGMA quick_check`) of a pre-Alembic SQLite file, opened read-only.

    Blocking: call it in a thread. Raises `LegacyFileError` when the file is not SQLite."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            status = str(connection.execute("PRAGMA quick_check").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise LegacyFileError(str(exc)) from None
    return version, status


def last_legacy_version() -> int:
    return legacy_migrations()[-1][0]


def split_sql(script: str) -> list[str]:
    """Split a migration file into statements (a trigger's BEGIN ... END stays one statement)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip().rstrip(";").strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return [s for s in statements if s]
