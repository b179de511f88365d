"""Browser logins to the dashboard and web chat: the rows of `web_sessions`.

A row holds the SHA-256 of the login cookie (never the cookie), the address it logged in from and
when it ends; `gateway/api/auth.py` makes and checks the cookies, this module only stores. Every
process sharing the store sees a login at once, and a logout or an expiry holds for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import web_sessions

W = web_sessions.c


@dataclass(frozen=True)
class WebLogin:
    token_hash: str
    address: str
    created_at: float
    expires_at: float


class WebLoginsStore:
    """Mixin of the store: table web_sessions."""

    db: Database

    async def web_login_add(self, token_hash: str, *, address: str, created_at: float, expires_at: float) -> None:
        await self.db.execute(web_sessions.insert().values(
            token_hash=token_hash, address=address, created_at=created_at, expires_at=expires_at))

    async def web_login_expiry(self, token_hash: str) -> float | None:
        """When the login with this cookie hash ends, or None when there is no such login."""
        value = await self.db.scalar(sa.select(W.expires_at).where(W.token_hash == token_hash))
        return None if value is None else float(value)

    async def web_login_remove(self, token_hash: str) -> bool:
        """End one login (logout); False when there was none."""
        return (await self.db.execute(web_sessions.delete().where(W.token_hash == token_hash))).rowcount == 1

    async def web_logins_prune(self, now: float) -> int:
        """Remove the logins that ended by `now`; how many."""
        return int((await self.db.execute(web_sessions.delete().where(W.expires_at <= now))).rowcount)

    async def web_logins(self) -> list[WebLogin]:
        """Every stored login, oldest first."""
        rows = await self.db.rows(sa.select(web_sessions).order_by(W.created_at, W.token_hash))
        return [WebLogin(r.token_hash, r.address, float(r.created_at), float(r.expires_at)) for r in rows]
