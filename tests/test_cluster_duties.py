"""Several real `hermes gateway` processes on one PostgreSQL store act as one gateway.

Three (or two) processes share the store, the fake Telegram Bot API and the fake model; each has
its own home and HTTP port. What must run once runs once: only one process polls Telegram (the
fake refuses, and counts, a getUpdates that arrives while another is open); when the poller is
SIGKILLed another process polls within the lease time and nothing is answered twice; when
PostgreSQL ends the poller's lease connection (a network blip) it stops polling before another
one starts; a cron job fires once per scheduled time across a handover.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gateway.store import StateStore
from tests.approvals_support import wait_for
from tests.cluster_support import (
    USER,
    Member,
    add_interval_job,
    cluster_config,
    health,
    kill,
    metrics,
    owner_pid,
    pause_and_settle,
    run_hermes,
    scripted_echo,
    start_member,
    stop_member,
    tg,  # noqa: F401 - the fake Bot API with one poller allowed (a fixture)
)
from tests.fakes.model_server import FakeModelServer, text
from tests.fakes.telegram_server import FakeTelegramServer

POLLER = "telegram-poller"


def answers(tg: FakeTelegramServer) -> list[str]:
    return [m["text"] for m in tg.sent(USER) if m["text"].startswith("answer ")]


async def poller(pg_store: StateStore, members: list[Member]) -> Member | None:
    record = await pg_store.lease(POLLER)
    if record is None or not record.live():
        return None
    pid = owner_pid(record.owner)
    return next((m for m in members if m.pid == pid and m.process.returncode is None), None)


async def wait_for_poller(pg_store: StateStore, members: list[Member], timeout: float) -> Member:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await poller(pg_store, members)
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no live process polled Telegram within {timeout:.0f}s")


@pytest.mark.timeout(420)
async def test_one_process_polls_and_a_killed_poller_hands_over_without_a_double_answer(
        tmp_path: Path, postgres_url: str, pg_store: StateStore, model_server: FakeModelServer,
        tg: FakeTelegramServer) -> None:
    scripted_echo(model_server)
    config = cluster_config(postgres_url, model_server, tg)
    members: list[Member] = []
    try:
        for i in range(3):
            members.append(await start_member(tmp_path / f"member-{i}", config))
        reports = [await health(m) for m in members]
        polling = [m for m, r in zip(members, reports, strict=True) if POLLER in r["duties"]]
        assert len(polling) == 1, reports
        assert sorted(r["role"] for r in reports) == ["follower", "follower", "leader"]
        first = await poller(pg_store, members)
        assert first is polling[0]
        listed = json.loads(run_hermes(members[1].home, "status", "--json"))   # any member's view, from the store
        assert sorted(m["pid"] for m in listed if m["alive"]) == sorted(m.pid for m in members)
        assert [m["process"] for m in listed if m["role"] == "leader"] == [
            r["process"] for r in reports if r["role"] == "leader"]
        assert [m["pid"] for m in listed if POLLER in m["duties"]] == [first.pid]

        for n in range(1, 6):
            tg.queue_message(USER, USER, f"msg-{n}")
        await wait_for(lambda: len(answers(tg)) >= 5, timeout=120, what="the first five answers")
        last = tg.queue_message(USER, USER, "msg-6")
        await wait_for(lambda: "answer msg-6" in answers(tg), timeout=60, what="the answer to msg-6")
        # ... and recorded as answered: a kill inside the send call itself would make the next
        # holder post it again (the Bot API has no idempotency key; tests/test_chaos_recovery.py)
        deadline = time.monotonic() + 30
        while await pg_store.inbox_rows() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await pg_store.inbox_rows() == []

        killed = time.monotonic()
        kill(first)
        await first.process.wait()
        tg.redeliver(last)     # what the dead poller fetched may come again to the next one
        for n in range(7, 12):
            tg.queue_message(USER, USER, f"msg-{n}")
        second = await wait_for_poller(pg_store, members, timeout=15)
        handover = time.monotonic() - killed
        assert second is not first
        assert handover < 10, f"the poller's duty moved on only after {handover:.1f}s"
        await wait_for(lambda: len(answers(tg)) >= 11, timeout=120, what="the answers after the handover")
        await asyncio.sleep(2.0)   # time for a second answer, if one were coming

        seen = Counter(answers(tg))
        assert seen == Counter({f"answer msg-{n}": 1 for n in range(1, 12)}), seen
        assert answers(tg) == [f"answer msg-{n}" for n in range(1, 12)]   # one user: in order
        assert tg.overlaps == 0, "two processes polled at once"
        assert POLLER in (await health(second))["duties"]
        exposed = await metrics(second)
        assert f'hermes_duty_owned{{duty="{POLLER}"}} 1.0' in exposed
        assert f'hermes_duty_handovers_total{{duty="{POLLER}"}} 1.0' in exposed
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))


@pytest.mark.timeout(300)
async def test_a_terminated_lease_connection_stops_the_poller_before_another_polls(
        tmp_path: Path, postgres_url: str, pg_store: StateStore, model_server: FakeModelServer,
        tg: FakeTelegramServer) -> None:
    scripted_echo(model_server)
    config = cluster_config(postgres_url, model_server, tg)
    members: list[Member] = []
    try:
        for i in range(2):
            members.append(await start_member(tmp_path / f"member-{i}", config))
        tg.queue_message(USER, USER, "msg-1")
        await wait_for(lambda: answers(tg) == ["answer msg-1"], timeout=120, what="the first answer")
        before = await pg_store.lease(POLLER)
        assert before is not None
        holder = await pg_store.lock_holder(POLLER)
        assert holder is not None
        assert await pg_store.end_backend(holder)      # what a network blip looks like to the server

        async def polled_again() -> bool:
            record = await pg_store.lease(POLLER)
            return record is not None and record.generation > before.generation and record.live()

        deadline = time.monotonic() + 30      # the lease time and a new poller's start, on a loaded machine
        while not await polled_again():
            assert time.monotonic() < deadline, "nobody polled Telegram within 30 s of the blip"
            await asyncio.sleep(0.05)
        for n in range(2, 6):
            tg.queue_message(USER, USER, f"msg-{n}")
        await wait_for(lambda: len(answers(tg)) >= 5, timeout=120, what="the answers after the blip")
        await asyncio.sleep(2.0)
        assert answers(tg) == [f"answer msg-{n}" for n in range(1, 6)]
        assert tg.overlaps == 0, "the fenced poller was still polling when the new one started"
        roles = sorted([(await health(m))["role"] for m in members])
        assert roles == ["follower", "leader"]
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))


def _cron(home: Path, *args: str) -> str:
    return run_hermes(home, "cron", *args)


@pytest.mark.timeout(420)
async def test_a_cron_job_fires_once_per_time_across_processes_and_a_handover(
        tmp_path: Path, postgres_url: str, pg_store: StateStore, model_server: FakeModelServer,
        tg: FakeTelegramServer) -> None:
    config = cluster_config(postgres_url, model_server, tg)
    model_server.add(*[text("ticker ran")] * 20, purpose="cron")
    members: list[Member] = []
    try:
        for i in range(2):
            members.append(await start_member(tmp_path / f"member-{i}", config))
        job_id = await add_interval_job(pg_store, 5, name="ticker", prompt="say the time",
                                        target=f"telegram:{USER}")
        jobs = json.loads(_cron(members[0].home, "list", "--json"))
        assert [job["id"] for job in jobs] == [job_id]

        def fired() -> list[dict[str, object]]:
            return [m for m in tg.sent(USER) if "ticker ran" in m["text"]]

        await wait_for(fired, timeout=60, what="the first run of the job")
        owner = await pg_store.lease("cron-scheduler")
        assert owner is not None
        first = next(m for m in members if m.pid == owner_pid(owner.owner))
        reports = {m.pid: await health(m) for m in members}
        assert [pid for pid, r in reports.items() if "cron-scheduler" in r["duties"]] == [first.pid]
        kill(first)
        await first.process.wait()
        runs_before = len(fired())
        await wait_for(lambda: len(fired()) > runs_before, timeout=60, what="a run after the handover")
        survivor = next(m for m in members if m is not first)
        await pause_and_settle(pg_store, survivor.home, job_id)   # the history stops changing
        runs = json.loads(_cron(survivor.home, "runs", job_id, "--json"))
        shown = [(r["scheduled_time"], r["status"], r["error"]) for r in runs]
        scheduled = Counter(r["scheduled_time"] for r in runs)
        assert len(scheduled) >= 2 and all(count == 1 for count in scheduled.values()), shown
        # the run the killed owner was in (if its end was not recorded yet) is shown as interrupted
        assert {r["status"] for r in runs} <= {"ok", "interrupted"}, shown
        assert runs[0]["status"] == "ok", shown          # the newest: run by the new owner
        assert len(fired()) == len(runs), (fired(), shown)   # one message per scheduled time, never two
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))


@pytest.mark.timeout(180)
async def test_a_second_gateway_on_one_home_is_refused_and_told_how_to_run_several(
        home: Path, model_server: FakeModelServer) -> None:
    from tests.conftest import model_config, write_config
    from tests.fakes.gateway_harness import api_section, start_gateway_process

    write_config(home, model_config(model_server) + api_section())
    first = await start_gateway_process(home)
    try:
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "gateway", env={**os.environ, "HERMES_HOME": str(home)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _out, err = await asyncio.wait_for(second.communicate(), 120)
        assert second.returncode == 1
        message = err.decode()
        assert f"a gateway is already running on {home} (pid {first.pid})" in message
        if os.environ.get("HERMES_STORE_URL"):   # --store=postgresql: one home per process
            assert "needs its own HERMES_HOME" in message
        else:
            assert "Several gateway processes need a PostgreSQL store" in message
        assert first.returncode is None      # the running one is untouched
    finally:
        first.send_signal(signal.SIGTERM)
        await asyncio.wait_for(first.wait(), 60)


@pytest.mark.timeout(400)
async def test_one_process_holds_the_discord_gateway_connection_and_a_killed_one_hands_it_over(
        tmp_path: Path, postgres_url: str, pg_store: StateStore, model_server: FakeModelServer) -> None:
    """Every connection of a Discord shard receives every event: of two processes exactly one
    connects the gateway; the other sends only; after a SIGKILL the other one connects."""
    from tests.conftest import model_config
    from tests.fakes.discord_server import running_fake_discord
    from tests.fakes.gateway_harness import api_section

    channel, user = "940000000000000001", "950000000000000001"
    scripted_echo(model_server)
    async with running_fake_discord() as discord:
        config = (f'[store]\nurl = "{postgres_url}"\n' + model_config(model_server) + "stream = false\n"
                  + api_section() + f'[discord]\nenabled = true\ntoken = "{discord.token}"\n'
                  f'api_base = "{discord.api_base}"\ngateway_url = "{discord.gateway_url}"\n'
                  f'allow_users = ["{user}"]\n')
        members: list[Member] = []
        try:
            for i in range(2):
                members.append(await start_member(tmp_path / f"member-{i}", config))
            await discord.wait_connected(identifies=1, timeout=30)
            shard = "discord-shard-0"
            reports = [await health(m) for m in members]
            holders = [m for m, r in zip(members, reports, strict=True) if shard in r["duties"]]
            assert len(holders) == 1 and discord.identifies == 1 and discord.open_connections == 1, reports

            def answers() -> list[str]:
                return [m["content"] for m in discord.sent(channel) if m["content"].startswith("answer ")]

            discord.queue_message(channel, user, "msg-1")
            await wait_for(lambda: answers() == ["answer msg-1"], timeout=120, what="the first answer")
            killed = time.monotonic()
            kill(holders[0])
            await holders[0].process.wait()
            await discord.wait_connected(identifies=2, timeout=30)
            took = time.monotonic() - killed
            assert took < 10, f"the other process connected only after {took:.1f}s"
            discord.queue_message(channel, user, "msg-2")
            await wait_for(lambda: len(answers()) >= 2, timeout=120, what="the answer after the handover")
            await asyncio.sleep(2.0)
            assert answers() == ["answer msg-1", "answer msg-2"]
            assert discord.most_open == 1, "two processes held the gateway connection at once"
        finally:
            await asyncio.gather(*(stop_member(m) for m in members))


@pytest.mark.timeout(400)
async def test_two_processes_share_the_discord_shards_and_one_takes_both_when_the_other_dies(
        tmp_path: Path, postgres_url: str, pg_store: StateStore, model_server: FakeModelServer) -> None:
    """A bot of two shards on two processes: each process holds one shard (never two connections
    of one shard), each guild's message is answered once whichever shard brings it, and after a
    SIGKILL the survivor holds both shards."""
    from tests.conftest import model_config
    from tests.fakes.discord_server import BOT_ID, GUILD_2_ID, GUILD_ID, TEXT_CHANNEL_2_ID, TEXT_CHANNEL_ID
    from tests.fakes.discord_server import running_fake_discord
    from tests.fakes.gateway_harness import api_section

    user = "950000000000000001"
    scripted_echo(model_server)
    async with running_fake_discord() as discord:
        discord.shard_count = 2
        config = (f'[store]\nurl = "{postgres_url}"\n' + model_config(model_server) + "stream = false\n"
                  + api_section() + f'[discord]\nenabled = true\ntoken = "{discord.token}"\n'
                  f'api_base = "{discord.api_base}"\ngateway_url = "{discord.gateway_url}"\n'
                  f'shard_count = 2\nallow_users = ["{user}"]\n'
                  f'allow_channels = ["{TEXT_CHANNEL_ID}", "{TEXT_CHANNEL_2_ID}"]\n')
        members: list[Member] = []

        async def holders() -> dict[str, list[int]]:
            live = [m for m in members if m.process.returncode is None]
            reports = [(m.pid, await health(m)) for m in live]
            return {shard: [pid for pid, r in reports if shard in r["duties"]]
                    for shard in ("discord-shard-0", "discord-shard-1")}

        def answers(channel: str) -> list[str]:
            return [m["content"] for m in discord.sent(channel) if m["content"].startswith("answer ")]

        try:
            for i in range(2):
                members.append(await start_member(tmp_path / f"member-{i}", config))

            deadline = time.monotonic() + 60
            while True:         # the first process takes both; the second's share comes within seconds
                held = await holders()
                if all(len(pids) == 1 for pids in held.values()) and len({p[0] for p in held.values()}) == 2:
                    break
                assert time.monotonic() < deadline, f"the shards were not shared out: {held}"
                await asyncio.sleep(0.2)
            assert discord.connected(0) and discord.connected(1)

            discord.queue_message(TEXT_CHANNEL_ID, user, f"<@{BOT_ID}> msg-11", guild=GUILD_ID, mention_bot=True)
            discord.queue_message(TEXT_CHANNEL_2_ID, user, f"<@{BOT_ID}> msg-21", guild=GUILD_2_ID, mention_bot=True)
            await wait_for(lambda: answers(TEXT_CHANNEL_ID) and answers(TEXT_CHANNEL_2_ID), timeout=120,
                           what="an answer in each guild")

            held = await holders()
            victim = next(m for m in members if m.pid == held["discord-shard-1"][0])
            killed = time.monotonic()
            kill(victim)
            await victim.process.wait()
            await discord.wait_connected(identifies=2, timeout=30, shard=1)
            took = time.monotonic() - killed
            assert took < 10, f"shard 1 was connected again only after {took:.1f}s"
            survivor = next(m for m in members if m is not victim)
            both = {"discord-shard-0": [survivor.pid], "discord-shard-1": [survivor.pid]}
            deadline = time.monotonic() + 20
            while (held := await holders()) != both:     # the duty is ours once READY came
                assert time.monotonic() < deadline, held
                await asyncio.sleep(0.2)
            discord.queue_message(TEXT_CHANNEL_2_ID, user, f"<@{BOT_ID}> msg-22", guild=GUILD_2_ID, mention_bot=True)
            await wait_for(lambda: len(answers(TEXT_CHANNEL_2_ID)) >= 2, timeout=120,
                           what="the answer in guild 2 after the handover")
            await asyncio.sleep(2.0)
            assert answers(TEXT_CHANNEL_ID) == ["answer msg-11"]
            assert answers(TEXT_CHANNEL_2_ID) == ["answer msg-21", "answer msg-22"]
            assert all(s.most_open == 1 for s in discord.shards.values()), "two connections of one shard at once"
        finally:
            await asyncio.gather(*(stop_member(m) for m in members))
