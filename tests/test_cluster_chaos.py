"""Cluster chaos: three real `hermes gateway` processes on PostgreSQL, the leader and a follower
SIGKILLed and restarted 5 times while 30 users send 300 messages and the API is under load.

20 users talk over the fake Telegram Bot API (one poller in the cluster, a duty), 10 over Slack
HTTP events posted to a random live process (as behind a load balancer; an event that hit a
process as it died is posted again to another, as Slack retries what was not acknowledged), and a
client keeps two `/v1/chat/completions` requests in flight on random live processes. A cron job
fires every 10 seconds. At the end:
- every message is answered exactly once, and each user's answers come in the order sent;
- a user hears at most one "interrupted" notice per kill round;
- every API request that reached a process that stayed up got its own answer (200), never a 5xx;
- the cron job ran once per scheduled time, each run delivered once, across the handovers;
- nothing is left in the inbox.

One kind of double is the platform's and is counted apart, as in tests/test_chaos_recovery.py:
a kill inside a send call (the platform carried it out, its message id never reached the store)
makes the next holder post that answer again; neither Bot API has an idempotency key. Such a
double is recognised by its first copy's message id missing from the store, and its first copy
must have reached the platform just before a kill (within SEND_WINDOW seconds): a process runs
many sessions at once, so one kill may cut several sends, but a copy posted anywhere else in
time is a real double. The seed is `HERMES_CHAOS_SEED` (default 25); counts and timings are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.store import StateStore
from tests.approvals_support import wait_for
from tests.cluster_support import (  # noqa: F401 - the fake platforms (fixtures)
    Member,
    add_interval_job,
    health,
    kill,
    pause_and_settle,
    run_hermes,
    slack,
    start_member,
    stop_member,
    tg,
)
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section
from tests.fakes.model_server import FakeModelServer, Reply, text
from tests.fakes.slack_server import FakeSlackServer, post_event
from tests.fakes.telegram_server import FakeTelegramServer

SEED = int(os.environ.get("HERMES_CHAOS_SEED", "25"))
TG_USERS = list(range(2001, 2021))
SLACK_USERS = [f"U{3001 + i}" for i in range(10)]
PER_USER = 10                      # 30 users x 10 = 300 messages
KILL_ROUNDS = 5
PAUSE = 0.15                       # the model's time per answer
SECRET = "chaos-signing-secret"
TAG = re.compile(r"(?:T\d{4}|U\d{4}|A)-\d+")
CRON = "ticker ran"
SEND_WINDOW = 2.0                  # a cut send reached the platform at most this long before its kill


def tagged(body: dict[str, Any]) -> Reply:
    """`answer <tag>` for the tag in the last user message, after a short pause."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            found = TAG.findall(str(message.get("content")))
            return Reply(content=f"answer {found[-1] if found else '?'}", delay=PAUSE)
    return Reply(content="answer ?", delay=PAUSE)


def config(store_url: str, model_server: FakeModelServer, tg: FakeTelegramServer, slack: FakeSlackServer) -> str:
    quoted = ", ".join(f'"{u}"' for u in SLACK_USERS)
    tg_quoted = ", ".join(f'"{u}"' for u in TG_USERS)
    return (f'[store]\nurl = "{store_url}"\n' + model_config(model_server) + "stream = false\n" + api_section()
            + f'[telegram]\nenabled = true\ntoken = "{tg.token}"\napi_base = "{tg.api_base}"\n'
              f'poll_timeout = 0.5\nallow_users = [{tg_quoted}]\n'
            + f'[slack]\nenabled = true\nmode = "http"\ntoken = "{slack.bot_token}"\n'
              f'app_token = "{slack.app_token}"\napi_base = "{slack.api_base}"\nsigning_secret = "{SECRET}"\n'
              f'allow_users = [{quoted}]\n')


@dataclass
class Cluster:
    """Three member slots; a killed member is replaced by a new process on the same home."""

    tmp_path: Path
    config_text: str
    rng: random.Random
    members: list[Member] = field(default_factory=list)
    kills: int = 0
    killed_at: list[float] = field(default_factory=list)      # time.monotonic() of each kill round
    restarts: list[float] = field(default_factory=list)

    def live(self) -> list[Member]:
        return [m for m in self.members if m.process.returncode is None]

    async def start(self, slot: int) -> None:
        began = time.monotonic()
        member = await start_member(self.tmp_path / f"member-{slot}", self.config_text)
        self.restarts.append(time.monotonic() - began)
        self.members[slot] = member

    async def kill_leader_and_a_follower(self) -> list[int]:
        """SIGKILL the leader and one follower; returns their slots."""
        roles = {}
        for slot, member in enumerate(self.members):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                roles[slot] = (await health(member))["role"]
        leaders = [s for s, r in roles.items() if r == "leader"]
        followers = [s for s in range(len(self.members)) if s not in leaders]
        victims = leaders[:1] + self.rng.sample(followers, 1)
        self.killed_at.append(time.monotonic())
        for slot in victims:
            kill(self.members[slot])
        for slot in victims:
            await self.members[slot].process.wait()
        self.kills += len(victims)
        return victims


