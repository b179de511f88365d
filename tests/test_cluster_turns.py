"""Turns anywhere: several real `hermes gateway` processes on one PostgreSQL store answer each
message once, one turn per session at a time, in arrival order, whichever process received it.

Slack in HTTP mode behind a "load balancer" (the test posts each event to the next process in
turn), Slack Socket Mode with one connection per process (the fake sends each event to one of
them), and the fake model; each member has its own home and port. The model answers after a
pause and records when each request came: a session's next request arriving before the last
one's answer was out would be two turns of one session at once. Then the process running a
turn is SIGKILLed: another process answers that message once, after the claim's TTL, with the
interrupted notice; `/stop` sent to a process other than the one running the turn stops it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.store import StateStore
from tests.approvals_support import TERMINAL, approvals_section, folders, script_cleanup, wait_for
from tests.cluster_support import (
    Member,
    kill,
    owner_pid,
    slack,  # noqa: F401 - the fake Slack (a fixture)
    start_members,
    stop_member,
)
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section
from tests.fakes.model_server import FakeModelServer, Reply
from tests.fakes.slack_server import FakeSlackServer, post_action, post_event

SECRET = "cluster-signing-secret"
USERS = ["U1001", "U1002", "U1003"]
TAG = re.compile(r"U\d{4}-\d+")
PAUSE = 0.4        # the model's time per answer


class TimedEcho:
    """Answers `answer <tag>` for the tag in the last user message, after `pause`; records when
    each session's requests arrived."""

    def __init__(self, pause: float = PAUSE, slow: dict[str, float] | None = None) -> None:
        self.pause = pause
        self.slow = slow or {}
        self.arrivals: dict[str, list[tuple[float, str]]] = defaultdict(list)

    def __call__(self, body: dict[str, Any]) -> Reply:
        tag = "?"
        for message in reversed(body.get("messages", [])):
            if message.get("role") == "user":
                found = TAG.findall(str(message.get("content")))
                tag = found[-1] if found else "?"
                break
        self.arrivals[tag.split("-")[0]].append((time.monotonic(), tag))
        return Reply(content=f"answer {tag}", delay=self.slow.get(tag, self.pause))


def config(store_url: str, model_server: FakeModelServer, slack: FakeSlackServer, mode: str = "http",
           extra: str = "") -> str:
    return (extra + f'[store]\nurl = "{store_url}"\n' + model_config(model_server) + "stream = false\n" + api_section()
            + f'[slack]\nenabled = true\nmode = "{mode}"\ntoken = "{slack.bot_token}"\n'
              f'app_token = "{slack.app_token}"\napi_base = "{slack.api_base}"\nsigning_secret = "{SECRET}"\n'
              f'allow_users = [{", ".join(repr(u).replace(chr(39), chr(34)) for u in USERS)}]\n')


def answers(slack: FakeSlackServer, user: str) -> list[str]:
    return [m["text"] for m in slack.sent(f"D{user}") if m["text"].startswith("answer ")]


def notices(slack: FakeSlackServer, user: str) -> list[str]:
    return [m["text"] for m in slack.sent(f"D{user}") if "was interrupted" in m["text"]]


async def send(slack: FakeSlackServer, member: Member, user: str, tag: str) -> None:
    status = await post_event(member.url + "slack/events", slack.message_event(f"D{user}", user, tag), SECRET)
    assert status == 200, status


@pytest.mark.timeout(300)
async def test_messages_posted_to_any_process_are_answered_once_in_order_one_turn_at_a_time(
        tmp_path: Path, postgres_url: str, model_server: FakeModelServer, slack: FakeSlackServer) -> None:
    echo = TimedEcho()
    model_server.add(*([echo] * 200), purpose="chat")
    text = config(postgres_url, model_server, slack)
    members = await start_members(tmp_path, text, 3)
    try:
        count = 6
        for n in range(1, count + 1):      # each user's messages land on a different process each time
            await asyncio.gather(*(send(slack, members[(n + i) % 3], user, f"{user}-{n}")
                                   for i, user in enumerate(USERS)))
        await wait_for(lambda: all(len(answers(slack, u)) >= count for u in USERS), timeout=120,
                       what="every message answered")
        await asyncio.sleep(1.5)          # time for a second answer, if one were coming
        for user in USERS:
            assert answers(slack, user) == [f"answer {user}-{n}" for n in range(1, count + 1)]
            assert notices(slack, user) == []
            times = [t for t, _ in echo.arrivals[user]]
            assert [tag for _, tag in echo.arrivals[user]] == [f"{user}-{n}" for n in range(1, count + 1)]
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            assert min(gaps) >= PAUSE * 0.9, f"two turns of {user}'s session ran at once: {gaps}"
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))


