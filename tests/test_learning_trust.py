"""Learning you can trust (issue 16), as a team uses it: two teams in two Telegram groups, the real
gateway and python-telegram-bot against the fake Bot API, the review model scripted as an adversary.

- five rewordings of one procedure give one skill (patched), in `on` and in `ask` mode;
- a review's `edit` of a bundled skill is refused, its patch becomes a proposal; `/approve` from a
  member who is not an admin, or from the other team's chat, is refused; the admin's lands in
  that team's library only;
- a rejected proposal is not proposed again, and the next review is told why;
- a dangerous proposal is refused when proposed and when approved;
- an approval from the CLI posts the "Learned" message in the chat the proposal came from.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.learning.loop import LearningLoop
from tests.approvals_support import wait_for
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.fakes.telegram_server import FakeTelegramServer
from tests.learning_support import CHECKPOINT_MODEL, checkpoint_requests, hermes, user_text
from tests.trust_support import (
    ADMIN,
    DANGEROUS,
    MEMBER,
    OPS_CHAT,
    OTHER,
    PATCHES,
    REWORDINGS,
    ROTATE,
    SHIP,
    WEB_CHAT,
    start_gateway,
)

WAIT = 60.0  # bounded: the first turn imports LiteLLM in the model worker, slow on a loaded machine
ASKS = ["the disk on web1 is full of nginx logs, rotate them", "please set up log rotation for nginx on web2",
        "compress the old web server logs on web3", "configure logrotate on the web hosts",
        "clean up the access logs on web4, they are huge"]


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer().start()
    yield server
    await server.stop()


def texts(tg: FakeTelegramServer, chat: int) -> list[str]:
    """What the chat shows: the HTML the bot sent, as plain text (Markdown `code` becomes <code>)."""
    return [html.unescape(re.sub(r"<[^>]+>", "", str(m.get("text") or ""))) for m in tg.sent(chat)]


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await _sleep()


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.05)


def loop_of(gateway: Gateway) -> LearningLoop:
    assert gateway.runtime is not None
    return gateway.runtime.services["learning"]


async def reviews_done(gateway: Gateway, count: int) -> list[dict[str, Any]]:
    async def done() -> list[dict[str, Any]] | None:
        entries = await loop_of(gateway).log.entries(limit=50)
        finished = [e for e in entries if e["status"] not in ("running",)]
        return finished if len(finished) >= count else None

    return await eventually(done, f"{count} finished review(s)")


async def say(gateway: Gateway, tg: FakeTelegramServer, chat: int, user: int, message: str,
              reviews: int | None = None) -> None:
    """A user writes in a group; waits for the bot's reply (and, if given, for that many finished reviews)."""
    before = len(tg.sent(chat))
    tg.queue_message(chat, user, message, chat_type="supergroup")
    await wait_for(lambda: len(tg.sent(chat)) > before, timeout=WAIT, what=f"a reply to {message!r}")
    if reviews is not None:
        await reviews_done(gateway, reviews)


async def command(tg: FakeTelegramServer, chat: int, user: int, message: str, count: int = 1) -> str:
    """Send a command in a group; the `count` messages the bot posts in answer, one a line."""
    before = len(tg.sent(chat))
    tg.queue_message(chat, user, message, chat_type="supergroup")
    await wait_for(lambda: len(tg.sent(chat)) >= before + count, timeout=WAIT, what=f"the answer to {message}")
    return "\n".join(texts(tg, chat)[before:])


def library_skills(home: Path, team: str) -> dict[str, str]:
    root = home / "teams" / team / "skills"
    return {p.parent.name: p.read_text(encoding="utf-8") for p in root.glob("*/*/SKILL.md")}


def tool_results(request: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in request["messages"] if m["role"] == "tool"]


def script_turn(model_server: FakeModelServer, answer: str = "Done.") -> None:
    model_server.add(tool_calls(("list_files", {"path": "."})), text(answer))


