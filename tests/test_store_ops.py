"""Cron, approvals and pairing state in the store on both engines: two store clients on one
database (two gateway processes) race for the same claim and exactly one wins."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store import open_store

JOB = {"name": "digest", "schedule": "0 9 * * *", "kind": "cron", "timezone": "UTC", "prompt": "p",
       "target": "telegram:42", "owner": "cli", "created_at": 1.0, "updated_at": 1.0}


async def test_one_scheduled_run_is_claimed_once_across_two_clients(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        await first.cron_job_insert(id="j1", **JOB)
        when = "2026-11-01T05:30:00.000000+00:00"
        claims = await asyncio.gather(*((first if n % 2 else second).cron_run_claim("j1", when, "schedule")
                                        for n in range(10)))
        won = [c for c in claims if c is not None]
        assert len(won) == 1
        assert await second.cron_run_skip("j1", when, "missed") is False     # already recorded
        assert await second.cron_last_scheduled("j1") == when
        running = await first.cron_running("j1", started_after=0)
        assert running is not None and running["id"] == won[0]
        await second.cron_run_finish(won[0], status="ok", output_excerpt="done")
        assert await first.cron_running("j1", started_after=0) is None
        assert [(r["status"], r["output_excerpt"]) for r in await first.cron_run_rows("j1")] == [("ok", "done")]
    finally:
        await first.close()
        await second.close()


async def test_a_job_put_over_an_existing_one_keeps_its_runs_and_delete_takes_them(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        await store.cron_job_insert(id="j1", **JOB)
        run_id = await store.cron_run_claim("j1", "2026-11-01T05:30:00.000000+00:00", "schedule")
        assert run_id is not None
        count, latest = await store.cron_version()
        await store.cron_job_put({**JOB, "id": "j1", "prompt": "new prompt", "updated_at": 5.0, "unknown": 1})
        assert (await store.cron_job_row("j1"))["prompt"] == "new prompt"
        assert await store.cron_version() == (count, 5.0) != (count, latest)
        assert len(await store.cron_run_rows("j1")) == 1
        assert await store.cron_abandon_stale(10**12, "gone") == 1
        assert (await store.cron_run_rows("j1"))[0]["status"] == "abandoned"
        await store.cron_job_delete("j1")
        assert await store.cron_job_row("j1") is None and await store.cron_run_rows("j1") == []
        assert await store.cron_job_update("j1", paused=1) is False
    finally:
        await store.close()


async def test_two_admins_allowing_one_rule_at_once_leave_one_rule(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        await first.approval_request_insert("a1", session_id="s1", platform="telegram", chat_id="c", user_id="u",
                                            tool="terminal", description="rm -rf build", rule="rm -rf")
        added = await asyncio.gather(*((first if n % 2 else second).approval_rule_add("", "terminal", "rm -rf",
                                                                                      f"admin-{n}")
                                       for n in range(6)))
        assert added.count(True) == 1
        assert await second.approval_rule_scopes("s1", "terminal", "rm -rf") == {"always"}
        assert await second.approval_rule_scopes("s1", "terminal", "rm -r") == set()
        assert await first.approval_rule_add("s2", "terminal", "rm -r", "admin") is True
        assert await second.approval_rule_scopes("s2", "terminal", "rm -r") == {"session"}
        assert await second.approval_rule_scopes("s1", "terminal", "rm -r") == set()   # another session's
        await second.approval_request_answer("a1", outcome="allowed", scope="rule", answered_by="always")
        [request] = await first.approval_request_rows(session_id="s1")
        assert (request["outcome"], request["scope"], request["answered_by"]) == ("allowed", "rule", "always")
        assert request["answered_at"] is not None
    finally:
        await first.close()
        await second.close()


async def test_an_approval_answered_at_once_on_two_processes_takes_the_first_answer_only(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        await first.approval_request_insert("a2", session_id="s1", platform="slack", chat_id="D1", user_id="U1",
                                            tool="terminal", description="rm -rf build", rule="rm -rf")
        [waiting] = await second.approval_requests_waiting("slack", "D1", since=0)
        assert waiting["id"] == "a2"
        answers = [("approved", "slack:U1"), ("denied", "slack:UADMIN"), ("timeout", "")] * 3
        taken = await asyncio.gather(*((first if n % 2 else second).approval_request_answer(
            "a2", outcome=outcome, answered_by=by) for n, (outcome, by) in enumerate(answers)))
        assert taken.count(True) == 1
        row = await first.approval_request_get("a2")
        assert row is not None and (row["outcome"], row["answered_by"]) == answers[taken.index(True)]
        assert await second.approval_requests_waiting("slack", "D1", since=0) == []
        assert await first.approval_request_get("a9") is None
    finally:
        await first.close()
        await second.close()


async def test_one_user_gets_one_code_and_one_code_is_approved_once_across_two_clients(store_url: str) -> None:
    from gateway.pairing import Pairing, PairingError

    first, second = await open_store(store_url), await open_store(store_url)
    try:
        codes = await asyncio.gather(*(Pairing(first if n % 2 else second).request("telegram", "42", "Ann", "c1")
                                       for n in range(8)))
        assert len(set(codes)) == 1
        assert [r.code for r in await Pairing(second).pending()] == codes[:1]
        outcomes = await asyncio.gather(*(Pairing(first if n % 2 else second).approve(codes[0].lower(),
                                                                                      approved_by=f"admin-{n}")
                                          for n in range(4)), return_exceptions=True)
        granted = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(granted) == 1 and all(isinstance(o, PairingError) for o in outcomes if o not in granted)
        assert await Pairing(second).is_approved("telegram", "42")
        assert [(g.user_id, g.display_name) for g in await Pairing(first).grants()] == [("42", "Ann")]
        assert await Pairing(first).pending() == []
        # an expired code is replaced by a new one, and approving the old one fails
        old = await Pairing(first, ttl=-1).request("slack", "U1")
        new = await Pairing(first).request("slack", "U1")
        assert new != old
        with pytest.raises(PairingError, match="no pending pairing code"):
            await Pairing(second).approve(old)
        expired = await Pairing(first, ttl=-1).request("slack", "U2")
        with pytest.raises(PairingError, match="has expired"):
            await Pairing(second).approve(expired)
        assert (await Pairing(first).reject(new)).user_id == "U1"
        assert [g.user_id for g in await Pairing(second).revoke("telegram:42")] == ["42"]
        assert not await Pairing(first).is_approved("telegram", "42")
    finally:
        await first.close()
        await second.close()


async def test_sends_paced_from_two_processes_share_one_budget(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        waits = await asyncio.gather(*((first if n % 2 else second).pace_reserve("telegram:42", 1.0, 3)
                                       for n in range(8)))
        # a burst of 3 at once, then one a second, whichever process sends
        assert [round(w) for w in sorted(waits)] == [0, 0, 0, 1, 2, 3, 4, 5]
        assert await first.pace_reserve("telegram:43", 1.0, 3) == 0          # another chat: its own budget
        assert await second.pace_prune(before=10**10) == 2
        assert await first.pace_reserve("telegram:42", 1.0, 3) == 0          # forgotten: paces from now
    finally:
        await first.close()
        await second.close()
