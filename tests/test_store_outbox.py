"""The outbox through gateway/store/outbox.py on both engines: what `hermes cron run` queues is
taken by one gateway only, queued once per idempotency key, withdrawn when nobody took it, and
forgotten by maintenance a day after it finished; one left in `sending` by a gateway killed
mid-send is given back once and sent by another."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

import gateway.outbox
from gateway.config import StoreConfig
from gateway.maintenance import DAY, run_maintenance
from gateway.outbox import relay_outbox
from gateway.store import StateStore, open_store
from gateway.store.outbox import MAX_ATTEMPTS


async def _drain(store: StateStore, process: str) -> list[int]:
    """Claim for `process` until the queue is empty; the ids it was given."""
    taken: list[int] = []
    while items := await store.outbox_claim(process, limit=3):
        taken += [i.id for i in items]
    return taken


async def test_two_clients_racing_for_twenty_messages_take_each_once(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        queued = [await first.outbox_put(f"telegram:{n}", f"report {n}", f"cron:{n}") for n in range(20)]
        workers = [(first if n % 2 else second, f"gw-{n}") for n in range(6)]
        taken = await asyncio.gather(*(_drain(store, process) for store, process in workers))
        every = [item for claims in taken for item in claims]
        assert sorted(every) == sorted(queued)                           # each taken, none twice
        for process, claims in zip((p for _, p in workers), taken, strict=True):
            for item_id in claims:
                item = await second.outbox_get(item_id)
                assert item is not None and item.state == "sending" and item.claimed_by == process
        assert await first.outbox_claim("late") == [] and await second.outbox_claim("late") == []
    finally:
        await first.close()
        await second.close()


async def test_one_idempotency_key_is_one_row_whoever_puts_it(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        ids = await asyncio.gather(*((first if n % 2 else second).outbox_put("slack:C1", f"digest {n}", "cron:j1:9am")
                                     for n in range(8)))
        assert len(set(ids)) == 1
        texts = {f"digest {n}" for n in range(8)}
        claimed = await second.outbox_claim("gw")
        assert [i.id for i in claimed] == ids[:1] and claimed[0].text in texts
        assert await first.outbox_put("slack:C1", "again", "cron:j1:9am") == ids[0]   # even once taken
        assert await first.outbox_claim("gw") == []
    finally:
        await first.close()
        await second.close()


async def test_expire_withdraws_a_message_nobody_took_and_not_one_a_gateway_took(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        untaken = await first.outbox_put("telegram:1", "late news", "k-untaken")
        assert await first.outbox_expire(untaken) is True
        item = await second.outbox_get(untaken)
        assert item is not None and item.state == "expired" and item.error == "no gateway took it in time"
        assert await second.outbox_claim("gw") == []                     # never sent late

        taken = await first.outbox_put("telegram:1", "on its way", "k-taken")
        assert [i.id for i in await second.outbox_claim("gw")] == [taken]
        assert await first.outbox_expire(taken) is False
        assert (await first.outbox_get(taken)).state == "sending"       # type: ignore[union-attr]

        past = await first.outbox_put("telegram:1", "too old", "k-past", ttl=0)
        assert await second.outbox_claim("gw") == []                     # past its time: not taken
        assert await first.outbox_expire(past) is True
    finally:
        await first.close()
        await second.close()


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


async def test_a_message_left_sending_by_a_killed_gateway_is_claimed_again_once(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        item_id = await first.outbox_put("telegram:7", "nightly report", "cron:nightly", ttl=600)
        [dead] = await first.outbox_claim("gw-killed")          # ... and the process is SIGKILLed mid-send
        assert dead.attempts == 1 and dead.state == "sending"
        assert (await second.outbox_reap(15)).requeued == 0      # a fresh claim is left alone
        assert await second.outbox_claim("gw-b") == []

        later = time.time() + 20
        reaped = await asyncio.gather(*((first if n % 2 else second).outbox_reap(15, now=later) for n in range(6)))
        assert sum(r.requeued for r in reaped) == 1 and sum(r.failed for r in reaped) == 0
        claims = await asyncio.gather(*((first if n % 2 else second).outbox_claim(f"gw-{n}") for n in range(6)))
        won = [(n, items) for n, items in enumerate(claims) if items]
        assert len(won) == 1
        winner, [again] = won[0]
        assert again.id == item_id and again.attempts == 2 and again.claimed_by == f"gw-{winner}"
        assert await first.outbox_touch([item_id], "gw-killed") == 0      # the old claim is fenced off
        assert await second.outbox_touch([item_id], f"gw-{winner}") == 1  # the live one renews it
        assert (await first.outbox_reap(15, now=time.time() + 10)).requeued == 0
        await second.outbox_finish(item_id, delivered=True)
        assert (await first.outbox_get(item_id)).state == "delivered"   # type: ignore[union-attr]
    finally:
        await first.close()
        await second.close()


async def test_a_stale_claim_fails_with_why_once_its_waiter_is_gone_or_its_attempts_are_spent(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        short = await store.outbox_put("telegram:7", "expires soon", "k-short", ttl=10)
        await store.outbox_claim("gw-killed")
        assert (await store.outbox_reap(15, now=time.time() + 20)).failed == 1
        item = await store.outbox_get(short)
        assert item is not None and item.state == "failed" and "too late to send again" in item.error

        crashing = await store.outbox_put("telegram:7", "kills its sender", "k-poison", ttl=3600)
        for n in range(MAX_ATTEMPTS):
            [claimed] = await store.outbox_claim(f"gw-{n}")
            assert claimed.attempts == n + 1
            reaped = await store.outbox_reap(15, now=time.time() + 20)
            assert (reaped.requeued, reaped.failed) == ((1, 0) if n + 1 < MAX_ATTEMPTS else (0, 1))
        item = await store.outbox_get(crashing)
        assert item is not None and item.state == "failed" and f"{MAX_ATTEMPTS} times" in item.error
        assert await store.outbox_claim("gw-next") == []
    finally:
        await store.close()


async def test_a_running_gateways_relay_sends_what_a_killed_one_left_sending(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.outbox, "SENDING_TIMEOUT", 0.5)
    monkeypatch.setattr(gateway.outbox, "REAP_EVERY", 0.1)
    killed, running = await open_store(store_url), await open_store(store_url)
    sent: list[tuple[str, str, str, str]] = []

    async def send_message(platform: str, chat_id: str, text: str, key: str = "") -> bool:
        sent.append((platform, chat_id, text, key))
        return True

    relay: asyncio.Task[None] | None = None
    try:
        item_id = await killed.outbox_put("telegram:7", "nightly report", "cron:nightly", ttl=600)
        await killed.outbox_claim("gw-killed")
        relay = asyncio.create_task(relay_outbox(running, send_message, "gw-running"))
        for _ in range(200):
            item = await killed.outbox_get(item_id)
            if item is not None and item.state == "delivered":
                break
            await asyncio.sleep(0.05)
        assert item is not None and (item.state, item.claimed_by, item.attempts) == ("delivered", "gw-running", 2)
        assert sent == [("telegram", "7", "nightly report", "cron:nightly")]
    finally:
        if relay is not None:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
        await killed.close()
        await running.close()
