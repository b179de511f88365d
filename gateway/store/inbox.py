"""The turn inbox and inbound dedup: received messages until answered, and the platform ids seen.

`inbox_take` records the message and its dedup key in one transaction, only when the key is new:
a message is taken once and never lost between "seen" and "to be answered". (Before Alembic a
SQLite trigger recorded the key; revision 0002 drops it, so both engines do it here.)

`inbox_begin` marks a row's turn as started: it counts the attempt and, the first time, remembers
the session and the seq its first message will get; on a later attempt in that session it
deactivates every message from that seq on (the interrupted run's user message, tool calls and
partial answer), in the same transaction, so the re-run sees the conversation up to its own
message only.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import inbound_dedup, messages, turn_inbox
from gateway.store.sessions import last_seq


class InboxStore:
    """Mixin of the store: tables turn_inbox and inbound_dedup."""

    db: Database

    async def dedup_record(self, platform: str, key: str, at: float | None = None) -> bool:
        """Record a dedup key; True when it is new."""
        result = await self.db.execute(self.db.insert_ignore(inbound_dedup).values(
            platform=platform, key=key, created_at=time.time() if at is None else at))
        return result.rowcount > 0

    async def dedup_forget(self, platform: str, key: str) -> None:
        await self.db.execute(inbound_dedup.delete().where(
            inbound_dedup.c.platform == platform, inbound_dedup.c.key == key))

    async def dedup_prune(self, before: float) -> int:
        return (await self.db.execute(inbound_dedup.delete().where(inbound_dedup.c.created_at < before))).rowcount

    async def inbox_take(self, platform: str, key: str, message: str, session_key: str | None = None) -> int | None:
        """Insert an inbox row (and record `key` when it is not empty) unless the key was seen;
        the row id, or None for a duplicate. `session_key` puts it in that session's queue."""
        now = time.time()
        async with self.db.transaction():
            if key and not await self.dedup_record(platform, key, now):
                return None
            rows = await self.db.write_returning(turn_inbox.insert().values(
                platform=platform, dedup=key, message=message, created_at=now,
                session_key=session_key).returning(turn_inbox.c.id))
            return int(rows[0][0])

    async def inbox_done(self, inbox_id: int) -> None:
        await self.db.execute(turn_inbox.delete().where(turn_inbox.c.id == inbox_id))

    async def inbox_rows(self) -> list[Any]:
        """Every row (id, message, attempts), oldest first."""
        return await self.db.rows(sa.select(turn_inbox.c.id, turn_inbox.c.message, turn_inbox.c.attempts)
                                  .order_by(turn_inbox.c.id))

    async def inbox_begin(self, inbox_id: int, session_id: str) -> bool:
        """The row's turn starts in `session_id`: count the attempt; True when an earlier attempt in
        that session was rewound (its messages deactivated)."""
        async with self.db.transaction():
            row = await self.db.one(sa.select(turn_inbox.c.session_id, turn_inbox.c.start_seq)
                                    .where(turn_inbox.c.id == inbox_id).with_for_update())
            if row is None:
                return False
            rewound = False
            if row.session_id == session_id and row.start_seq is not None:
                result = await self.db.execute(messages.update().where(
                    messages.c.session_id == session_id, messages.c.seq >= row.start_seq,
                    messages.c.active == 1).values(active=0))
                rewound = result.rowcount > 0
                values: dict[str, Any] = {}
            else:
                values = {"session_id": session_id, "start_seq": last_seq(session_id) + 1}
            await self.db.execute(turn_inbox.update().where(turn_inbox.c.id == inbox_id)
                                  .values(attempts=turn_inbox.c.attempts + 1, **values))
            return rewound
