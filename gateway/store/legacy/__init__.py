"""The numbered SQL files of the store before Alembic (NNNN_name.sql, tracked by `PRAGMA user_version`).

Only `gateway.store.upgrade` reads them: a home made before the store moved to Alembic runs the
ones it lacks, then is stamped at Alembic's baseline revision (0001), which is the schema of the
last file here. New tables and columns come as Alembic revisions, never as files here.
"""

from __future__ import annotations

import sqlite3
from importlib import resources

LEGACY_PACKAGE = "gateway.store.legacy"


def legacy_migrations() -> list[tuple[int, str]]:
    """(number, SQL) for every legacy migration file, in order."""
    found = []
    for entry in resources.files(LEGACY_PACKAGE).iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


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
