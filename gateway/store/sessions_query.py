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

from gateway.store.database import Database
from gateway.store.schema import messages

M = messages.c


@dataclass(frozen=True)
class StoredMessage:
    """One stored message: `message` is the OpenAI-style dict; `active` is False once compacted away."""
    seq: int
    role: str
    message: dict[str, Any]
    active: bool
    created_at: float


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