async def post_slack(cluster: Cluster, body: dict[str, Any]) -> None:
    """Post one event to a random live process until one acknowledges it (Slack's retry)."""
    for _ in range(200):
        live = cluster.live()
        if live:
            member = cluster.rng.choice(live)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                if await post_event(member.url + "slack/events", body, SECRET) == 200:
                    return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no process acknowledged Slack event {body['event_id']}")


@dataclass
class ApiLoad:
    """Two requests in flight at a time on random live processes; what each got."""

    cluster: Cluster
    numbers: Iterator[int] = field(default_factory=itertools.count)
    answered: dict[str, str] = field(default_factory=dict)
    cut: int = 0                  # requests whose process died under them (the client sees the cut)
    wrong: list[str] = field(default_factory=list)
    running: bool = True

    async def client(self) -> None:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            while self.running:
                live = self.cluster.live()
                if not live:
                    await asyncio.sleep(0.2)
                    continue
                member = self.cluster.rng.choice(live)
                tag = f"A-{next(self.numbers)}"
                try:
                    async with http.post(member.url + "v1/chat/completions", json={
                            "model": "hermes", "messages": [{"role": "user", "content": f"please {tag}"}]},
                            timeout=aiohttp.ClientTimeout(total=60)) as response:
                        body = await response.text()
                        if response.status == 200:
                            self.answered[tag] = json.loads(body)["choices"][0]["message"]["content"]
                        elif member.process.returncode is None:
                            self.wrong.append(f"{tag}: HTTP {response.status} {body[:200]}")
                        else:
                            self.cut += 1
                except (aiohttp.ClientError, TimeoutError) as error:
                    await asyncio.sleep(0.3)       # a dying process's socket may close a moment late
                    if member.process.returncode is None:
                        self.wrong.append(f"{tag}: {error!r} from a live process")
                    else:
                        self.cut += 1


def platform_answers(tg: FakeTelegramServer, slack: FakeSlackServer, user: int | str) -> list[dict[str, Any]]:
    """The bot's posts in the user's chat that are answers, as the platform shows them, with ids."""
    if isinstance(user, int):
        posts = [(m, str(m["message_id"])) for m in tg.sent(user)]
    else:
        posts = [(m, m["ts"]) for m in slack.sent(f"D{user}")]
    return [{"text": m["text"], "id": key, "posted_at": m["posted_at"]} for m, key in posts
            if m["text"].startswith("answer ")]


def interrupted_notices(tg: FakeTelegramServer, slack: FakeSlackServer, user: int | str) -> int:
    posts = tg.sent(user) if isinstance(user, int) else slack.sent(f"D{user}")
    return sum("was interrupted" in m["text"] for m in posts)


def just_before_a_kill(posted_at: float, killed_at: list[float]) -> bool:
    """The post reached the platform in the SEND_WINDOW before a kill (or just after it: a request
    the victim sent before its kill may be handled by the fake server a moment later)."""
    return any(-0.5 <= kill - posted_at <= SEND_WINDOW for kill in killed_at)


async def count_outcomes(store: StateStore, tg: FakeTelegramServer, slack: FakeSlackServer,
                         keys: dict[str, str], killed_at: list[float]) -> dict[str, Any]:
    """Lost, answered twice (and of those, in the platform's send window), out of order, per user."""
    lost = doubled = in_window = disordered = 0
    details: list[str] = []
    for user in [*TG_USERS, *SLACK_USERS]:
        expected = [f"answer {'T' if isinstance(user, int) else ''}{user}-{n}" for n in range(PER_USER)]
        posts = platform_answers(tg, slack, user)
        shown: list[str] = []
        for post in posts:
            if post["text"] in shown:
                platform = "telegram" if isinstance(user, int) else "slack"
                tag = post["text"].removeprefix("answer ")
                recorded = await store.sent_get(f"{platform}:{keys[tag]}:0:0")
                first = next(p for p in posts if p["text"] == post["text"])
                if (recorded is not None and recorded.message_id != first["id"]
                        and just_before_a_kill(first["posted_at"], killed_at)):
                    in_window += 1            # the first copy was posted by a send call a kill cut
                else:
                    doubled += 1
                    details.append(f"{user}: {post['text']} twice")
                continue
            shown.append(post["text"])
        lost += len(set(expected) - set(shown))
        if [t for t in shown if t in expected] != [t for t in expected if t in shown]:
            disordered += 1
            details.append(f"{user}: out of order {shown}")
    return {"lost": lost, "answered twice": doubled, "send window": in_window, "out of order": disordered,
            "details": details}


