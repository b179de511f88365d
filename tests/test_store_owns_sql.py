"""All SQL lives in `gateway/store/` (#24): no other module of the product imports a database
library (SQLAlchemy, Alembic, sqlite3, aiosqlite, asyncpg), anywhere in its body, `if
TYPE_CHECKING:` blocks included. Other modules reach state only through the store's methods and
names it exports (`gateway.store.database.URL`, its errors)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("skills", "agent", "adapters", "gateway")
STORE = ROOT / "gateway" / "store"
DATABASE_LIBRARIES = {"sqlalchemy", "alembic", "sqlite3", "aiosqlite", "asyncpg"}


def database_imports(source: str) -> list[str]:
    """The database libraries `source` imports (top-level names), in any scope."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name.split(".")[0] in DATABASE_LIBRARIES]
    return found


def _product_modules() -> list[Path]:
    paths = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    return sorted(p for p in paths if "bundled" not in p.relative_to(ROOT).parts)


def test_only_the_store_imports_a_database_library() -> None:
    outside = [f"{path.relative_to(ROOT)} imports {name}" for path in _product_modules()
               if not path.is_relative_to(STORE)
               for name in database_imports(path.read_text(encoding="utf-8"))]
    assert outside == []


def test_the_scan_sees_the_store_and_hidden_imports() -> None:
    # it must be able to fail: the store itself is found, and so are imports in functions and TYPE_CHECKING
    inside = [name for path in _product_modules() if path.is_relative_to(STORE)
              for name in database_imports(path.read_text(encoding="utf-8"))]
    assert {"sqlalchemy", "sqlite3"} <= {name.split(".")[0] for name in inside}
    hidden = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sqlalchemy.engine import URL\n"
              "def f():\n    import sqlite3\n    from asyncpg import exceptions\n")
    assert sorted(database_imports(hidden)) == ["asyncpg", "sqlalchemy.engine", "sqlite3"]
