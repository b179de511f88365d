"""Model usage: tokens and cost per call, by session and purpose (chat, checkpoint, cron ...)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from gateway.store.base import UsageTotals
from gateway.store.database import Database
from gateway.store.schema import usage


def _totals(row: Any) -> UsageTotals:
    if row is None:
        return UsageTotals()
    return UsageTotals(int(row[0] or 0), int(row[1] or 0), float(row[2] or 0.0), int(row[3] or 0))


_SUMS = (sa.func.sum(usage.c.prompt_tokens), sa.func.sum(usage.c.completion_tokens),
         sa.func.sum(usage.c.cost), sa.func.count())


class UsageStore:
    """Mixin of the store: usage rows and their totals."""

    db: Database

    async def record_usage(self, session_id: str, *, model: str, prompt_tokens: int,
                           completion_tokens: int, cost: float, purpose: str = "chat") -> None:
        await self.db.execute(self.db.prepared("record_usage", usage.insert), {
            "session_id": session_id, "model": model, "purpose": purpose, "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens, "cost": cost, "created_at": time.time()})

    async def usage_for_session(self, session_id: str) -> UsageTotals:
        return _totals(await self.db.one(sa.select(*_SUMS).where(usage.c.session_id == session_id)))

    async def usage_since(self, since: float, *, purpose: str | None = None) -> UsageTotals:
        query = sa.select(*_SUMS).where(usage.c.created_at >= since)
        if purpose is not None:
            query = query.where(usage.c.purpose == purpose)
        return _totals(await self.db.one(query))
