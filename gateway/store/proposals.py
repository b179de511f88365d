"""Proposals waiting for a person: the rows of `learning_proposals`.

The rules (who decides, no change proposed twice, checks again at approval) live in
`gateway/learning/proposals.py`; this module only stores. `proposal_claim` and `proposal_decide` are
conditional updates, so of two deciders (two processes) exactly one wins. Rows are returned as
mappings for `gateway.learning.proposals.row_to_proposal`.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import learning_proposals

P = learning_proposals.c
OPEN = ("pending", "approving")


class ProposalsStore:
    """Mixin of the store: table learning_proposals."""

    db: Database

    async def proposal_insert(self, **values: Any) -> int:
        """A new pending proposal (columns of learning_proposals); its id."""
        rows = await self.db.write_returning(learning_proposals.insert().values(
            created_at=time.time(), **values).returning(P.id))
        return int(rows[0][0])

    async def proposal_row(self, proposal_id: int) -> Any | None:
        row = await self.db.one(sa.select(learning_proposals).where(P.id == proposal_id))
        return row._mapping if row is not None else None

    async def proposal_rows(self, *, status: str | None = None, team: str | None = None, limit: int = 50,
                            newest_first: bool = False, content_hash: str | None = None,
                            statuses: tuple[str, ...] | None = None, announce: str | None = None) -> list[Any]:
        """Proposal rows matching every filter given, oldest first (or newest first)."""
        query = sa.select(learning_proposals)
        if status:
            query = query.where(P.status == status)
        if statuses:
            query = query.where(P.status.in_(statuses))
        if team is not None:
            query = query.where(P.team == team)
        if content_hash is not None:
            query = query.where(P.content_hash == content_hash)
        if announce is not None:
            query = query.where(P.announce == announce)
        query = query.order_by(P.id.desc() if newest_first else P.id).limit(limit)
        return [r._mapping for r in await self.db.rows(query)]

    async def proposal_decide(self, proposal_id: int, status: str, by: str, result: str, *, reason: str = "",
                              announce: str = "") -> bool:
        """Set the outcome of an open proposal; False when someone else decided it first."""
        changed = await self.db.execute(learning_proposals.update().where(
            P.id == proposal_id, P.status.in_(OPEN)).values(
            status=status, decided_at=time.time(), decided_by=by, result=result, reason=reason, announce=announce))
        return changed.rowcount == 1

    async def proposal_claim(self, proposal_id: int, by: str) -> bool:
        """Take a pending proposal for approval (so two approvals cannot both write it)."""
        changed = await self.db.execute(learning_proposals.update().where(
            P.id == proposal_id, P.status == "pending").values(status="approving", decided_by=by))
        return changed.rowcount == 1

    async def proposal_release(self, proposal_id: int) -> None:
        await self.db.execute(learning_proposals.update().where(
            P.id == proposal_id, P.status == "approving").values(status="pending", decided_by=""))

    async def proposal_mark_announced(self, proposal_id: int) -> None:
        await self.db.execute(learning_proposals.update().where(P.id == proposal_id).values(announce="done"))