@pytest.mark.timeout(300)
async def test_slack_events_spread_over_three_socket_connections_are_each_answered_once(
        tmp_path: Path, postgres_url: str, model_server: FakeModelServer, slack: FakeSlackServer) -> None:
    echo = TimedEcho(pause=0.1)
    model_server.add(*([echo] * 200), purpose="chat")
    text = config(postgres_url, model_server, slack, mode="socket")
    members = await start_members(tmp_path, text, 3)
    try:
        await wait_for(lambda: slack.open_connections() == 3, timeout=60, what="one socket per process")
        count = 10
        envelopes: list[str] = []
        for n in range(1, count + 1):     # a round of three users at once, a user's next message later
            envelopes += [slack.queue_event(slack.message_event(f"D{user}", user, f"{user}-{n}")) for user in USERS]
            await asyncio.sleep(0.2)
        await wait_for(lambda: all(len(answers(slack, u)) >= count for u in USERS), timeout=120,
                       what="every event answered")
        await asyncio.sleep(1.5)
        assert len({slack.delivered_on[e] for e in envelopes}) == 3, "the events did not go over three sockets"
        assert slack.unacked() == []
        for user in USERS:
            assert answers(slack, user) == [f"answer {user}-{n}" for n in range(1, count + 1)]
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))


@pytest.mark.timeout(300)
async def test_stop_sent_to_another_process_stops_the_turn_where_it_runs(
        tmp_path: Path, postgres_url: str, model_server: FakeModelServer, slack: FakeSlackServer,
        pg_store: StateStore) -> None:
    user = USERS[0]
    echo = TimedEcho(slow={f"{user}-1": 60.0})
    model_server.add(*([echo] * 20), purpose="chat")
    text = config(postgres_url, model_server, slack)
    members = await start_members(tmp_path, text, 2)
    try:
        await send(slack, members[0], user, f"{user}-1")
        await wait_for(lambda: bool(echo.arrivals[user]), timeout=60, what="the slow turn to start")
        holder = owner_pid(await pg_store.turn_holder(f"slack:dm:{user}"))
        elsewhere = next(m for m in members if m.pid != holder)
        began = time.monotonic()
        await send(slack, elsewhere, user, "/stop")
        await wait_for(lambda: any(m["text"] == "Stopped." for m in slack.sent(f"D{user}")), timeout=30,
                       what="the stopped turn's last word")
        assert time.monotonic() - began < 30, "the turn ran to its end instead of stopping"
        assert answers(slack, user) == []
        await send(slack, members[0], user, f"{user}-2")        # the session goes on
        await wait_for(lambda: answers(slack, user) == [f"answer {user}-2"], timeout=60, what="the next answer")
        # one word about the stop, from the process that ran the turn: no "Stopping." from the one asked
        assert [m["text"] for m in slack.sent(f"D{user}")] == ["Stopped.", f"answer {user}-2"]
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))