def script_rewording_reviews(model_server: FakeModelServer) -> None:
    """Review 1 creates the skill (with an overlong announcement); reviews 2-5 try to create a reworded
    duplicate, are refused, and patch the existing skill instead."""
    model_server.add(
        tool_calls(("skill_manage", {"action": "create", "name": "rotate-nginx-logs", "category": "ops",
                                     "content": ROTATE})),
        text("Skill: created rotate-nginx-logs\nAnnounce: rotate-nginx-logs: " + "how to rotate nginx logs " * 22),
        model=CHECKPOINT_MODEL)
    for rewording, (old, new) in zip(REWORDINGS, PATCHES, strict=True):
        name = rewording.split("name: ", 1)[1].split("\n", 1)[0]
        model_server.add(
            tool_calls(("skill_manage", {"action": "create", "name": name, "category": "ops", "content": rewording})),
            tool_calls(("skill_manage", {"action": "patch", "name": "rotate-nginx-logs", "old_text": old,
                                         "new_text": new})),
            text("Skill: patched rotate-nginx-logs"), model=CHECKPOINT_MODEL)


def assert_one_patched_skill(home: Path, model_server: FakeModelServer) -> None:
    own = {n: t for n, t in library_skills(home, "ops").items() if "origin: bundled" not in t}
    assert list(own) == ["rotate-nginx-logs"], f"one skill per procedure, got {sorted(own)}"
    for _, new in PATCHES:
        assert new.split("\n")[-1].strip("- ") in own["rotate-nginx-logs"]
    requests = checkpoint_requests(model_server)
    refusals = {r for request in requests for r in tool_results(request) if "same procedure" in r}  # one per review
    assert len(refusals) == 4
    assert all("skill_view(name='rotate-nginx-logs')" in r and "action='patch'" in r for r in refusals)


