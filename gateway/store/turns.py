"""Turn claims: which process runs a session's turns, one in the whole cluster, in arrival order.

A session's queue is its rows in `turn_inbox` (by id, the arrival order). A process that wants to
run them claims the session in `turn_claims` with one conditional upsert: the claim is taken only
when the row is free (released), expired (its owner stopped renewing: dead, or cut off from the
store) or already ours, so two processes never hold one session. Every claim bumps the row's
generation, so a process can tell whether anyone else ran the session since it last did (and its
cached conversation is stale); `previous` names the owner the claim was taken from when that owner
never released it (it died: its user is told the turn was interrupted).

The owner renews all its claims in one statement (`turn_claims_renew`), which also returns the
`/stop` requests other processes wrote for its sessions (`turn_request_stop`). Sessions with
waiting rows and no live claim are what `turn_orphans` finds: a process that died holding them,
or a message taken just now whose taker has not claimed yet; whoever claims first runs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import turn_claims, turn_inbox


@dataclass(frozen=True)
class TurnClaim:
    session_key: str
    generation: int
    taken_over_from: str = ""     # the owner that never released it (it died), else ""


@dataclass(frozen=True)
class HeldClaim:
    session_key: str
    generation: int
    stop_requested: bool


class TurnClaimsStore:
    """Mixin of the store: table turn_claims, and turn_inbox read as per-session queues."""

    db: Database

    async def turn_claim(self, session_key: str, owner: str, ttl: float) -> TurnClaim | None:
        """Claim the session for `owner` unless another live process holds it."""
        now = time.time()
        rows = await self.db.write_returning(self.db.prepared("turn_claim", self._claim_statement), {
            "p_key": session_key, "p_owner": owner, "p_expires": now + ttl, "p_now": now})
        if not rows:
            return None
        previous = str(rows[0][1] or "")
        return TurnClaim(session_key, int(rows[0][0]), previous if previous != owner else "")

    def _claim_statement(self) -> Any:
        current = turn_claims.c
        owner, expires = sa.bindparam("p_owner"), sa.bindparam("p_expires")
        return self.db.conditional_upsert(
            turn_claims,
            {"session_key": sa.bindparam("p_key"), "owner": owner, "generation": 1, "expires_at": expires,
             "previous": "", "stop_requested": 0},
            ["session_key"],
            {"owner": owner, "generation": current.generation + 1, "expires_at": expires,
             "previous": current.owner, "stop_requested": 0},
            sa.or_(current.owner == "", current.owner == owner, current.expires_at < sa.bindparam("p_now")),
        ).returning(turn_claims.c.generation, turn_claims.c.previous)

    async def turn_holder(self, session_key: str) -> str:
        """The process holding the session's claim now ("" when free or expired)."""
        row = await self.db.one(sa.select(turn_claims.c.owner, turn_claims.c.expires_at)
                                .where(turn_claims.c.session_key == session_key))
        return str(row.owner) if row is not None and row.owner and float(row.expires_at) >= time.time() else ""

    async def turn_release(self, session_key: str, owner: str, generation: int) -> bool:
        statement = self.db.prepared("turn_release", lambda: sa.update(turn_claims).where(
            turn_claims.c.session_key == sa.bindparam("p_key"), turn_claims.c.owner == sa.bindparam("p_owner"),
            turn_claims.c.generation == sa.bindparam("p_generation"))
            .values(owner="", expires_at=0.0, stop_requested=0))
        result = await self.db.execute(statement, {"p_key": session_key, "p_owner": owner,
                                                   "p_generation": generation})
        return bool(result.rowcount)

    async def turn_release_all(self, owner: str) -> int:
        """A clean stop: every claim of `owner` is free at once (another process takes over now)."""
        result = await self.db.execute(sa.update(turn_claims).where(turn_claims.c.owner == owner)
                                       .values(owner="", expires_at=0.0, stop_requested=0))
        return result.rowcount

    async def turn_claims_expire_others(self, owner: str) -> int:
        """On a store only one process may use (SQLite): claims of earlier processes are dead now;
        they stay named (`previous` tells their users the turn was interrupted)."""
        result = await self.db.execute(sa.update(turn_claims).where(
            turn_claims.c.owner != owner, turn_claims.c.owner != "", turn_claims.c.expires_at > 0.0)
            .values(expires_at=0.0))
        return result.rowcount

    async def turn_claims_renew(self, owner: str, ttl: float) -> list[HeldClaim]:
        """Extend every claim `owner` still holds; what it holds, with the /stop requests for them."""
        now = time.time()
        rows = await self.db.write_returning(
            sa.update(turn_claims).where(turn_claims.c.owner == owner, turn_claims.c.expires_at >= now)
            .values(expires_at=now + ttl)
            .returning(turn_claims.c.session_key, turn_claims.c.generation, turn_claims.c.stop_requested))
        return [HeldClaim(str(r[0]), int(r[1]), bool(r[2])) for r in rows]

    async def turn_stop_seen(self, session_key: str, owner: str, generation: int) -> None:
        await self.db.execute(sa.update(turn_claims).where(
            turn_claims.c.session_key == session_key, turn_claims.c.owner == owner,
            turn_claims.c.generation == generation).values(stop_requested=0))

    async def turn_request_stop(self, session_key: str) -> bool:
        """Ask the process running the session's turns to stop it; False when nobody holds it."""
        result = await self.db.execute(sa.update(turn_claims).where(
            turn_claims.c.session_key == session_key, turn_claims.c.owner != "",
            turn_claims.c.expires_at >= time.time()).values(stop_requested=1))
        return bool(result.rowcount)

    async def turn_orphans(self, limit: int = 100) -> list[str]:
        """Sessions with waiting rows and no live claim (oldest first)."""
        now = time.time()
        claim = turn_claims.alias("claim")
        first = sa.func.min(turn_inbox.c.id).label("first")
        query = (sa.select(turn_inbox.c.session_key, first)
                 .select_from(turn_inbox.outerjoin(claim, claim.c.session_key == turn_inbox.c.session_key))
                 .where(turn_inbox.c.session_key.is_not(None), turn_inbox.c.session_key != "",
                        sa.or_(claim.c.session_key.is_(None), claim.c.owner == "", claim.c.expires_at < now))
                 .group_by(turn_inbox.c.session_key).order_by(first).limit(limit))
        return [str(r[0]) for r in await self.db.rows(query)]

    async def inbox_next(self, session_key: str) -> Any | None:
        """The session's oldest waiting row (id, message, attempts, session_key), or None."""
        return await self.db.one(
            sa.select(turn_inbox.c.id, turn_inbox.c.message, turn_inbox.c.attempts, turn_inbox.c.session_key)
            .where(turn_inbox.c.session_key == session_key).order_by(turn_inbox.c.id).limit(1))

    async def inbox_unrouted(self, limit: int = 500) -> list[Any]:
        """Rows taken before their session was recorded (a home older than revision 0009)."""
        return await self.db.rows(sa.select(turn_inbox.c.id, turn_inbox.c.message)
                                  .where(turn_inbox.c.session_key.is_(None)).order_by(turn_inbox.c.id)
                                  .limit(limit))

    async def inbox_route(self, inbox_id: int, session_key: str) -> None:
        await self.db.execute(sa.update(turn_inbox).where(turn_inbox.c.id == inbox_id)
                              .values(session_key=session_key))
