"""Approvals on Telegram: the real gateway and python-telegram-bot against the fake Bot API.

The fake model asks for `terminal` with `rm -rf build`; the bot posts the request with an inline
keyboard; the test presses buttons as the user (or an admin, or a stranger) would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from tests.approvals_support import (
    approval_rows,
    folders,
    script_cleanup,
    start_real_gateway,
    tool_results,
    wait_for,
)
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.fakes.telegram_server import FakeTelegramServer

USER, ADMIN, STRANGER = 42, 7, 99


def telegram_section(tg: FakeTelegramServer) -> str:
    return (f'[telegram]\nenabled = true\ntoken = "{tg.token}"\napi_base = "{tg.api_base}"\npoll_timeout = 0.5\n'
            f'allow_users = ["{USER}", "{STRANGER}"]\nadmins = ["{ADMIN}"]\n')


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer().start()
    yield server
    await server.stop()


async def start(home: Path, model_server: FakeModelServer, tg: FakeTelegramServer,
                timeout: float = 10.0) -> Gateway:
    return await start_real_gateway(home, model_server, telegram_section(tg), timeout=timeout)


async def approval_message(tg: FakeTelegramServer, chat: int = USER) -> dict[str, Any]:
    return await wait_for(lambda: next((m for m in tg.sent(chat) if m.get("reply_markup")), None),
                          what="an approval request with buttons")


def button(message: dict[str, Any], label: str) -> str:
    for row in message["reply_markup"]["inline_keyboard"]:
        for b in row:
            if b["text"] == label:
                return str(b["callback_data"])
    raise AssertionError(f"no {label!r} button in {message['reply_markup']}")


def texts(tg: FakeTelegramServer, chat: int = USER) -> list[str]:
    return [m["text"] for m in tg.sent(chat)]


async def test_approve_runs_the_command_and_the_model_gets_its_output(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    script_cleanup(model_server)
    gateway = await start(home, model_server, tg)
    try:
        tg.queue_message(USER, USER, "please clean the build folder")
        request = await approval_message(tg)
        assert "Approval needed (terminal)" in request["text"] and "rm -rf build" in request["text"]
        labels = [b["text"] for row in request["reply_markup"]["inline_keyboard"] for b in row]
        assert labels == ["Approve", "Deny", "Always allow for this session", "Always allow"]
        assert folders(home), "the turn must pause before the command runs"

        tg.queue_callback(USER, USER, button(request, "Approve"), message_id=request["message_id"])
        await wait_for(lambda: "Cleaned up." in texts(tg), what="the final answer")
        assert folders(home) == []
        assert tool_results(model_server)[1].startswith("exit code 0")
        assert "Approved by 42" in request["text"]          # the request was edited with the outcome
        [row] = await approval_rows(gateway)
        assert (row["outcome"], row["scope"], row["answered_by"]) == ("approved", "once", "telegram:42")
    finally:
        await gateway.stop()


async def test_deny_keeps_the_folder_and_tells_the_model(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    script_cleanup(model_server, final="Left it alone.")
    gateway = await start(home, model_server, tg)
    try:
        tg.queue_message(USER, USER, "please clean the build folder")
        request = await approval_message(tg)
        tg.queue_callback(USER, USER, button(request, "Deny"), message_id=request["message_id"])
        await wait_for(lambda: "Left it alone." in texts(tg), what="the final answer")
        assert len(folders(home)) == 1
        assert "not approved by the user" in tool_results(model_server)[1]
        assert "Denied by 42" in request["text"]
        [row] = await approval_rows(gateway)
        assert (row["outcome"], row["answered_by"]) == ("denied", "telegram:42")
    finally:
        await gateway.stop()


async def test_no_answer_within_the_timeout_denies(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    script_cleanup(model_server, final="Nobody answered.")
    gateway = await start(home, model_server, tg, timeout=0.5)
    try:
        tg.queue_message(USER, USER, "please clean the build folder")
        request = await approval_message(tg)
        await wait_for(lambda: "Nobody answered." in texts(tg), what="the final answer")
        assert len(folders(home)) == 1
        assert "nobody answered the approval request within 0.5 s" in tool_results(model_server)[1]
        assert "No answer within 0.5 s: denied" in request["text"]
        # a late press changes nothing and says so
        tg.queue_callback(USER, USER, button(request, "Approve"), message_id=request["message_id"])
        await wait_for(lambda: any("is not waiting any more" in t for t in texts(tg)), what="the late answer")
        assert len(folders(home)) == 1
        assert [r["outcome"] for r in await approval_rows(gateway)] == ["timeout"]
    finally:
        await gateway.stop()


async def test_only_admins_may_always_allow_and_only_the_asker_or_an_admin_may_answer(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    script_cleanup(model_server, final="First done.")
    gateway = await start(home, model_server, tg)
    try:
        tg.queue_message(USER, USER, "please clean the build folder")
        request = await approval_message(tg)
        tg.queue_callback(USER, USER, button(request, "Always allow"), message_id=request["message_id"])
        await wait_for(lambda: any("Only an admin can always-allow" in t for t in texts(tg)), what="a refusal")
        tg.queue_callback(USER, STRANGER, button(request, "Approve"), message_id=request["message_id"])
        await wait_for(lambda: any("Only the person whose request this is" in t for t in texts(tg)),
                       what="a refusal for a stranger")
        assert len(folders(home)) == 1, "neither press may run the command"
        # the admin may: approved now and always for this rule
        tg.queue_callback(USER, ADMIN, button(request, "Always allow"), message_id=request["message_id"])
        await wait_for(lambda: "First done." in texts(tg), what="the first answer")
        assert folders(home) == []
        assert "always allowed from now on" in request["text"]

        # the next destructive rm runs without asking
        model_server.add(tool_calls(("terminal", {"command": "mkdir -p dist && rm -rf dist && echo gone"})),
                         text("Second done."))
        asked = sum(1 for m in tg.sent(USER) if m.get("reply_markup"))
        tg.queue_message(USER, USER, "and the dist folder")
        await wait_for(lambda: "Second done." in texts(tg), what="the second answer")
        assert sum(1 for m in tg.sent(USER) if m.get("reply_markup")) == asked
        assert tool_results(model_server)[-1] == "exit code 0\ngone\n"
        rows = await approval_rows(gateway)
        assert [(r["outcome"], r["scope"], r["answered_by"]) for r in rows] == [
            ("approved", "always", "telegram:7"), ("allowed", "always", "rule")]
    finally:
        await gateway.stop()


async def test_approve_by_text_command_and_proposals_still_work(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    script_cleanup(model_server)
    gateway = await start(home, model_server, tg)
    try:
        tg.queue_message(USER, USER, "please clean the build folder")
        await approval_message(tg)
        tg.queue_message(USER, USER, "/approve")
        await wait_for(lambda: "Cleaned up." in texts(tg), what="the final answer")
        assert folders(home) == []
        assert any(t.startswith("Approved: run") for t in texts(tg))
        # nothing waits any more: /approve falls back to the learning loop's proposals, /deny says so
        count = len(tg.sent(USER))
        tg.queue_message(USER, USER, "/approve")
        tg.queue_message(USER, USER, "/deny")
        await tg.wait_sent(USER, count + 2)
        assert texts(tg)[-2:] == ["No skill proposals are waiting.", "Nothing is waiting for approval here."]
    finally:
        await gateway.stop()


async def test_a_cron_job_delivering_to_another_chat_needs_approval(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    create = {"action": "create", "schedule": "every 1d", "prompt": "report disk usage"}
    model_server.add(tool_calls(("cron", {**create, "deliver": "telegram:-100555"})), text("Not scheduled."),
                     tool_calls(("cron", {**create, "deliver": "telegram:-100555"})), text("Scheduled there."),
                     tool_calls(("cron", {**create, "deliver": "origin"})), text("Scheduled here."),
                     purpose="chat")  # the learning review after a denied step must not take these
    gateway = await start(home, model_server, tg)
    try:
        tg.queue_message(USER, USER, "every day, report disk usage to the ops group")
        request = await approval_message(tg)
        assert "delivers to telegram:-100555 instead of this chat" in request["text"]
        tg.queue_callback(USER, USER, button(request, "Deny"), message_id=request["message_id"])
        await wait_for(lambda: "Not scheduled." in texts(tg), what="the first answer")
        assert "did not approve delivering to telegram:-100555" in tool_results(model_server)[0]
        assert gateway.runtime is not None
        cron = gateway.runtime.services["cron"]
        assert await cron.list(owner=f"telegram:{USER}") == []

        tg.queue_message(USER, USER, "ok, do it after all")
        second = await wait_for(lambda: [m for m in tg.sent(USER) if m.get("reply_markup")][1:], what="a second request")
        tg.queue_callback(USER, USER, button(second[0], "Approve"), message_id=second[0]["message_id"])
        await wait_for(lambda: "Scheduled there." in texts(tg), what="the second answer")
        [job] = await cron.list(owner=f"telegram:{USER}")
        assert job.target == "telegram:-100555"

        asked = sum(1 for m in tg.sent(USER) if m.get("reply_markup"))
        tg.queue_message(USER, USER, "and one for this chat")
        await wait_for(lambda: "Scheduled here." in texts(tg), what="the third answer")
        assert sum(1 for m in tg.sent(USER) if m.get("reply_markup")) == asked   # origin: nothing to ask
        assert len(await cron.list(owner=f"telegram:{USER}")) == 2
    finally:
        await gateway.stop()
