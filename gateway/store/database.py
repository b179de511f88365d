"""One connection pool on SQLite (aiosqlite) or PostgreSQL (asyncpg), through SQLAlchemy's asyncio Core.

`Database` is what every concern module of the store runs its statements on:

- `db.transaction()` is one transaction; calls made inside it by the same task (from any concern
  module) join it, so "end the inbox row and record the delivery" commits or fails as one. On
  SQLite it starts with `BEGIN IMMEDIATE` (the write lock up front, so two writers wait on
  `busy_timeout` instead of failing on a lock upgrade); on PostgreSQL it is READ COMMITTED and
  claims use `FOR UPDATE SKIP LOCKED`.
- `db.execute/rows/one/scalar` run one statement in the current transaction, or in a short one of
  their own.
- `insert_ignore`, `upsert` and `claimable` build each dialect's own construct, so no concern
  module writes SQL per engine.
- `db.prepared(name, build)` keeps a statement a turn runs every time (built once per Database,
  its values as `sa.bindparam`s given at execution): SQLAlchemy then neither builds it again nor
  recomputes its cache key, about a fifth of the CPU a statement costs.

Redaction lives here, in one place: every text value bound to an INSERT or UPDATE is made
encodable (a lone surrogate becomes U+FFFD, so a message holding one is stored instead of raising
UnicodeEncodeError in the driver) and passes through the store's `Redactor` (known secret values
of the config and environment, and secret shapes; JSON text stays valid JSON) in a
`before_cursor_execute` hook, whatever module built the statement. A
value wrapped in `KeepSecret` keeps its own tokens (a cron job's webhook URL the user typed); only
the known secret values are masked in it.

A URL's password never reaches a log line: `display_url` renders it masked, and every error this
module raises names the host and port, not the URL.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from agent.redact import Redactor, redact_json_text
from gateway.store.base import KeepSecret

SHORTEST_SECRET = 6
SQLITE_BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_SECONDS = 5.0
STORE_URL_ENV = "HERMES_STORE_URL"
WRITES = ("INSERT", "UPDATE", "REPLACE")


def valid_text(value: str) -> str:
    """`value` as text both engines can hold: a lone surrogate (`"\\ud800"`, from a client's
    broken JSON escape or a cut emoji) becomes U+FFFD, a surrogate pair the character it spells,
    and a NUL (which PostgreSQL's text cannot hold) U+FFFD too, on SQLite alike."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


class StoreUnavailableError(RuntimeError):
    """The database cannot be reached; the message names host:port and the setting to fix."""


def resolve_url(configured: str, legacy_path: str, state_db: Path) -> URL:
    """The store's URL: HERMES_STORE_URL, else `[store] url`, else `[store] path`, else the home's
    state.db. `sqlite:///` and `postgresql://` get their async driver."""
    raw = os.environ.get(STORE_URL_ENV, "").strip() or configured.strip()
    if not raw:
        path = Path(legacy_path).expanduser() if legacy_path else state_db
        return URL.create("sqlite+aiosqlite", database=str(path))
    return database_url(raw, "[store] url")


def database_url(raw: str, setting: str) -> URL:
    """`raw` as a store URL with its async driver; ValueError naming `setting` otherwise."""
    try:
        url = make_url(raw.strip())
    except sa.exc.ArgumentError:
        raise ValueError(f"{setting}: {raw!r} is not a database URL; use sqlite:///PATH or "
                         "postgresql+asyncpg://USER@HOST:PORT/DB") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    raise ValueError(f"{setting}: unsupported database {backend!r}; use sqlite:///PATH or "
                     "postgresql+asyncpg://USER@HOST:PORT/DB")


def display_url(url: URL) -> str:
    """The URL with its password masked: safe for logs, `hermes doctor` and `hermes status`."""
    return url.render_as_string(hide_password=True)


def where(url: URL) -> str:
    """host:port of a server URL, or the file of a SQLite one."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


@dataclass(frozen=True)
class _Current:
    task: asyncio.Task[Any] | None
    connection: AsyncConnection


class Database:
    """The pool, the transaction scope and the dialect's constructs (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, url: URL, redactor: Redactor) -> None:
        self.engine = engine
        self.url = url
        self.redactor = redactor
        self.dialect = engine.dialect.name
        # on SQLite a transaction takes the write lock up front: connections of this engine (it shares
        # the pool) begin with BEGIN IMMEDIATE, without setting the option on each connection
        self._writer = engine.execution_options(hermes_begin="BEGIN IMMEDIATE") if self.is_sqlite else engine
        self._current: contextvars.ContextVar[_Current | None] = contextvars.ContextVar(
            f"hermes_db_{id(self)}", default=None)
        event.listen(engine.sync_engine, "before_cursor_execute", self._redact_parameters, retval=True)
        self._prepared: dict[str, Any] = {}

    def prepared(self, name: str, build: Callable[[], Any]) -> Any:
        """The statement `name`, built by `build()` the first time it is asked for on this Database."""
        statement = self._prepared.get(name)
        if statement is None:
            statement = self._prepared[name] = build()
        return statement

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def describe(self) -> str:
        return display_url(self.url)

    # -- redaction: the one place --------------------------------------------------------------
    def clean(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = valid_text(value)
        if type(value) is KeepSecret:
            return self.redactor.redact_known(str(text))
        if len(text) >= SHORTEST_SECRET:
            return redact_json_text(text, self.redactor) if text[:1] in "{[" else self.redactor.redact(text)
        return text

    def _clean_set(self, params: Any) -> Any:
        if isinstance(params, Mapping):
            return {k: self.clean(v) for k, v in params.items()}
        if isinstance(params, (tuple, list)):
            return type(params)(self.clean(v) for v in params)
        return params

    def _redact_parameters(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                           executemany: bool) -> tuple[str, Any]:
        head = statement.lstrip()[:7].upper()
        if not head.startswith(WRITES):
            return statement, parameters
        if executemany:
            return statement, type(parameters)(self._clean_set(p) for p in parameters)
        return statement, self._clean_set(parameters)

    # -- transactions --------------------------------------------------------------------------
    def _joined(self) -> AsyncConnection | None:
        current = self._current.get()
        if current is None:
            return None
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        # a task spawned inside a transaction inherits the context var but not the connection
        return current.connection if current.task is task else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction; nested calls by the same task join it (no savepoints)."""
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        async with self._writer.connect() as connection:
            async with connection.begin():
                token = self._current.set(_Current(asyncio.current_task(), connection))
                try:
                    yield connection
                finally:
                    self._current.reset(token)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads: the current transaction's, or a short read transaction."""
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        async with self.engine.connect() as connection:
            yield connection

    async def execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        """Run a write (or any statement whose result is read at once) in the current transaction
        or a short one of its own."""
        async with self.transaction() as connection:
            return await connection.execute(statement, params)

    async def rows(self, statement: sa.Executable, params: Any = None) -> list[sa.Row[Any]]:
        async with self.reading() as connection:
            return list((await connection.execute(statement, params)).all())

    async def one(self, statement: sa.Executable, params: Any = None) -> sa.Row[Any] | None:
        async with self.reading() as connection:
            return (await connection.execute(statement, params)).first()

    async def scalar(self, statement: sa.Executable, params: Any = None) -> Any:
        async with self.reading() as connection:
            return (await connection.execute(statement, params)).scalar()

    async def write_returning(self, statement: sa.Executable, params: Any = None) -> list[sa.Row[Any]]:
        """A write whose RETURNING rows are wanted, committed with them."""
        async with self.transaction() as connection:
            return list((await connection.execute(statement, params)).all())

    # -- the dialect's own constructs ----------------------------------------------------------
    def _insert(self, table: sa.Table) -> Any:
        if self.is_postgresql:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def insert_ignore(self, table: sa.Table, conflict: Sequence[str] | None = None) -> Any:
        """INSERT that does nothing when the row's key (or `conflict` columns) already exists."""
        return self._insert(table).on_conflict_do_nothing(index_elements=list(conflict) if conflict else None)

    def upsert(self, table: sa.Table, values: Mapping[str, Any], conflict: Sequence[str],
               update: Iterable[str] | None = None) -> Any:
        """INSERT, or UPDATE the `update` columns (default: all but the key) of the existing row."""
        statement = self._insert(table).values(**values)
        columns = list(update) if update is not None else [c for c in values if c not in conflict]
        if not columns:
            return statement.on_conflict_do_nothing(index_elements=list(conflict))
        return statement.on_conflict_do_update(
            index_elements=list(conflict), set_={c: statement.excluded[c] for c in columns})

    def conditional_upsert(self, table: sa.Table, values: Mapping[str, Any], conflict: Sequence[str],
                           set_: Mapping[str, Any], where: Any) -> Any:
        """INSERT, or UPDATE the existing row with `set_` (expressions may read the row's old
        values) only where `where` holds: a claim that succeeds on a free row and nowhere else."""
        return self._insert(table).values(**values).on_conflict_do_update(
            index_elements=list(conflict), set_=dict(set_), where=where)

    def claimable(self, select: sa.Select[Any]) -> sa.Select[Any]:
        """A SELECT of rows to claim inside `transaction()`: `FOR UPDATE SKIP LOCKED` on PostgreSQL;
        SQLite's `BEGIN IMMEDIATE` already makes the claim exclusive."""
        return select.with_for_update(skip_locked=True) if self.is_postgresql else select

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(foreign_keys: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we send BEGIN ourselves (SQLAlchemy's pysqlite recipe)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()
    return on_connect


def _sqlite_begin(connection: Any) -> None:
    """BEGIN (or BEGIN IMMEDIATE) sent straight to the driver: one trip to its thread, where a
    statement through SQLAlchemy takes three (cursor, execute, close) and its execution machinery."""
    statement = connection.get_execution_options().get("hermes_begin", "BEGIN")
    try:
        await_only(connection.connection.driver_connection.execute(statement))
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc


def create_engine_for(url: URL, *, foreign_keys: bool = True, pool_size: int = 10) -> AsyncEngine:
    """An AsyncEngine for the store URL, with the settings each engine needs."""
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(foreign_keys))
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "command_timeout": 60,
                      "server_settings": {"application_name": "hermes-gateway",
                                          "tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
                                          "tcp_keepalives_count": "3"}},
    )


async def check_reachable(engine: AsyncEngine, url: URL) -> None:
    """Fail fast (within CONNECT_TIMEOUT_SECONDS) with one line naming host:port and the setting."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS + 1):
            async with engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
    except (OSError, TimeoutError, sa.exc.DBAPIError, sa.exc.InterfaceError, asyncio.TimeoutError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreUnavailableError(
            f"cannot reach the store database at {where(url)} ({reason[:200]}); check [store] url or "
            f"{STORE_URL_ENV}") from None