@pytest.mark.timeout(300)
async def test_a_killed_process_turn_is_answered_once_by_another_with_the_notice(
        tmp_path: Path, postgres_url: str, model_server: FakeModelServer, slack: FakeSlackServer,
        pg_store: StateStore) -> None:
    user = USERS[0]
    echo = TimedEcho(slow={f"{user}-2": 30.0})        # the turn that is running when its process dies
    model_server.add(*([echo] * 50), purpose="chat")
    text = config(postgres_url, model_server, slack)
    members = await start_members(tmp_path, text, 2)
    try:
        await send(slack, members[0], user, f"{user}-1")
        await wait_for(lambda: answers(slack, user) == [f"answer {user}-1"], timeout=60, what="the first answer")
        await send(slack, members[1], user, f"{user}-2")
        await wait_for(lambda: any(tag == f"{user}-2" for _, tag in echo.arrivals[user]), timeout=60,
                       what="the slow turn to start")
        await send(slack, members[0], user, f"{user}-3")     # queued behind it, wherever it runs
        holder = await pg_store.turn_holder(f"slack:dm:{user}")
        running = next(m for m in members if m.pid == owner_pid(holder))
        other = next(m for m in members if m is not running)
        echo.slow.clear()                                      # the re-run answers at once
        killed = time.monotonic()
        kill(running)
        await running.process.wait()
        await wait_for(lambda: len(answers(slack, user)) >= 3, timeout=60, what="the answers after the kill")
        took = time.monotonic() - killed
        await asyncio.sleep(1.5)
        assert answers(slack, user) == [f"answer {user}-{n}" for n in (1, 2, 3)]
        assert len(notices(slack, user)) == 1
        assert took < 10, f"the dead process's session was answered only after {took:.1f}s"
        assert owner_pid(await pg_store.turn_holder(f"slack:dm:{user}")) in (other.pid, None)
        assert await pg_store.inbox_rows() == []
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))



def approval_request(slack: FakeSlackServer, user: str) -> dict[str, Any] | None:
    """The newest approval request with buttons in the user's chat."""
    found = [m for m in slack.sent(f"D{user}") if any(b.get("type") == "actions" for b in m.get("blocks") or [])]
    return found[-1] if found else None


@pytest.mark.timeout(300)
async def test_an_approval_answered_on_another_process_reaches_the_turn_where_it_waits(
        tmp_path: Path, postgres_url: str, model_server: FakeModelServer, slack: FakeSlackServer,
        pg_store: StateStore) -> None:
    user = USERS[0]
    script_cleanup(model_server)
    script_cleanup(model_server, folder="dist", final="Cleaned dist.")
    text = config(postgres_url, model_server, slack, extra=TERMINAL + approvals_section(60))
    members = await start_members(tmp_path, text, 2)
    try:
        # a button press, posted (through the "load balancer") to the process not running the turn
        await send(slack, members[0], user, "please clean the build folder")
        request = await wait_for(lambda: approval_request(slack, user), timeout=60, what="the approval request")
        holder = owner_pid(await pg_store.turn_holder(f"slack:dm:{user}"))
        running = next(m for m in members if m.pid == holder)
        elsewhere = next(m for m in members if m is not running)
        assert len(folders(running.home)) == 1
        element = next(e for b in request["blocks"] if b["type"] == "actions" for e in b["elements"]
                       if e["text"]["text"] == "Approve")
        began = time.monotonic()
        payload = slack.block_action(f"D{user}", user, element["action_id"], element["value"], message_ts=request["ts"])
        assert await post_action(elsewhere.url + "slack/events", payload, SECRET) == 200
        await wait_for(lambda: "Cleaned up." in [m["text"] for m in slack.sent(f"D{user}")], timeout=30,
                       what="the answer after the approval")
        assert time.monotonic() - began < 10
        assert folders(running.home) == []                   # the approved command ran, where the turn runs
        assert f"Approved by {user}" in request["text"]      # the request message shows who approved

        # `/approve` typed in the chat and received by the other process
        await send(slack, running, user, "please clean the dist folder")
        second = await wait_for(lambda: (r := approval_request(slack, user)) is not None and r is not request and r,
                                timeout=60, what="the second approval request")
        holder = owner_pid(await pg_store.turn_holder(f"slack:dm:{user}"))
        elsewhere = next(m for m in members if m.pid != holder)
        await send(slack, elsewhere, user, "/approve")
        await wait_for(lambda: "Cleaned dist." in [m["text"] for m in slack.sent(f"D{user}")], timeout=30,
                       what="the answer after /approve")
        assert f"Approved by {user}" in second["text"]
        assert any(m["text"].startswith("Approved: ") for m in slack.sent(f"D{user}"))   # the /approve's own answer
        rows = await pg_store.approval_request_rows()
        assert [(r["outcome"], r["answered_by"]) for r in rows] == [("approved", f"slack:{user}")] * 2
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))


