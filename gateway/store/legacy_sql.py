"""Raw SQL text with `?` parameters, for the feature modules not yet moved into store modules.

Transitional: each concern moves its statements into a module of this package (Core, both
engines), and this mixin goes away with the last of them. It runs on whatever engine the store
has, so SQLite-only text works only on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database


class LegacyRow(tuple):  # type: ignore[type-arg]
    """A row readable by index and by column name (what sqlite3.Row offered)."""

    _names: tuple[str, ...] = ()

    def __new__(cls, values: Iterable[Any], names: tuple[str, ...]) -> LegacyRow:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _named(sql: str, params: Iterable[Any]) -> tuple[sa.TextClause, dict[str, Any]]:
    values = list(params)
    out: list[str] = []
    index = 0
    quote = ""
    for char in sql:
        if quote:
            out.append(char)
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append(f":p{index}")
            index += 1
        else:
            out.append(char)
    return sa.text("".join(out).replace("::", "\\::")), {f"p{i}": v for i, v in enumerate(values)}


class LegacySQLStore:
    """Mixin of the store: `execute/execute_rowcount/fetchall/fetchone(sql, params)`."""

    db: Database

    def forget_sessions(self) -> None: ...

    def _touches_sessions(self, sql: str) -> None:
        if "sessions" in sql.lower() and sql.lstrip()[:6].upper() != "SELECT":
            self.forget_sessions()

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one statement; returns lastrowid."""
        self._touches_sessions(sql)
        text, bound = _named(sql, params)
        result = await self.db.execute(text, bound)
        try:
            return int(result.lastrowid or 0)
        except Exception:
            return 0

    async def execute_rowcount(self, sql: str, params: Iterable[Any] = ()) -> int:
        self._touches_sessions(sql)
        text, bound = _named(sql, params)
        return int((await self.db.execute(text, bound)).rowcount)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[LegacyRow]:
        self._touches_sessions(sql)
        text, bound = _named(sql, params)
        async with self.db.transaction() if sql.lstrip()[:6].upper() != "SELECT" else self.db.reading() as conn:
            result = await conn.execute(text, bound)
            names = tuple(result.keys()) if result.returns_rows else ()
            return [LegacyRow(r, names) for r in result.all()] if result.returns_rows else []

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> LegacyRow | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None