async def test_five_rewordings_give_one_patched_skill_on_mode(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    script_rewording_reviews(model_server)
    gateway = await start_gateway(home, model_server, tg)
    try:
        for number, ask in enumerate(ASKS, 1):
            script_turn(model_server)
            await say(gateway, tg, OPS_CHAT, MEMBER, ask, reviews=number)
        assert_one_patched_skill(home, model_server)
        entries = await loop_of(gateway).log.entries(limit=10)
        assert sum("duplicate:" in e["error"] for e in entries) == 4   # each refusal is in the log with its reason
        learned = await eventually(lambda: _first(texts(tg, OPS_CHAT), "Learned: created skill"), "the Learned post")
        summary = learned.split(" — ", 1)[1]
        assert len(summary) <= 100 and summary.endswith("…")          # an overlong Announce: line is cut
        assert not library_skills(home, "web") or "rotate-nginx-logs" not in library_skills(home, "web")
    finally:
        await gateway.stop()


async def _first(items: list[str], prefix: str) -> str | None:
    return next((t for t in items if t.startswith(prefix)), None)


async def test_five_rewordings_give_one_patched_skill_ask_mode_and_cli_approval_posts_learned(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    script_rewording_reviews(model_server)
    gateway = await start_gateway(home, model_server, tg, learning='auto_skills = "ask"')
    try:
        script_turn(model_server)
        await say(gateway, tg, OPS_CHAT, MEMBER, ASKS[0], reviews=1)
        await eventually(lambda: _first(texts(tg, OPS_CHAT), "Proposed: create skill /rotate-nginx-logs"),
                         "the proposal post")
        # approved from the command line: the running gateway posts "Learned" in the chat it came from
        code, out, err = await hermes("learning", "approve", "1", "--by", "alice", home=home)
        assert code == 0, err
        await eventually(lambda: _first(texts(tg, OPS_CHAT), "Learned: created skill /rotate-nginx-logs"),
                         "the Learned post after a CLI approval")
        assert not any(t.startswith("Learned") for t in texts(tg, WEB_CHAT))
        for number, ask in enumerate(ASKS[1:], 2):
            script_turn(model_server)
            await say(gateway, tg, OPS_CHAT, MEMBER, ask, reviews=number)
        pending = await loop_of(gateway).pending(team="ops")
        assert [(p.action, p.skill) for p in pending] == [("patch", "rotate-nginx-logs")] * 4
        await wait_for(lambda: sum(t.startswith("Proposed:") for t in texts(tg, OPS_CHAT)) == 5, timeout=WAIT,
                       what="the four patch proposals posted")
        for proposal in pending:
            answer = await command(tg, OPS_CHAT, ADMIN, f"/approve {proposal.id}", count=2)
            assert f"Approved #{proposal.id}: patched skill 'rotate-nginx-logs'." in answer.splitlines(), answer
            assert f"Updated /rotate-nginx-logs: #{proposal.id} approved by telegram:7: " in answer, answer
        assert_one_patched_skill(home, model_server)
    finally:
        await gateway.stop()


async def test_a_bundled_skill_is_protected_and_only_the_teams_admin_approves(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    bundled = (Path(__file__).resolve().parent.parent / "skills" / "bundled" / "operations" / "disk-space-cleanup"
               / "SKILL.md").read_text(encoding="utf-8")
    step = next(line for line in bundled.splitlines() if line.startswith("4. "))
    better = step + " If it is a log file, `: > file` truncates it without a restart."
    model_server.add(
        tool_calls(("skill_manage", {"action": "edit", "name": "disk-space-cleanup", "content":
                                     "---\nname: disk-space-cleanup\ndescription: Delete big files.\n---\n\n"
                                     "Delete big files in /var/log\n"})),
        tool_calls(("skill_manage", {"action": "patch", "name": "disk-space-cleanup", "old_text": step,
                                     "new_text": better})),
        text("Skill: patched disk-space-cleanup"), model=CHECKPOINT_MODEL)
    gateway = await start_gateway(home, model_server, tg)  # auto_skills = "on"
    try:
        script_turn(model_server, "Freed 3 GB.")
        await say(gateway, tg, OPS_CHAT, MEMBER, "the disk on db1 is full, free some space", reviews=1)
        edit_result, patch_result = tool_results(checkpoint_requests(model_server)[-1])
        assert "protected" in edit_result and "action='patch'" in edit_result
        assert "recorded as proposal #1" in patch_result
        ops_file = home / "teams" / "ops" / "skills" / "operations" / "disk-space-cleanup" / "SKILL.md"
        assert ops_file.read_text(encoding="utf-8") == bundled, "a review must not change a bundled skill"
        await eventually(lambda: _first(texts(tg, OPS_CHAT), "Proposed: update /disk-space-cleanup"), "the post")

        answer = await command(tg, OPS_CHAT, MEMBER, "/approve 1")
        assert "only an admin of telegram" in answer
        assert "No skill proposals are waiting." in await command(tg, WEB_CHAT, ADMIN, "/approve")
        assert "no proposal #1 for this team" in await command(tg, WEB_CHAT, ADMIN, "/approve 1")
        assert "no proposal #1 for this team" in await command(tg, WEB_CHAT, ADMIN, "/reject 1 not ours")
        assert "only an admin" in await command(tg, OPS_CHAT, OTHER, "/reject 1")
        assert ops_file.read_text(encoding="utf-8") == bundled

        listing = await command(tg, OPS_CHAT, ADMIN, "/approve")
        assert "#1 patch disk-space-cleanup" in listing
        answer = await command(tg, OPS_CHAT, ADMIN, "/approve 1", count=2)
        assert "Approved #1: patched skill 'disk-space-cleanup'." in answer.splitlines(), answer
        assert "Updated /disk-space-cleanup: #1 approved by telegram:7: 4. Check for deleted-but-open" in answer, answer
        assert better in ops_file.read_text(encoding="utf-8")
        web_file = home / "teams" / "web" / "skills" / "operations" / "disk-space-cleanup" / "SKILL.md"
        assert not web_file.exists() or better not in web_file.read_text(encoding="utf-8")
        [row] = await loop_of(gateway).log.proposals(None, team="ops")
        assert (row.status, row.decided_by, row.platform, row.chat_id) == (
            "approved", f"telegram:{ADMIN}", "telegram", str(OPS_CHAT))
    finally:
        await gateway.stop()


async def test_a_rejected_proposal_is_not_proposed_again(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    create = tool_calls(("skill_manage", {"action": "create", "name": "ship-nginx-logs", "category": "ops",
                                          "content": SHIP}))
    model_server.add(create, text("Skill: proposed ship-nginx-logs"), model=CHECKPOINT_MODEL)
    model_server.add(create, text("Skill: none"), model=CHECKPOINT_MODEL)
    gateway = await start_gateway(home, model_server, tg, learning='auto_skills = "ask"')
    try:
        script_turn(model_server)
        await say(gateway, tg, OPS_CHAT, MEMBER, "ship the nginx logs of web1 to loki", reviews=1)
        await eventually(lambda: _first(texts(tg, OPS_CHAT), "Proposed: create skill /ship-nginx-logs"), "the post")
        answer = await command(tg, OPS_CHAT, ADMIN, "/reject 1 we ship logs with vector, not promtail")
        assert answer.startswith("Rejected #1 (create ship-nginx-logs).") and "vector" in answer
        script_turn(model_server)
        await say(gateway, tg, OPS_CHAT, MEMBER, "ship the nginx logs of web2 to loki too", reviews=2)
        second = checkpoint_requests(model_server)[-1]
        assert "Rejected by the team" in user_text(second) and "we ship logs with vector" in user_text(second)
        [refusal] = tool_results(second)
        assert "rejected this change before (#1, reason: we ship logs with vector, not promtail)" in refusal
        proposals = await loop_of(gateway).log.proposals(None, team="ops")
        assert [(p.id, p.status, p.reason) for p in proposals] == [(1, "rejected", "we ship logs with vector, "
                                                                                   "not promtail")]
        assert sum(t.startswith("Proposed:") for t in texts(tg, OPS_CHAT)) == 1
    finally:
        await gateway.stop()


async def test_a_dangerous_proposal_is_refused_when_proposed_and_when_approved(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    model_server.add(
        tool_calls(("skill_manage", {"action": "create", "name": "fast-log-setup", "category": "ops",
                                     "content": DANGEROUS})),
        text("Skill: none"), model=CHECKPOINT_MODEL)
    gateway = await start_gateway(home, model_server, tg, learning='auto_skills = "ask"')
    try:
        script_turn(model_server)
        await say(gateway, tg, OPS_CHAT, MEMBER, "set up logging on the new web host", reviews=1)
        [refusal] = tool_results(checkpoint_requests(model_server)[-1])
        assert "refused by the skills guard" in refusal and "nothing was written" in refusal
        loop = loop_of(gateway)
        assert await loop.log.proposals(None) == []
        [entry] = await loop.log.entries()
        assert "guard:" in entry["error"]

        # a proposal recorded without the check (an earlier version, a hand-made row): approval re-checks it
        proposal_id = await loop.log.propose(checkpoint_id=None, session_id="", team="ops", skill="fast-log-setup",
                                             action="create", arguments={"content": DANGEROUS, "category": "ops"},
                                             summary="fast setup", platform="telegram", chat_id=str(OPS_CHAT),
                                             user_id=str(MEMBER))
        answer = await command(tg, OPS_CHAT, ADMIN, f"/approve {proposal_id}")
        assert "was refused and nothing was written (guard)" in answer
        assert "fast-log-setup" not in library_skills(home, "ops")
        assert await loop.pending(team="ops") == []
        code, out, err = await hermes("learning", "pending", "--json", home=home)
        assert code == 0 and json.loads(out) == [], err
        [row] = await loop.log.proposals(None)
        assert row.status == "refused" and row.reason.startswith("guard:")
    finally:
        await gateway.stop()


async def test_ask_mode_memory_writes_wait_for_the_admin(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    model_server.add(tool_calls(("memory", {"action": "add", "text": "web hosts keep nginx logs for 14 days"})),
                     text("Remember: retention"), model=CHECKPOINT_MODEL)
    gateway = await start_gateway(home, model_server, tg, learning='auto_memory = "ask"')
    memory_file = home / "teams" / "ops" / "memories" / "MEMORY.md"
    try:
        script_turn(model_server)
        await say(gateway, tg, OPS_CHAT, MEMBER, "how long do we keep nginx logs? 14 days, remember that", reviews=1)
        [result] = tool_results(checkpoint_requests(model_server)[-1])
        assert "recorded as proposal #1 (memory add)" in result
        assert not memory_file.exists() or "14 days" not in memory_file.read_text(encoding="utf-8")
        assert "#1 memory add (memory): web hosts keep nginx logs" in await command(tg, OPS_CHAT, ADMIN, "/approve")
        assert "only an admin" in await command(tg, OPS_CHAT, MEMBER, "/approve 1")
        answer = await command(tg, OPS_CHAT, ADMIN, "/approve 1")
        assert answer == "Approved #1: add in MEMORY.md.", answer
        assert "web hosts keep nginx logs for 14 days" in memory_file.read_text(encoding="utf-8")
    finally:
        await gateway.stop()
