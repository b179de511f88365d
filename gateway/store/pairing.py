"""Pairing: the rows of `pairing_requests` (one-time codes waiting for an admin) and `allow_grants`
(users an admin let in).

What a code looks like and how long it lives are `gateway/pairing.py`'s; this module only stores,
each step in one statement or one transaction so two processes agree:

- `pairing_code` is an upsert that replaces a user's code only when it has expired, then reads
  the code back: two messages of one user arriving at two processes get the same code.
- `pairing_approve` takes the request (DELETE ... RETURNING) and writes the grant in one
  transaction: of two admins approving one code, exactly one gets it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import allow_grants, pairing_requests

P = pairing_requests.c
G = allow_grants.c


class PairingStore:
    """Mixin of the store: tables pairing_requests and allow_grants."""

    db: Database

    async def pairing_code(self, platform: str, user_id: str, *, code: str, display_name: str, chat_id: str,
                           ttl: float) -> str:
        """The user's unexpired code, or `code` stored as the new one (valid `ttl` seconds)."""
        now = time.time()
        statement = self.db._insert(pairing_requests).values(
            code=code, platform=platform, user_id=user_id, display_name=display_name, chat_id=chat_id,
            created_at=now, expires_at=now + ttl)
        fresh = {name: statement.excluded[name]
                 for name in ("code", "display_name", "chat_id", "created_at", "expires_at")}
        async with self.db.transaction():
            await self.db.execute(statement.on_conflict_do_update(
                index_elements=["platform", "user_id"], set_=fresh, where=P.expires_at <= now))
            current = await self.db.scalar(sa.select(P.code).where(P.platform == platform, P.user_id == user_id))
        return str(current)

    async def pairing_pending(self) -> list[Mapping[str, Any]]:
        """Unexpired requests, oldest first."""
        rows = await self.db.rows(sa.select(pairing_requests).where(P.expires_at > time.time())
                                  .order_by(P.created_at))
        return [r._mapping for r in rows]

    async def _pairing_take(self, code: str) -> Mapping[str, Any] | None:
        rows = await self.db.write_returning(
            pairing_requests.delete().where(P.code == code).returning(*pairing_requests.columns))
        return rows[0]._mapping if rows else None

    async def pairing_approve(self, code: str, approved_by: str) -> tuple[str, Mapping[str, Any] | None]:
        """Take the request of `code` and grant its user access, in one transaction. Returns
        ('approved', request with `granted_at`), ('expired', request) (dropped, nothing granted) or ('unknown', None)."""
        async with self.db.transaction():
            request = await self._pairing_take(code)
            if request is None:
                return "unknown", None
            if request["expires_at"] <= time.time():
                return "expired", request
            granted_at = time.time()
            await self.db.execute(self.db.upsert(allow_grants, {
                "platform": request["platform"], "user_id": request["user_id"],
                "display_name": request["display_name"], "approved_by": approved_by, "created_at": granted_at},
                ["platform", "user_id"]))
            return "approved", {**request, "granted_at": granted_at}

    async def pairing_reject(self, code: str) -> Mapping[str, Any] | None:
        """Drop a request without granting anything; the dropped row, or None."""
        return await self._pairing_take(code)

    async def grant_rows(self) -> list[Mapping[str, Any]]:
        """Every grant, oldest first."""
        return [r._mapping for r in await self.db.rows(sa.select(allow_grants).order_by(G.created_at))]

    async def grant_exists(self, platform: str, user_id: str) -> bool:
        return await self.db.one(sa.select(G.user_id).where(G.platform == platform, G.user_id == user_id)) is not None

    async def grant_delete(self, platform: str, user_id: str) -> bool:
        result = await self.db.execute(allow_grants.delete().where(G.platform == platform, G.user_id == user_id))
        return result.rowcount == 1
