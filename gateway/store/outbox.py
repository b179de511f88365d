"""The outbox: messages handed from a process without platform connections to a running gateway.

`hermes cron run` runs a job in its own process, which has no Telegram, Discord or Slack
connection. It queues the result with `outbox_put` and waits; a gateway sharing the store claims
queued rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two gateways never take one row), sends
each through its adapters and records the outcome. A row nobody claimed before `expires_at` is
expired by the waiter, so a result is never delivered hours late by the next gateway to start.

A claim is renewed (`outbox_touch`) while its gateway is sending. A row whose claim went stale
because its gateway stopped mid-send (SIGKILL, power loss) is reaped by any gateway
(`outbox_reap`, one UPDATE per outcome, so two reapers give a row back once): queued again while
its waiter still waits and attempts are left, otherwise failed with why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import outbox


@dataclass(frozen=True)
class OutboxItem:
    """One queued message and what became of it."""

    id: int
    target: str
    text: str
    idempotency_key: str
    origin: str
    state: str
    error: str
    claimed_by: str
    attempts: int = 0


@dataclass(frozen=True)
class OutboxReaped:
    """What one `outbox_reap` did with stale claims."""

    requeued: int = 0
    failed: int = 0


MAX_ATTEMPTS = 3
"""Claims a message gets; a message whose gateway stopped this many times while sending it fails."""


def _item(row: sa.Row) -> OutboxItem:  # type: ignore[type-arg]
    return OutboxItem(row.id, row.target, row.text, row.idempotency_key, row.origin, row.state, row.error,
                      row.claimed_by, row.attempts)


class OutboxStore:
    """Mixin of the store: table outbox."""

    db: Database

    async def outbox_put(self, target: str, text: str, key: str, *, origin: str = "",
                         ttl: float = 60.0) -> int:
        """Queue `text` for `target` under idempotency key `key` (queued once: a second put of the
        same key returns the first row's id)."""
        now = time.time()
        async with self.db.transaction():
            await self.db.execute(self.db.insert_ignore(outbox, ["idempotency_key"]).values(
                target=target, text=text, idempotency_key=key, origin=origin, created_at=now,
                expires_at=now + ttl))
            return int(await self.db.scalar(sa.select(outbox.c.id).where(outbox.c.idempotency_key == key)))

    async def outbox_get(self, item_id: int) -> OutboxItem | None:
        row = await self.db.one(sa.select(outbox).where(outbox.c.id == item_id))
        return _item(row) if row is not None else None

    async def outbox_claim(self, process: str, limit: int = 20) -> list[OutboxItem]:
        """Take up to `limit` queued, unexpired rows for `process` (state `sending`, one more attempt),
        oldest first; the items are returned as claimed."""
        now = time.time()
        async with self.db.transaction():
            rows = await self.db.rows(self.db.claimable(
                sa.select(outbox).where(outbox.c.state == "queued", outbox.c.expires_at > now)
                .order_by(outbox.c.id).limit(limit)))
            if not rows:
                return []
            ids = [r.id for r in rows]
            await self.db.execute(outbox.update().where(outbox.c.id.in_(ids), outbox.c.state == "queued")
                                  .values(state="sending", claimed_by=process, claimed_at=now,
                                          attempts=outbox.c.attempts + 1))
        return [replace(_item(r), state="sending", claimed_by=process, attempts=r.attempts + 1) for r in rows]

    async def outbox_touch(self, item_ids: list[int], process: str) -> int:
        """Renew `process`'s claim on these rows while it sends them; how many it still holds (0 for a
        row that was reaped from it, so it must not send that one)."""
        if not item_ids:
            return 0
        result = await self.db.execute(outbox.update().where(
            outbox.c.id.in_(item_ids), outbox.c.state == "sending", outbox.c.claimed_by == process)
            .values(claimed_at=time.time()))
        return int(result.rowcount)

    async def outbox_reap(self, timeout: float, *, max_attempts: int = MAX_ATTEMPTS,
                          now: float | None = None) -> OutboxReaped:
        """Rows in `sending` whose claim is older than `timeout` seconds (their gateway stopped): back
        to the queue while unexpired with attempts left, else failed. Safe on every process at once."""
        now = time.time() if now is None else now
        stale = sa.and_(outbox.c.state == "sending", outbox.c.claimed_at < now - timeout)
        if await self.db.scalar(sa.select(outbox.c.id).where(stale).limit(1)) is None:
            return OutboxReaped()                 # the usual case, without taking SQLite's write lock
        async with self.db.transaction():
            late = await self.db.execute(outbox.update().where(stale, outbox.c.expires_at <= now).values(
                state="failed", finished_at=now,
                error="the gateway sending it stopped before it finished; too late to send again"))
            spent = await self.db.execute(outbox.update().where(stale, outbox.c.attempts >= max_attempts).values(
                state="failed", finished_at=now,
                error=f"the gateway sending it stopped before it finished, {max_attempts} times; not tried again"))
            requeued = await self.db.execute(outbox.update().where(stale).values(
                state="queued", claimed_by="", claimed_at=None))
        return OutboxReaped(requeued=int(requeued.rowcount), failed=int(late.rowcount) + int(spent.rowcount))

    async def outbox_finish(self, item_id: int, *, delivered: bool, error: str = "") -> None:
        await self.db.execute(outbox.update().where(outbox.c.id == item_id, outbox.c.state == "sending")
                              .values(state="delivered" if delivered else "failed", error=error[:500],
                                      finished_at=time.time()))

    async def outbox_expire(self, item_id: int) -> bool:
        """Withdraw a row nobody has claimed; False when a gateway already took it."""
        result = await self.db.execute(outbox.update().where(outbox.c.id == item_id, outbox.c.state == "queued")
                                       .values(state="expired", finished_at=time.time(),
                                               error="no gateway took it in time"))
        return bool(result.rowcount)

    async def outbox_prune(self, before: float) -> int:
        """Forget finished rows older than `before` (maintenance)."""
        return int((await self.db.execute(outbox.delete().where(
            outbox.c.state != "queued", outbox.c.state != "sending", outbox.c.created_at < before))).rowcount)
