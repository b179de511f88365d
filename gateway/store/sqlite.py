"""The embedded store: SQLite through aiosqlite, WAL mode, numbered SQL migrations.

Each write is committed before the call returns (autocommit), so a process killed with
SIGKILL loses nothing it had already stored: WAL with synchronous=NORMAL is durable against
a process crash. Feature modules (pairing, cron, learning ...) add their own numbered files
under `migrations/` and use `execute`/`fetchall`/`fetchone` on the same connection.

Every aiosqlite call is a hop to its worker thread and back, so the per-turn writes (a message,
usage) are single statements run with one `execute_fetchall` each, and the active session of a
key is remembered (this process is the only writer of `sessions.archived`; a write through the
generic `execute` that names the sessions table forgets what was remembered).

No secret is stored: every message, tool call (name, arguments, result) and compaction summary
passes through the store's `Redactor` (known secret values of the config and environment, and
secret shapes) on its way in, and so does every text parameter of an INSERT/UPDATE/REPLACE run
through the generic `execute`, `execute_rowcount`, `fetchall` and `fetchone` (JSON text stays
valid JSON). Feature modules cannot bypass it by accident; a value that must keep the tokens it
carries (configuration the user typed, such as a cron job's webhook URL) is wrapped in
`KeepSecret`: only the known secret values of the config and environment are masked in it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import aiosqlite

from agent.redact import Redactor, redact_json_text, redact_message
from gateway.store.base import KeepSecret, SessionRecord, UsageTotals

MIGRATIONS_PACKAGE = "gateway.store.migrations"
ACTIVE_SESSIONS_REMEMBERED = 1024
WRITES = ("INSERT", "UPDATE", "REPLACE")
SHORTEST_SECRET = 6


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer Hermes than this one."""


