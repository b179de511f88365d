"""Outbound delivery: the platform messages sent per idempotency key, and the undelivered ones.

`outbound_sent` maps an idempotency key (one chunk of one reply) to the platform's message id, so
a replayed turn edits the message it already posted instead of posting it again. `sent_record`
inserts if new on both engines (`insert_ignore`); given `ends_inbox`, it also deletes that
turn_inbox row in the same transaction, so "the answer reached the chat" and "the message is
answered" are committed together: after a crash a row is either still there (its answer was not
recorded as sent) or gone with the answer's message id recorded. `undelivered` keeps what could not be
delivered, with its error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import outbound_sent, turn_inbox, undelivered


@dataclass(frozen=True)
class SentRow:
    """A message the platform accepted: where it is, under which idempotency key."""

    platform: str
    chat_id: str
    message_id: str
    thread_id: str | None = None


class DeliveryStore:
    """Mixin of the store: tables outbound_sent and undelivered."""

    db: Database

    async def sent_get(self, key: str) -> SentRow | None:
        """The message sent under `key`, or None."""
        if not key:
            return None
        row = await self.db.one(sa.select(outbound_sent.c.platform, outbound_sent.c.chat_id,
                                          outbound_sent.c.message_id, outbound_sent.c.thread_id)
                                .where(outbound_sent.c.idempotency_key == key))
        return SentRow(row.platform, row.chat_id, row.message_id, row.thread_id) if row is not None else None

    async def sent_record(self, key: str, sent: SentRow, *, ends_inbox: int | None = None) -> None:
        """Record that `key` was delivered as `sent` (first record wins); with `ends_inbox`, delete
        that inbox row in the same transaction."""
        async with self.db.transaction():
            if key:
                await self.db.execute(self.db.insert_ignore(outbound_sent).values(
                    idempotency_key=key, platform=sent.platform, chat_id=sent.chat_id,
                    message_id=sent.message_id, thread_id=sent.thread_id, created_at=time.time()))
            if ends_inbox is not None:
                await self.db.execute(turn_inbox.delete().where(turn_inbox.c.id == ends_inbox))

    async def sent_prune(self, before: float) -> int:
        return (await self.db.execute(outbound_sent.delete().where(outbound_sent.c.created_at < before))).rowcount

    async def undelivered_add(self, *, platform: str, chat_id: str, thread_id: str | None, reply_to: str | None,
                              text: str, idempotency_key: str, error: str, attempts: int) -> None:
        await self.db.execute(undelivered.insert().values(
            platform=platform, chat_id=chat_id, thread_id=thread_id, reply_to=reply_to, text=text,
            idempotency_key=idempotency_key, error=error, attempts=attempts, created_at=time.time()))

    async def undelivered_rows(self, limit: int | None = None, *,
                               newest_first: bool = False) -> list[dict[str, Any]]:
        """Rows of `undelivered` (every column, by name), oldest first unless `newest_first`."""
        query = sa.select(undelivered).order_by(undelivered.c.id.desc() if newest_first else undelivered.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [dict(r._mapping) for r in await self.db.rows(query)]

    async def undelivered_count(self) -> int:
        return int(await self.db.scalar(sa.select(sa.func.count()).select_from(undelivered)) or 0)