@pytest.mark.timeout(480)
async def test_three_processes_answer_300_messages_once_in_order_while_leader_and_follower_die(
        tmp_path: Path, postgres_url: str, pg_store: StateStore, model_server: FakeModelServer,
        tg: FakeTelegramServer, slack: FakeSlackServer) -> None:
    model_server.add(*([tagged] * 3000), purpose="chat")
    model_server.add(*([text(CRON)] * 50), purpose="cron")
    rng = random.Random(SEED)
    cluster = Cluster(tmp_path, config(postgres_url, model_server, tg, slack), rng, members=[None] * 3)  # type: ignore[list-item]
    began = time.monotonic()
    await asyncio.gather(*(cluster.start(slot) for slot in range(3)))
    api = ApiLoad(cluster)
    keys: dict[str, str] = {}           # tag -> the platform's id of the message (the reply's key)
    try:
        job_id = await add_interval_job(pg_store, 10, name="ticker", prompt="say the time",
                                        target=f"telegram:{TG_USERS[0]}")
        clients = [asyncio.create_task(api.client()) for _ in range(2)]
        kill_waves = sorted(rng.sample(range(1, PER_USER), KILL_ROUNDS))
        restarting: list[asyncio.Task[None]] = []
        for wave in range(PER_USER):
            if wave in kill_waves:
                await asyncio.gather(*restarting)       # the last round's processes are back
            for user in TG_USERS:
                keys[f"T{user}-{wave}"] = str(tg.queue_message(user, user, f"T{user}-{wave}"))
            bodies = [slack.message_event(f"D{user}", user, f"{user}-{wave}") for user in SLACK_USERS]
            for user, body in zip(SLACK_USERS, bodies, strict=True):
                keys[f"{user}-{wave}"] = body["event_id"]
            posting = asyncio.gather(*(post_slack(cluster, body) for body in bodies))
            if wave in kill_waves:                      # while the wave's turns are being taken and run
                await asyncio.sleep(rng.uniform(0.05, 0.8))
                victims = await cluster.kill_leader_and_a_follower()
                restarting = [asyncio.create_task(cluster.start(slot)) for slot in victims]
            await posting
            await asyncio.sleep(rng.uniform(0.3, 1.2))
        await asyncio.gather(*restarting)
        sent_all = time.monotonic()

        def all_answered() -> bool:
            return all(len({p["text"] for p in platform_answers(tg, slack, u)}) >= PER_USER
                       for u in [*TG_USERS, *SLACK_USERS])

        try:
            await wait_for(all_answered, timeout=180, what="every message answered")
        except AssertionError:
            missing = {u: PER_USER - len({p["text"] for p in platform_answers(tg, slack, u)})
                       for u in [*TG_USERS, *SLACK_USERS]}
            raise AssertionError(f"unanswered after 180 s, per user: {missing}; inbox: "
                                 f"{[(r.id, r.attempts) for r in await pg_store.inbox_rows()]}") from None
        drained = time.monotonic()
        api.running = False
        await asyncio.gather(*clients)

        def fired() -> list[dict[str, Any]]:
            return [m for m in tg.sent(TG_USERS[0]) if CRON in m["text"]]

        await wait_for(lambda: len(fired()) >= 2, timeout=60, what="two scheduled runs of the cron job")
        await pause_and_settle(pg_store, cluster.live()[0].home, job_id)
        deadline = time.monotonic() + 30
        while await pg_store.inbox_rows() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)                            # time for a second answer, if one were coming

        counts = await count_outcomes(pg_store, tg, slack, keys, cluster.killed_at)
        notices = {u: interrupted_notices(tg, slack, u) for u in [*TG_USERS, *SLACK_USERS]}
        runs = json.loads(run_hermes(cluster.live()[0].home, "cron", "runs", job_id, "--json"))
        scheduled = Counter(r["scheduled_time"] for r in runs)
        print(f"\ncluster chaos (seed {SEED}): 300 messages, {cluster.kills} kills in {KILL_ROUNDS} rounds; "
              f"lost {counts['lost']}, answered twice {counts['answered twice']}, out of order "
              f"{counts['out of order']}, doubled in the platform's send window {counts['send window']}; "
              f"notices {sum(notices.values())}; API answered {len(api.answered)}, cut by a kill {api.cut}; "
              f"cron runs {len(runs)} at {len(scheduled)} times, {len(fired())} delivered; "
              f"overlapping polls {tg.overlaps}; restarts {min(cluster.restarts):.1f}-{max(cluster.restarts):.1f}s; "
              f"all sent after {sent_all - began:.0f}s, answered after {drained - began:.0f}s, "
              f"{time.monotonic() - began:.0f}s in all")
        assert counts["lost"] == 0, counts["details"]
        assert counts["answered twice"] == 0, counts["details"]
        assert counts["out of order"] == 0, counts["details"]
        assert max(notices.values()) <= KILL_ROUNDS, notices
        assert api.wrong == [], api.wrong
        assert len(api.answered) >= 20 and all(
            answer == f"answer {tag}" for tag, answer in api.answered.items()), api.answered
        assert len(scheduled) >= 2 and all(n == 1 for n in scheduled.values()), runs
        assert {r["status"] for r in runs} <= {"ok", "interrupted"}, runs
        # one message per scheduled time, never two (a run cut after its delivery shows as interrupted)
        assert sum(r["status"] == "ok" for r in runs) <= len(fired()) <= len(scheduled), (fired(), runs)
        assert await pg_store.inbox_rows() == []
    finally:
        api.running = False
        await asyncio.gather(*(stop_member(m) for m in cluster.members if m is not None))
