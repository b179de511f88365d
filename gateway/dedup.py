"""Inbound deduplication: a redelivered platform event is answered once, across restarts.

The key is the platform's own update/event id (`InboundMessage.dedup_key`) or, when the adapter
has none, the chat and message id. Keys are inserted with `INSERT OR IGNORE` in the store, so a
second delivery (a webhook retried, a poll repeated after a restart) finds the key and is dropped.
Keys older than `keep_seconds` are pruned.
"""

from __future__ import annotations

import time

from adapters.base import InboundMessage
from gateway.store import SQLiteStore

DEFAULT_KEEP = 7 * 24 * 3600.0


def dedup_key(message: InboundMessage) -> str:
    return message.dedup_key or f"{message.chat_id}:{message.message_id}"


class Deduplicator:
    def __init__(self, store: SQLiteStore, *, keep_seconds: float = DEFAULT_KEEP) -> None:
        self.store = store
        self.keep_seconds = keep_seconds

    async def first_time(self, platform: str, key: str) -> bool:
        """Record `key`; True the first time it is seen, False for every redelivery."""
        if not key or key.endswith(":"):
            return True  # nothing to deduplicate on
        inserted = await self.store.execute_rowcount(
            "INSERT OR IGNORE INTO inbound_dedup (platform, key, created_at) VALUES (?, ?, ?)",
            (platform, key, time.time()))
        return inserted > 0

    async def forget(self, platform: str, key: str) -> None:
        """Drop `key`: a message that was refused (the gateway was stopping) is answered when redelivered."""
        await self.store.execute("DELETE FROM inbound_dedup WHERE platform = ? AND key = ?", (platform, key))

    async def prune(self) -> int:
        return await self.store.execute_rowcount(
            "DELETE FROM inbound_dedup WHERE created_at < ?", (time.time() - self.keep_seconds,))
