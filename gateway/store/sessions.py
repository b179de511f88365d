"""Sessions, their messages and tool calls: the conversation state of every chat.

A session's messages are stored one row each (OpenAI-style dicts as JSON, redacted by the
database layer on the way in) with a per-session sequence number; compaction deactivates a range
and inserts its summary in one transaction.

The active session of a key is remembered in this process only on SQLite, where one gateway
process owns the home; on PostgreSQL several processes share the sessions, so every lookup reads
the table (no process answers from a stale cached conversation).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa

from agent.redact import redact_message
from gateway.store.base import SessionRecord
from gateway.store.database import Database
from gateway.store.schema import messages, sessions, tool_calls

ACTIVE_SESSIONS_REMEMBERED = 1024
TOOL_RESULT_KEPT = 4000


def session_record(row: Any) -> SessionRecord:
    m = row._mapping
    return SessionRecord(
        id=m["id"], key=m["key"], platform=m["platform"], chat_id=m["chat_id"], user_id=m["user_id"],
        team=m["team"], title=m["title"], archived=bool(m["archived"]), created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


class SessionsStore:
    """Mixin of the store: sessions, messages and tool calls."""

    db: Database

    def _init_sessions(self) -> None:
        self._active: OrderedDict[str, SessionRecord] = OrderedDict()  # key -> its active session
        self._sessions_written = 0  # bumped by every write that may change which session is active
        self._remember_sessions = self.db.is_sqlite

    def forget_sessions(self) -> None:
        """Drop what this process remembers of active sessions (after a write it cannot see)."""
        self._sessions_written += 1
        self._active.clear()

    def _remember(self, session: SessionRecord) -> SessionRecord:
        if not self._remember_sessions:
            return session
        self._active[session.key] = session
        self._active.move_to_end(session.key)
        while len(self._active) > ACTIVE_SESSIONS_REMEMBERED:
            self._active.popitem(last=False)
        return session

    async def _insert_session(self, key: str, platform: str, chat_id: str, user_id: str,
                              team: str, title: str = "") -> SessionRecord:
        now = time.time()
        session_id = uuid.uuid4().hex[:16]
        await self.db.execute(sessions.insert().values(
            id=session_id, key=key, platform=platform, chat_id=chat_id, user_id=user_id, team=team, title=title,
            created_at=now, updated_at=now))
        self._sessions_written += 1  # other keys' remembered sessions stay valid
        return self._remember(SessionRecord(session_id, key, platform, chat_id, user_id, team, title, False, now, now))

    async def active_session(self, key: str, *, platform: str = "", chat_id: str = "",
                             user_id: str = "", team: str = "", title: str = "") -> SessionRecord:
        """The current session for a key, created (named `title`) when there is none."""
        remembered = self._active.get(key)
        if remembered is not None:
            self._active.move_to_end(key)
            return remembered
        written = self._sessions_written
        row = await self.db.one(
            sa.select(sessions).where(sessions.c.key == key, sessions.c.archived == 0)
            .order_by(sessions.c.created_at.desc()).limit(1))
        if row is not None:
            session = session_record(row)
            # a /new that ran while we read may have archived what we read: then do not remember it
            return self._remember(session) if written == self._sessions_written else session
        return await self._insert_session(key, platform, chat_id, user_id, team, title)

    async def new_session(self, key: str, *, platform: str = "", chat_id: str = "",
                          user_id: str = "", team: str = "") -> SessionRecord:
        """Archive the key's current session (if any) and start a fresh one."""
        self.forget_sessions()
        async with self.db.transaction():
            await self.db.execute(sessions.update().where(sessions.c.key == key, sessions.c.archived == 0)
                                  .values(archived=1))
            return await self._insert_session(key, platform, chat_id, user_id, team)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        row = await self.db.one(sa.select(sessions).where(sessions.c.id == session_id))
        return session_record(row) if row else None

    async def delete_sessions_of_key(self, key: str) -> list[str]:
        """Delete every session of `key` (active and archived) with its messages and tool calls, in
        one transaction; the ids deleted. Usage rows stay (they are the accounting)."""
        self.forget_sessions()
        async with self.db.transaction():
            ids = [r[0] for r in await self.db.rows(sa.select(sessions.c.id).where(sessions.c.key == key))]
            if ids:
                await self.db.execute(tool_calls.delete().where(tool_calls.c.session_id.in_(ids)))
                await self.db.execute(messages.delete().where(messages.c.session_id.in_(ids)))
                await self.db.execute(sessions.delete().where(sessions.c.id.in_(ids)))
        self.forget_sessions()
        return ids

    async def list_sessions(self, *, limit: int = 50, include_archived: bool = False) -> list[SessionRecord]:
        query = sa.select(sessions).order_by(sessions.c.updated_at.desc()).limit(limit)
        if not include_archived:
            query = query.where(sessions.c.archived == 0)
        return [session_record(r) for r in await self.db.rows(query)]

    # -- messages -------------------------------------------------------------------------------
    async def add_message(self, session_id: str, message: dict[str, Any], *, touch: bool = True) -> int:
        """Append (and commit) a message; returns its seq. `touch=False` leaves the session's
        `updated_at` to a later `touch_session` (one write per turn instead of one per message)."""
        now = time.time()
        message = redact_message(message, self.db.redactor)
        statement = self.db.prepared("add_message", _add_message_statement)
        values = {"p_session": session_id, "p_role": str(message.get("role", "")),
                  "p_data": json.dumps(message, ensure_ascii=False), "p_now": now}
        async with self.db.transaction():
            seq = int((await self.db.write_returning(statement, values))[0][0])
            if touch:
                await self.touch_session(session_id, now)
        return seq

    async def touch_session(self, session_id: str, at: float | None = None) -> None:
        """Set the session's `updated_at` (now by default)."""
        statement = self.db.prepared("touch_session", lambda: sessions.update()
                                     .where(sessions.c.id == sa.bindparam("p_session"))
                                     .values(updated_at=sa.bindparam("p_at")))
        await self.db.execute(statement, {"p_session": session_id, "p_at": time.time() if at is None else at})

    async def set_session_title(self, session_id: str, title: str) -> None:
        """Name the session. Which session is active does not change: only its remembered copy is updated
        (every new chat is named, so forgetting them all here would make every key read the table again)."""
        await self.db.execute(sessions.update().where(sessions.c.id == session_id).values(title=title))
        for key, remembered in list(self._active.items()):
            if remembered.id == session_id:
                self._active[key] = dataclasses.replace(remembered, title=title)

    async def load_messages(self, session_id: str) -> list[dict[str, Any]]:
        """The session's active messages, in order."""
        rows = await self.db.rows(
            sa.select(messages.c.data).where(messages.c.session_id == session_id, messages.c.active == 1)
            .order_by(messages.c.seq, messages.c.id))
        return [json.loads(r[0]) for r in rows]

    async def message_seqs(self, session_id: str) -> list[int]:
        rows = await self.db.rows(
            sa.select(messages.c.seq).where(messages.c.session_id == session_id, messages.c.active == 1)
            .order_by(messages.c.seq, messages.c.id))
        return [int(r[0]) for r in rows]

    async def compact_messages(self, session_id: str, first_seq: int, last_seq: int,
                               summary: dict[str, Any]) -> None:
        """Replace messages first_seq..last_seq (inclusive) by one summary message."""
        summary = redact_message(summary, self.db.redactor)
        async with self.db.transaction():
            await self.db.execute(messages.update().where(
                messages.c.session_id == session_id, messages.c.seq.between(first_seq, last_seq)).values(active=0))
            await self.db.execute(messages.insert().values(
                session_id=session_id, seq=first_seq, role=str(summary.get("role", "")),
                data=json.dumps(summary, ensure_ascii=False), created_at=time.time()))

    # -- tool calls -----------------------------------------------------------------------------
    async def record_tool_call(self, session_id: str, *, call_id: str, name: str, arguments: str,
                               ok: bool, result: str, duration_ms: float) -> None:
        await self.db.execute(tool_calls.insert().values(
            session_id=session_id, call_id=call_id, name=name, arguments=arguments, ok=int(ok),
            result=self.db.redactor.redact(result[:2 * TOOL_RESULT_KEPT])[:TOOL_RESULT_KEPT],
            duration_ms=duration_ms, created_at=time.time()))


def last_seq(session_id: Any) -> Any:
    """The seq of the session's last message (0 when it has none), as a scalar subquery: a statement
    that writes at the next seq or remembers where a turn starts reads it in the same statement."""
    return sa.select(sa.func.coalesce(sa.func.max(messages.c.seq), 0)) \
        .where(messages.c.session_id == session_id).scalar_subquery()


def _add_message_statement() -> Any:
    """INSERT of a message at the session's next seq (read by the same statement), returning it."""
    session_id = sa.bindparam("p_session")
    return messages.insert().values(
        session_id=session_id, seq=last_seq(session_id) + 1, role=sa.bindparam("p_role"),
        data=sa.bindparam("p_data"), created_at=sa.bindparam("p_now")).returning(messages.c.seq)
