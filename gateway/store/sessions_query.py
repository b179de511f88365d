"""Read-side queries over sessions, messages, tool calls and usage: what the dashboard, the API's
session endpoints and `hermes trajectories export --from-sessions` show.

Nothing here writes; the conversation state itself is kept by `sessions.py` and `usage.py`. Where
the engines differ (an epoch time truncated to its hour) the construct is chosen here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.store.base import SessionRecord, UsageTotals
from gateway.store.database import Database
from gateway.store.schema import messages, sessions, tool_calls, usage
from gateway.store.sessions import session_record

M = messages.c
T = tool_calls.c
U = usage.c
HOUR = 3600


@dataclass(frozen=True)
class StoredMessage:
    """One stored message: `message` is the OpenAI-style dict; `active` is False once compacted away."""
    seq: int
    role: str
    message: dict[str, Any]
    active: bool
    created_at: float


@dataclass(frozen=True)
class StoredToolCall:
    call_id: str
    name: str
    arguments: str
    ok: bool
    result: str
    duration_ms: float


@dataclass(frozen=True)
class UsageLine:
    """A session's usage for one purpose and model."""
    purpose: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    calls: int


class SessionQueriesStore:
    """Mixin of the store: read-only queries of tables sessions, messages, tool_calls and usage."""

    db: Database

    async def session_messages(self, session_id: str, *, active_only: bool = False,
                               roles: Sequence[str] | None = None) -> list[StoredMessage]:
        """The session's messages in order (compacted ones too unless `active_only`), of `roles` if given."""
        query = sa.select(M.seq, M.role, M.data, M.active, M.created_at).where(M.session_id == session_id)
        if active_only:
            query = query.where(M.active == 1)
        if roles is not None:
            query = query.where(M.role.in_(list(roles)))
        rows = await self.db.rows(query.order_by(M.seq, M.id))
        return [StoredMessage(int(r.seq), r.role, json.loads(r.data), bool(r.active), float(r.created_at))
                for r in rows]

    async def session_tool_calls(self, session_id: str) -> list[StoredToolCall]:
        """The tool calls the session ran, in the order they ran."""
        rows = await self.db.rows(sa.select(T.call_id, T.name, T.arguments, T.ok, T.result, T.duration_ms)
                                  .where(T.session_id == session_id).order_by(T.id))
        return [StoredToolCall(r.call_id, r.name, r.arguments, bool(r.ok), r.result, float(r.duration_ms))
                for r in rows]

    async def sessions_in_order(self) -> list[SessionRecord]:
        """Every session, archived ones too, oldest first."""
        rows = await self.db.rows(sa.select(sessions).order_by(sessions.c.created_at, sessions.c.id))
        return [session_record(r) for r in rows]

    async def sessions_message_counts(self, session_ids: Sequence[str]) -> dict[str, int]:
        """{session id: its stored messages, compacted ones included} for the given sessions."""
        if not session_ids:
            return {}
        rows = await self.db.rows(sa.select(M.session_id, sa.func.count()).where(M.session_id.in_(list(session_ids)))
                                  .group_by(M.session_id))
        return {r[0]: int(r[1]) for r in rows}

    async def sessions_usage(self, session_ids: Sequence[str]) -> dict[str, UsageTotals]:
        """{session id: its usage totals} for the given sessions that made model calls."""
        if not session_ids:
            return {}
        rows = await self.db.rows(
            sa.select(U.session_id, sa.func.sum(U.prompt_tokens), sa.func.sum(U.completion_tokens),
                      sa.func.sum(U.cost), sa.func.count())
            .where(U.session_id.in_(list(session_ids))).group_by(U.session_id))
        return {r[0]: UsageTotals(int(r[1] or 0), int(r[2] or 0), float(r[3] or 0.0), int(r[4])) for r in rows}

    async def session_usage_lines(self, session_id: str) -> list[UsageLine]:
        """The session's usage split by purpose and model, by purpose."""
        rows = await self.db.rows(
            sa.select(U.purpose, U.model, sa.func.sum(U.prompt_tokens), sa.func.sum(U.completion_tokens),
                      sa.func.count())
            .where(U.session_id == session_id).group_by(U.purpose, U.model).order_by(U.purpose, U.model))
        return [UsageLine(r[0], r[1], int(r[2] or 0), int(r[3] or 0), int(r[4])) for r in rows]

    async def session_last_model(self, session_id: str, purpose: str = "chat") -> str:
        """The model of the session's latest call for `purpose` ("" when it made none)."""
        value = await self.db.scalar(sa.select(U.model).where(U.session_id == session_id, U.purpose == purpose)
                                     .order_by(U.id.desc()).limit(1))
        return str(value or "")

    async def sessions_updated_since(self, since: float) -> int:
        """How many sessions had activity at or after `since`."""
        return int(await self.db.scalar(sa.select(sa.func.count()).select_from(sessions)
                                        .where(sessions.c.updated_at >= since)) or 0)

    def _hour_of(self, column: Any) -> Any:
        """The hour number (epoch seconds // 3600) of a time column: SQLite's CAST truncates,
        PostgreSQL's rounds, so PostgreSQL takes the floor first."""
        hours = column / sa.literal_column(str(HOUR))  # inline, so GROUP BY repeats the SELECT's text exactly
        if self.db.is_postgresql:
            hours = sa.func.floor(hours)
        return sa.cast(hours, sa.Integer)

    async def hourly_user_turns(self, since: float) -> dict[int, int]:
        """{hour number: user messages stored in it} from `since` on."""
        hour = self._hour_of(M.created_at).label("hour")
        rows = await self.db.rows(sa.select(hour, sa.func.count()).where(M.role == "user", M.created_at >= since)
                                  .group_by(hour))
        return {int(r[0]): int(r[1]) for r in rows}

    async def hourly_tokens(self, since: float) -> dict[int, int]:
        """{hour number: prompt and completion tokens of the model calls in it} from `since` on."""
        hour = self._hour_of(U.created_at).label("hour")
        rows = await self.db.rows(sa.select(hour, sa.func.sum(U.prompt_tokens + U.completion_tokens))
                                  .where(U.created_at >= since).group_by(hour))
        return {int(r[0]): int(r[1] or 0) for r in rows}
