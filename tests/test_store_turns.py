"""Turn claims through gateway/store/turns.py on both engines: one owner per session in the whole
cluster, a dead owner's claim taken over after its TTL, /stop requests, and the sessions left
without a live claim."""

from __future__ import annotations

import asyncio

from gateway.store import open_store


async def test_two_processes_racing_for_sessions_get_one_owner_each(store_url: str) -> None:
    a, b = await open_store(store_url), await open_store(store_url)
    try:
        for round_ in range(20):
            key = f"telegram:dm:{round_}"
            won = await asyncio.gather(a.turn_claim(key, "process-a", 6.0), b.turn_claim(key, "process-b", 6.0))
            assert sum(claim is not None for claim in won) == 1, won
    finally:
        await a.close()
        await b.close()


async def test_a_released_claim_is_free_and_a_dead_owners_claim_is_taken_over_after_its_ttl(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        first = await store.turn_claim("s", "a", 6.0)
        assert first is not None and first.generation == 1 and first.taken_over_from == ""
        assert await store.turn_claim("s", "b", 6.0) is None          # a lives: b waits
        assert await store.turn_release("s", "a", first.generation)
        second = await store.turn_claim("s", "b", 0.2)                  # released: free, nobody died
        assert second is not None and second.generation == 2 and second.taken_over_from == ""
        await asyncio.sleep(0.3)                                        # b stops renewing (it died)
        third = await store.turn_claim("s", "a", 6.0)
        assert third is not None and third.generation == 3 and third.taken_over_from == "b"
        assert not await store.turn_release("s", "b", second.generation)   # too late: not b's any more
        assert [c.session_key for c in await store.turn_claims_renew("b", 6.0)] == []
        assert [(c.session_key, c.generation) for c in await store.turn_claims_renew("a", 6.0)] == [("s", 3)]
    finally:
        await store.close()


async def test_a_stop_request_reaches_the_owner_through_its_renewal(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        assert not await store.turn_request_stop("s")                  # nobody runs it
        claim = await store.turn_claim("s", "a", 6.0)
        assert claim is not None
        assert await store.turn_request_stop("s")
        assert [c.stop_requested for c in await store.turn_claims_renew("a", 6.0)] == [True]
        await store.turn_stop_seen("s", "a", claim.generation)
        assert [c.stop_requested for c in await store.turn_claims_renew("a", 6.0)] == [False]
    finally:
        await store.close()


async def test_orphans_are_the_sessions_with_waiting_rows_and_no_live_claim(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        first = await store.inbox_take("telegram", "1", "{}", session_key="s1")
        await store.inbox_take("telegram", "2", "{}", session_key="s2")
        await store.inbox_take("telegram", "3", "{}", session_key="s1")
        assert await store.turn_orphans() == ["s1", "s2"]
        await store.turn_claim("s1", "a", 6.0)
        assert await store.turn_orphans() == ["s2"]
        row = await store.inbox_next("s1")
        assert row is not None and row.id == first                      # the session's oldest row
        await store.turn_claim("s2", "b", 6.0)
        assert await store.turn_claims_expire_others("a") == 1           # SQLite's start: b is dead
        assert await store.turn_orphans() == ["s2"]
        assert (await store.turn_claim("s2", "a", 6.0)).taken_over_from == "b"  # type: ignore[union-attr]
    finally:
        await store.close()
