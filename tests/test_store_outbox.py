"""The outbox through gateway/store/outbox.py on both engines: what `hermes cron run` queues is
taken by one gateway only, queued once per idempotency key, withdrawn when nobody took it, and
forgotten by maintenance a day after it finished."""

from __future__ import annotations

import logging
import time

import pytest

from gateway.config import StoreConfig
from gateway.maintenance import DAY, run_maintenance
from gateway.store import open_store


async def test_maintenance_forgets_finished_rows_after_a_day_and_keeps_waiting_ones(
        store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    store = await open_store(store_url)
    try:
        delivered = await store.outbox_put("telegram:1", "sent", "k-delivered", ttl=60)
        failed = await store.outbox_put("telegram:1", "refused", "k-failed", ttl=60)
        taking = await store.outbox_put("telegram:1", "being sent", "k-sending", ttl=60)
        assert [i.id for i in await store.outbox_claim("gw-1", limit=3)] == [delivered, failed, taking]
        await store.outbox_finish(delivered, delivered=True)
        await store.outbox_finish(failed, delivered=False, error="chat not found")
        expired = await store.outbox_put("telegram:1", "nobody took it", "k-expired", ttl=60)
        assert await store.outbox_expire(expired) is True
        waiting = await store.outbox_put("telegram:1", "still queued", "k-queued", ttl=60)

        settings = StoreConfig(retention_days=0)          # transcripts kept; the outbox is pruned anyway
        within_the_day = await run_maintenance(store, settings, now=time.time() + DAY - 600)
        assert within_the_day.outbox_forgotten == 0
        assert (await store.outbox_get(delivered)).state == "delivered"   # type: ignore[union-attr]

        with caplog.at_level(logging.INFO, logger="gateway.maintenance"):
            report = await run_maintenance(store, settings, now=time.time() + DAY + 600)
        assert report.outbox_forgotten == 3
        assert "3 finished outbox rows forgotten" in caplog.text
        for gone in (delivered, failed, expired):
            assert await store.outbox_get(gone) is None
        kept = {i: await store.outbox_get(i) for i in (taking, waiting)}
        assert [(k.state if k else None) for k in kept.values()] == ["sending", "queued"]
    finally:
        await store.close()
