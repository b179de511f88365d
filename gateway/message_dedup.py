"""Inbound deduplication: a redelivered platform event is answered once, across restarts.

The key is the platform's own update/event id (`InboundMessage.dedup_key`) or, when the adapter
has none, the chat and message id. Keys are inserted if new (the store's `insert_ignore`), so a
second delivery (a webhook retried, a poll repeated after a restart) finds the key and is dropped.
Keys older than `keep_seconds` are pruned.
"""

from __future__ import annotations

import time

from adapters.base import InboundMessage
from gateway.store import StateStore

DEFAULT_KEEP = 7 * 24 * 3600.0


def dedup_key(message: InboundMessage) -> str:
    return message.dedup_key or f"{message.chat_id}:{message.message_id}"


class MessageDeduplicator:
    """Drops platform redeliveries: a message (update, event, message id) is taken once."""

    def __init__(self, store: StateStore, *, keep_seconds: float = DEFAULT_KEEP) -> None:
        self.store = store
        self.keep_seconds = keep_seconds

    async def first_time(self, platform: str, key: str) -> bool:
        """Record `key`; True the first time it is seen, False for every redelivery."""
        if not key or key.endswith(":"):
            return True  # nothing to deduplicate on
        return await self.store.dedup_record(platform, key)

    async def forget(self, platform: str, key: str) -> None:
        """Drop `key`: a message that was refused (the gateway was stopping) is answered when redelivered."""
        await self.store.dedup_forget(platform, key)

    async def prune(self) -> int:
        return await self.store.dedup_prune(time.time() - self.keep_seconds)
