"""The learning state in the store on both engines: two processes (two store clients on one
database) never run one review, and a team's spent daily budget defers its reviews in both."""

from __future__ import annotations

import asyncio

from gateway.learning.log import day_start
from gateway.store import open_store

SLICE = [{"role": "user", "content": "deploy staging"}, {"role": "assistant", "content": "done"}]


async def test_two_clients_racing_for_one_review_give_it_to_exactly_one(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        review_id = await first.review_enqueue("s1", "sales", "end_of_turn", SLICE, {"start_seq": 0})
        claims = await asyncio.gather(*(
            (first if n % 2 else second).claim_review(review_id, f"owner-{n}") for n in range(12)))
        won = [c for c in claims if c is not None]
        assert len(won) == 1
        seen = await second.review_get(review_id)
        assert seen is not None and seen.status == "running" and seen.attempts == 1
        assert seen.messages == SLICE
        # a finished review is not claimed again by either
        await first.review_set_status(review_id, "done")
        assert await second.claim_review(review_id, "late") is None
    finally:
        await first.close()
        await second.close()


async def test_a_budget_spent_through_one_client_defers_the_teams_reviews_in_the_other(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        checkpoint = await first.checkpoint_start("s1", "sales", "end_of_turn", "m")
        await first.checkpoint_add_tokens(checkpoint, 700, 300)  # the team spent 1000 today
        sales = await first.review_enqueue("s2", "sales", "end_of_turn", SLICE, {})
        support = await first.review_enqueue("s3", "support", "end_of_turn", SLICE, {})

        claim = await second.claim_review(sales, "owner-b", budget=1000, since=day_start())
        assert claim is not None and claim.deferred and claim.spent == 1000
        assert (await first.review_get(sales)).status == "deferred"  # type: ignore[union-attr]
        other = await second.claim_review(support, "owner-b", budget=1000, since=day_start())
        assert other is not None and not other.deferred and other.review.status == "running"  # another team's

        # the next day (a larger budget here) the deferred review runs, once
        assert await first.reviews_undefer() == 1
        later = await asyncio.gather(first.claim_review(sales, "a", budget=5000, since=day_start()),
                                     second.claim_review(sales, "b", budget=5000, since=day_start()))
        assert [c is not None and not c.deferred for c in later].count(True) == 1
    finally:
        await first.close()
        await second.close()


async def test_counters_slices_and_the_write_journal_survive_a_new_client(store_url: str) -> None:
    first = await open_store(store_url)
    try:
        session = await first.active_session("telegram:1", platform="telegram")
        for n in range(3):
            await first.add_message(session.id, {"role": "user", "content": f"step {n}"})
        assert await first.counters_tool_call(session.id, "") == 1
        assert await first.counters_tool_call(session.id, "") == 2
        await first.counters_user_turn(session.id, "")
        review_id = await first.review_enqueue(session.id, "", "mid_task", [], {"start_seq": 0})
        await first.review_record_write(review_id, {"kind": "memory", "text": "a"})
        await first.review_record_write(review_id, {"kind": "skill", "name": "b"})
    finally:
        await first.close()
    second = await open_store(store_url)
    try:
        counters = await second.learning_counters(session.id)
        assert (counters.tool_calls, counters.user_turns, counters.turn_seq) == (2, 1, 3)
        taken, start = await second.counters_take_slice(session.id, from_turn=False)
        assert [m["content"] for m in taken] == ["step 0", "step 1", "step 2"] and start == 0
        assert (await second.learning_counters(session.id)).reviewed_seq == 3
        assert await second.review_merge(review_id)  # folded: its messages count as unreviewed again
        assert (await second.learning_counters(session.id)).reviewed_seq == 0
        assert [w["kind"] for w in (await second.review_get(review_id)).writes] == ["memory", "skill"]  # type: ignore[union-attr]
        assert await second.first_notice_today("", "telegram:1", "2026-12-06")
        assert not await second.first_notice_today("", "telegram:1", "2026-12-06")
    finally:
        await second.close()