@pytest.mark.timeout(300)
async def test_one_api_conversation_posted_to_two_processes_takes_turns_on_the_whole_conversation(
        tmp_path: Path, postgres_url: str, model_server: FakeModelServer, slack: FakeSlackServer) -> None:
    echo = TimedEcho(pause=1.5)
    model_server.add(*([echo] * 20), purpose="chat")
    text = config(postgres_url, model_server, slack)
    members = await start_members(tmp_path, text, 2)

    async def ask(member: Member, tag: str) -> str:
        async with aiohttp.ClientSession() as http, http.post(
                member.url + "v1/chat/completions",
                headers={"Authorization": f"Bearer {TOKEN}", "X-Hermes-Session-Id": "shared"},
                json={"model": "hermes", "messages": [{"role": "user", "content": f"please {tag}"}]},
                timeout=aiohttp.ClientTimeout(total=120)) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["choices"][0]["message"]["content"])

    try:
        first = asyncio.create_task(ask(members[0], "U0001-1"))
        await wait_for(lambda: bool(echo.arrivals["U0001"]), timeout=60, what="the first turn to start")
        second = await ask(members[1], "U0001-2")          # while the first still runs, on the other process
        assert await first == "answer U0001-1"
        assert second == "answer U0001-2"
        third = await ask(members[0], "U0001-3")           # back on the first process, whose copy is old now
        assert third == "answer U0001-3"
        times = [t for t, _ in echo.arrivals["U0001"]]
        assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= 1.5 * 0.9, "two turns ran at once"
        chats = model_server.requests_with_purpose("chat")
        seen = [[str(m.get("content")) for m in r["messages"] if m.get("role") in ("user", "assistant")]
                for r in chats]
        assert seen[1][-3:] == ["please U0001-1", "answer U0001-1", "please U0001-2"]
        assert seen[2][-5:] == ["please U0001-1", "answer U0001-1", "please U0001-2", "answer U0001-2",
                                "please U0001-3"]
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))


@pytest.mark.timeout(300)
async def test_a_sessions_files_are_there_when_its_next_turn_runs_on_another_process(
        tmp_path: Path, postgres_url: str, model_server: FakeModelServer, slack: FakeSlackServer) -> None:
    """`[tools] workspaces_dir` shared by the processes: a file one process's turn wrote is read by
    the session's next turn on the other process (each home alone would not have it)."""
    from tests.fakes.model_server import text, tool_calls

    shared = tmp_path / "shared-workspaces"
    model_server.add(tool_calls(("write_file", {"path": "plan.txt", "content": "ship on Friday"})), text("Saved."),
                     tool_calls(("read_file", {"path": "plan.txt"})), text("It says: ship on Friday."),
                     purpose="chat")
    body = config(postgres_url, model_server, slack, extra=f'[tools]\nworkspaces_dir = "{shared}"\n')
    members = await start_members(tmp_path, body, 2)

    async def ask(member: Member, content: str) -> str:
        async with aiohttp.ClientSession() as http, http.post(
                member.url + "v1/chat/completions",
                headers={"Authorization": f"Bearer {TOKEN}", "X-Hermes-Session-Id": "planning"},
                json={"model": "hermes", "messages": [{"role": "user", "content": content}]},
                timeout=aiohttp.ClientTimeout(total=120)) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["choices"][0]["message"]["content"])

    try:
        assert await ask(members[0], "write the plan down") == "Saved."
        assert await ask(members[1], "what does the plan say?") == "It says: ship on Friday."
        chats = model_server.requests_with_purpose("chat")
        read_result = [str(m.get("content")) for m in chats[3]["messages"] if m.get("role") == "tool"][-1]
        assert "ship on Friday" in read_result, read_result
        [written] = list(shared.rglob("plan.txt"))
        assert written.read_text() == "ship on Friday"
        assert [p for m in members for p in (m.home / "workspaces").rglob("plan.txt")] == []
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))
