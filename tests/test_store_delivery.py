"""The delivery tables through gateway/store/delivery.py on both engines: sent keys, undelivered,
and the record of an answer that ends its inbox row in the same transaction."""

from __future__ import annotations

import pytest

from gateway.store import open_store
from gateway.store.delivery import SentRow


async def test_a_sent_key_is_recorded_once_and_read_back(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        assert await store.sent_get("telegram:9:0") is None
        await store.sent_record("telegram:9:0", SentRow("telegram", "42", "100", None))
        await store.sent_record("telegram:9:0", SentRow("telegram", "42", "999", None))   # first record wins
        assert await store.sent_get("telegram:9:0") == SentRow("telegram", "42", "100", None)
        assert await store.sent_prune(before=0.0) == 0
        assert await store.sent_prune(before=4e9) == 1 and await store.sent_get("telegram:9:0") is None
    finally:
        await store.close()


async def test_recording_the_answer_ends_the_inbox_row_in_the_same_transaction(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        row = await store.inbox_take("telegram", "5001", "{}")
        assert row is not None
        await store.sent_record("telegram:5001:0:0", SentRow("telegram", "42", "101", "7"), ends_inbox=row)
        assert await store.inbox_rows() == []
        assert await store.sent_get("telegram:5001:0:0") == SentRow("telegram", "42", "101", "7")

        other = await store.inbox_take("telegram", "5002", "{}")
        with pytest.raises(RuntimeError):
            async with store.db.transaction():
                await store.sent_record("telegram:5002:0:0", SentRow("telegram", "42", "102"), ends_inbox=other)
                raise RuntimeError("the commit never happens")
        assert [r.id for r in await store.inbox_rows()] == [other]        # neither the row nor the key went
        assert await store.sent_get("telegram:5002:0:0") is None
    finally:
        await store.close()


async def test_undelivered_rows_newest_first_and_counted(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        for i in range(3):
            await store.undelivered_add(platform="slack", chat_id="C1", thread_id=None, reply_to=None,
                                        text=f"text {i}", idempotency_key=f"k{i}", error="503", attempts=5)
        assert await store.undelivered_count() == 3
        assert [r["text"] for r in await store.undelivered_rows()] == ["text 0", "text 1", "text 2"]
        assert [r["text"] for r in await store.undelivered_rows(2, newest_first=True)] == ["text 2", "text 1"]
    finally:
        await store.close()
