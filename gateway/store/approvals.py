"""Approvals of risky tool calls: the rows of `approval_requests` and `approval_rules`.

Who may answer, what a rule is and how it is matched live in `gateway/approvals.py`; this module
only stores. An answer is a conditional update of a pending request, so of two answers given
at once on two processes (a button here, `/approve` there, or the asker's own timeout) exactly
one is taken. A rule row is keyed by (session, tool, rule), `''` as session meaning "always":
adding one that exists is an insert-if-new (`on_conflict_do_nothing` on either engine), so two
admins allowing the same thing at once (from two processes) leave one row and no error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import approval_requests, approval_rules

Q = approval_requests.c
A = approval_rules.c
ALWAYS = ""


class ApprovalsStore:
    """Mixin of the store: tables approval_requests and approval_rules."""

    db: Database

    async def approval_request_insert(self, request_id: str, *, session_id: str, platform: str, chat_id: str,
                                      user_id: str, tool: str, description: str, rule: str) -> None:
        """A new request, outcome `pending` until `approval_request_answer`."""
        await self.db.execute(approval_requests.insert().values(
            id=request_id, session_id=session_id, platform=platform, chat_id=chat_id, user_id=user_id, tool=tool,
            description=description, rule=rule, created_at=time.time()))

    async def approval_request_answer(self, request_id: str, *, outcome: str, scope: str = "",
                                      answered_by: str = "") -> bool:
        """Answer a request that is still pending; False when it was answered already. The first
        answer wins, whichever process gives it (the one running the turn or another one)."""
        result = await self.db.execute(approval_requests.update().where(
            Q.id == request_id, Q.outcome == "pending").values(
            outcome=outcome, scope=scope, answered_by=answered_by, answered_at=time.time()))
        return result.rowcount == 1

    async def approval_request_get(self, request_id: str) -> Mapping[str, Any] | None:
        row = await self.db.one(sa.select(approval_requests).where(Q.id == request_id))
        return row._mapping if row is not None else None

    async def approval_requests_waiting(self, platform: str, chat_id: str, *, since: float) -> list[Mapping[str, Any]]:
        """Requests of this chat still pending that were asked after `since`, oldest first."""
        rows = await self.db.rows(sa.select(approval_requests).where(
            Q.platform == platform, Q.chat_id == chat_id, Q.outcome == "pending", Q.created_at >= since)
            .order_by(Q.created_at, Q.id))
        return [r._mapping for r in rows]

    async def approval_request_rows(self, *, session_id: str | None = None,
                                    limit: int | None = None) -> list[Mapping[str, Any]]:
        """Requests (of one session when given), oldest first."""
        query = sa.select(approval_requests).order_by(Q.created_at, Q.id).limit(limit)
        if session_id is not None:
            query = query.where(Q.session_id == session_id)
        return [r._mapping for r in await self.db.rows(query)]

    async def approval_rule_add(self, session_id: str, tool: str, rule: str, created_by: str) -> bool:
        """Allow `rule` of `tool` for one session (or always, with session ''); False when it was already."""
        result = await self.db.execute(self.db.insert_ignore(approval_rules).values(
            session_id=session_id, tool=tool, rule=rule, created_by=created_by, created_at=time.time()))
        return result.rowcount == 1

    async def approval_rule_scopes(self, session_id: str, tool: str, rule: str) -> set[str]:
        """Where the rule is allowed for this session: {'always'} and/or {'session'}, or empty."""
        rows = await self.db.rows(sa.select(A.session_id).where(
            A.tool == tool, A.rule == rule, A.session_id.in_((ALWAYS, session_id))))
        return {"always" if r.session_id == ALWAYS else "session" for r in rows}

    async def approval_rule_rows(self) -> list[Mapping[str, Any]]:
        """Every rule, oldest first."""
        return [r._mapping for r in await self.db.rows(sa.select(approval_rules).order_by(A.created_at))]