def available_migrations() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) for every migration shipped with the package, in order."""
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if len(numbers) != len(set(numbers)):
        raise RuntimeError(f"duplicate migration numbers in {MIGRATIONS_PACKAGE}: {numbers}")
    return found


def _session(row: aiosqlite.Row) -> SessionRecord:
    return SessionRecord(
        id=row["id"], key=row["key"], platform=row["platform"], chat_id=row["chat_id"],
        user_id=row["user_id"], team=row["team"], title=row["title"], archived=bool(row["archived"]),
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


class SQLiteStore:
    """The Store interface on one SQLite file."""

    def __init__(self, connection: aiosqlite.Connection, path: Path, redactor: Redactor | None = None) -> None:
        self._db = connection
        self.path = path
        self.redactor = redactor or Redactor.from_environ()
        self._active: OrderedDict[str, SessionRecord] = OrderedDict()  # key -> its active session
        self._sessions_written = 0  # bumped by every write that may change which session is active

    # -- plumbing shared with feature modules -------------------------------------------------
    def _forget_sessions_if_written(self, sql: str) -> None:
        if "sessions" in sql.lower() and not sql.lstrip()[:6].upper() == "SELECT":
            self._sessions_written += 1
            self._active.clear()

    def _clean(self, value: Any) -> Any:
        if type(value) is KeepSecret:
            return self.redactor.redact_known(str(value))   # its own tokens stay; ours never
        if isinstance(value, str) and len(value) >= SHORTEST_SECRET:
            return redact_json_text(value, self.redactor) if value[:1] in "{[" else self.redactor.redact(value)
        return value

    def _params(self, sql: str, params: Iterable[Any]) -> tuple[Any, ...]:
        """The parameters to bind: text of a write redacted (see the module docstring)."""
        self._forget_sessions_if_written(sql)
        if not sql.lstrip()[:7].upper().startswith(WRITES):
            return tuple(params)
        return tuple(self._clean(p) for p in params)

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one statement; returns lastrowid."""
        cursor = await self._db.execute(sql, self._params(sql, params))
        rowid = cursor.lastrowid or 0
        await cursor.close()
        return rowid

    async def execute_rowcount(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self._db.execute(sql, self._params(sql, params))
        count = cursor.rowcount
        await cursor.close()
        return count

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self._db.execute_fetchall(sql, self._params(sql, params)))

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        async with self._db.execute(sql, self._params(sql, params)) as cursor:
            return await cursor.fetchone()

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self) -> int:
        """Apply the migrations the database lacks, each in one transaction; returns the version."""
        current = await self.schema_version()
        migrations = available_migrations()
        known = migrations[-1][0] if migrations else 0
        if current > known:
            raise SchemaTooNewError(
                f"{self.path}: schema version {current} is newer than this Hermes knows ({known}); "
                "upgrade hermes-gateway"
            )
        for number, _name, sql in migrations:
            if number <= current:
                continue
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {number}")
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
            current = number
        return current

    async def close(self) -> None:
        self._active.clear()
        await self._db.close()

    # -- sessions -------------------------------------------------------------------------------
    async def _insert_session(self, key: str, platform: str, chat_id: str, user_id: str,
                              team: str) -> SessionRecord:
        now = time.time()
        session_id = uuid.uuid4().hex[:16]
        await self._db.execute_fetchall(
            "INSERT INTO sessions (id, key, platform, chat_id, user_id, team, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, key, platform, chat_id, user_id, team, now, now),
        )
        self._sessions_written += 1  # other keys' remembered sessions stay valid
        return self._remember(SessionRecord(session_id, key, platform, chat_id, user_id, team, "", False, now, now))

    def _remember(self, session: SessionRecord) -> SessionRecord:
        self._active[session.key] = session
        self._active.move_to_end(session.key)
        while len(self._active) > ACTIVE_SESSIONS_REMEMBERED:
            self._active.popitem(last=False)
        return session

    async def active_session(self, key: str, *, platform: str = "", chat_id: str = "",
                             user_id: str = "", team: str = "") -> SessionRecord:
        remembered = self._active.get(key)
        if remembered is not None:
            self._active.move_to_end(key)
            return remembered
        written = self._sessions_written
        rows = await self._db.execute_fetchall(
            "SELECT * FROM sessions WHERE key = ? AND archived = 0 ORDER BY created_at DESC LIMIT 1", (key,)
        )
        if rows:
            session = _session(next(iter(rows)))
            # a /new that ran while we read may have archived what we read: then do not remember it
            return self._remember(session) if written == self._sessions_written else session
        return await self._insert_session(key, platform, chat_id, user_id, team)

    async def new_session(self, key: str, *, platform: str = "", chat_id: str = "",
                          user_id: str = "", team: str = "") -> SessionRecord:
        await self.execute("UPDATE sessions SET archived = 1 WHERE key = ? AND archived = 0", (key,))
        return await self._insert_session(key, platform, chat_id, user_id, team)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        row = await self.fetchone("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return _session(row) if row else None

    async def list_sessions(self, *, limit: int = 50, include_archived: bool = False) -> list[SessionRecord]:
        where = "" if include_archived else "WHERE archived = 0"
        rows = await self.fetchall(f"SELECT * FROM sessions {where} ORDER BY updated_at DESC LIMIT ?", (limit,))
        return [_session(r) for r in rows]

    # -- messages -------------------------------------------------------------------------------
    async def add_message(self, session_id: str, message: dict[str, Any], *, touch: bool = True) -> int:
        """Append (and commit) a message; returns its seq. `touch=False` leaves the session's
        `updated_at` to a later `touch_session` (one write per turn instead of one per message)."""
        now = time.time()
        message = redact_message(message, self.redactor)
        rows = await self._db.execute_fetchall(
            "INSERT INTO messages (session_id, seq, role, data, created_at)"
            " SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM messages WHERE session_id = ? RETURNING seq",
            (session_id, str(message.get("role", "")), json.dumps(message, ensure_ascii=False), now, session_id),
        )
        seq = int(next(iter(rows))[0])
        if touch:
            await self.touch_session(session_id, now)
        return seq

    async def touch_session(self, session_id: str, at: float | None = None) -> None:
        """Set the session's `updated_at` (now by default)."""
        await self._db.execute_fetchall("UPDATE sessions SET updated_at = ? WHERE id = ?",
                                        (time.time() if at is None else at, session_id))

    async def load_messages(self, session_id: str) -> list[dict[str, Any]]:
        rows = await self.fetchall(
            "SELECT data FROM messages WHERE session_id = ? AND active = 1 ORDER BY seq, id", (session_id,)
        )
        return [json.loads(r["data"]) for r in rows]

    async def message_seqs(self, session_id: str) -> list[int]:
        rows = await self.fetchall(
            "SELECT seq FROM messages WHERE session_id = ? AND active = 1 ORDER BY seq, id", (session_id,)
        )
        return [int(r["seq"]) for r in rows]

    async def compact_messages(self, session_id: str, first_seq: int, last_seq: int,
                               summary: dict[str, Any]) -> None:
        summary = redact_message(summary, self.redactor)
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            await self._db.execute(
                "UPDATE messages SET active = 0 WHERE session_id = ? AND seq BETWEEN ? AND ?",
                (session_id, first_seq, last_seq),
            )
            await self._db.execute(
                "INSERT INTO messages (session_id, seq, role, data, created_at) VALUES (?, ?, ?, ?, ?)",
                (session_id, first_seq, str(summary.get("role", "")), json.dumps(summary, ensure_ascii=False),
                 time.time()),
            )
            await self._db.commit()
        except BaseException:
            await self._db.rollback()
            raise

    # -- tool calls and usage -------------------------------------------------------------------
    async def record_tool_call(self, session_id: str, *, call_id: str, name: str, arguments: str,
                               ok: bool, result: str, duration_ms: float) -> None:
        await self._db.execute_fetchall(
            "INSERT INTO tool_calls (session_id, call_id, name, arguments, ok, result, duration_ms, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, call_id, self.redactor.redact(name), redact_json_text(arguments, self.redactor), int(ok),
             self.redactor.redact(result[:8000])[:4000], duration_ms, time.time()),
        )

    async def record_usage(self, session_id: str, *, model: str, prompt_tokens: int,
                           completion_tokens: int, cost: float, purpose: str = "chat") -> None:
        await self._db.execute_fetchall(
            "INSERT INTO usage (session_id, model, purpose, prompt_tokens, completion_tokens, cost, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, model, purpose, prompt_tokens, completion_tokens, cost, time.time()),
        )

    @staticmethod
    def _totals(row: aiosqlite.Row | None) -> UsageTotals:
        if row is None:
            return UsageTotals()
        return UsageTotals(int(row[0] or 0), int(row[1] or 0), float(row[2] or 0.0), int(row[3] or 0))

    async def usage_for_session(self, session_id: str) -> UsageTotals:
        return self._totals(await self.fetchone(
            "SELECT SUM(prompt_tokens), SUM(completion_tokens), SUM(cost), COUNT(*) FROM usage"
            " WHERE session_id = ?", (session_id,)))

    async def usage_since(self, since: float, *, purpose: str | None = None) -> UsageTotals:
        sql = ("SELECT SUM(prompt_tokens), SUM(completion_tokens), SUM(cost), COUNT(*) FROM usage"
               " WHERE created_at >= ?")
        params: list[Any] = [since]
        if purpose is not None:
            sql += " AND purpose = ?"
            params.append(purpose)
        return self._totals(await self.fetchone(sql, params))


def _split_sql(script: str) -> list[str]:
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


async def open_store(path: Path, redactor: Redactor | None = None) -> SQLiteStore:
    """Open (creating if needed) the SQLite store at `path`, in WAL mode, fully migrated.

    `redactor` masks secrets in what is written (default: the environment's secrets and shapes;
    the Runtime passes one that also knows the config's literal secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = await aiosqlite.connect(path, isolation_level=None)
    connection.row_factory = aiosqlite.Row
    await connection.execute("PRAGMA journal_mode = WAL")
    await connection.execute("PRAGMA synchronous = NORMAL")
    await connection.execute("PRAGMA foreign_keys = ON")
    await connection.execute("PRAGMA busy_timeout = 5000")
    store = SQLiteStore(connection, path, redactor)
    try:
        await store.migrate()
    except BaseException:
        await connection.close()
        raise
    return store
