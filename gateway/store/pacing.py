"""Platform rate limits held across the cluster: a send reserves its slot in one statement.

Each pacing key (a platform's whole bot, or one chat of it) keeps a theoretical arrival time
(`tat`, the generic cell rate algorithm): a send moves it on by the key's interval, from now when
it lies in the past, and waits for whatever of it lies more than `burst` intervals ahead. One
upsert with RETURNING does the reservation on either engine, so every process of the cluster
draws on the same budget, and two sends racing for a key get two different slots.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import send_pacing

P = send_pacing.c


class PacingStore:
    """Mixin of the store: table send_pacing."""

    db: Database

    async def pace_reserve(self, key: str, interval: float, burst: int) -> float:
        """Take the next send slot of `key`; the seconds to wait before sending (0: send now)."""
        now = time.time()
        statement = self.db.conditional_upsert(
            send_pacing, {"key": key, "tat": now + interval}, ["key"],
            {"tat": sa.case((P.tat > now, P.tat), else_=now) + interval}, sa.true(),
        ).returning(P.tat)
        [row] = await self.db.write_returning(statement)
        return max(0.0, float(row[0]) - now - burst * interval)

    async def pace_prune(self, before: float) -> int:
        """Forget keys whose last slot lies before `before` (an idle chat paces from now anyway)."""
        return (await self.db.execute(send_pacing.delete().where(P.tat < before))).rowcount
