"""Approvals on Slack: the real gateway and slack-bolt (HTTP mode) against the fake Slack Web API.

Messages and button presses arrive as signed Events API / interactivity POSTs on the gateway's
own HTTP server; the approval request is a Block Kit message with buttons.
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
from tests.fakes.model_server import FakeModelServer
from tests.fakes.slack_server import FakeSlackServer, post_action, post_event

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
USER, ADMIN, CHANNEL = "U1", "UADMIN", "D1"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackServer]:
    server = await FakeSlackServer().start()
    yield server
    await server.stop()


async def start(home: Path, model_server: FakeModelServer, slack: FakeSlackServer) -> tuple[Gateway, str]:
    section = (f'[slack]\nenabled = true\nmode = "http"\ntoken = "{slack.bot_token}"\napi_base = "{slack.api_base}"\n'
               f'signing_secret = "{SECRET}"\nallow_users = ["{USER}"]\nadmins = ["{ADMIN}"]\n')
    gateway = await start_real_gateway(home, model_server, section)
    return gateway, gateway.url + "slack/events"


async def approval_message(slack: FakeSlackServer) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for message in slack.sent(CHANNEL):
            if any(b.get("type") == "actions" for b in message.get("blocks") or []):
                return message
        return None
    return await wait_for(find, what="an approval request with Block Kit buttons")


def button(message: dict[str, Any], label: str) -> dict[str, Any]:
    for block in message["blocks"]:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element["text"]["text"] == label:
                return element
    raise AssertionError(f"no {label!r} button in {message['blocks']}")


async def press(slack: FakeSlackServer, url: str, message: dict[str, Any], label: str, user: str = USER) -> None:
    element = button(message, label)
    payload = slack.block_action(CHANNEL, user, element["action_id"], element["value"], message_ts=message["ts"])
    assert await post_action(url, payload, SECRET) == 200


def texts(slack: FakeSlackServer) -> list[str]:
    return [m["text"] for m in slack.sent(CHANNEL)]


async def test_approve_on_slack_runs_the_command(home: Path, model_server: FakeModelServer,
                                                 slack: FakeSlackServer) -> None:
    script_cleanup(model_server)
    gateway, url = await start(home, model_server, slack)
    try:
        assert await post_event(url, slack.message_event(CHANNEL, USER, "please clean the build folder"),
                                SECRET) == 200
        request = await approval_message(slack)
        assert "rm -rf build" in request["text"]
        assert [e["text"]["text"] for b in request["blocks"] if b["type"] == "actions" for e in b["elements"]] == [
            "Approve", "Deny", "Always allow for this session", "Always allow"]
        assert button(request, "Approve")["style"] == "primary"
        assert len(folders(home)) == 1

        await press(slack, url, request, "Approve")
        await wait_for(lambda: "Cleaned up." in texts(slack), what="the final answer")
        assert folders(home) == []
        assert tool_results(model_server)[1].startswith("exit code 0")
        assert "Approved by U1" in request["text"]
        [row] = await approval_rows(gateway)
        assert (row["outcome"], row["answered_by"]) == ("approved", "slack:U1")
    finally:
        await gateway.stop()


async def test_deny_on_slack_keeps_the_folder(home: Path, model_server: FakeModelServer,
                                              slack: FakeSlackServer) -> None:
    script_cleanup(model_server, final="Left it alone.")
    gateway, url = await start(home, model_server, slack)
    try:
        assert await post_event(url, slack.message_event(CHANNEL, USER, "please clean the build folder"),
                                SECRET) == 200
        request = await approval_message(slack)
        await press(slack, url, request, "Always allow for this session")
        await wait_for(lambda: any("Only an admin can always-allow" in t for t in texts(slack)), what="a refusal")
        await press(slack, url, request, "Deny")
        await wait_for(lambda: "Left it alone." in texts(slack), what="the final answer")
        assert len(folders(home)) == 1
        assert "not approved by the user" in tool_results(model_server)[1]
        assert [(r["outcome"], r["answered_by"]) for r in await approval_rows(gateway)] == [("denied", "slack:U1")]
    finally:
        await gateway.stop()


async def test_a_press_with_a_bad_signature_is_refused(home: Path, model_server: FakeModelServer,
                                                       slack: FakeSlackServer) -> None:
    script_cleanup(model_server, final="Left it alone.")
    gateway, url = await start(home, model_server, slack)
    try:
        assert await post_event(url, slack.message_event(CHANNEL, USER, "please clean the build folder"),
                                SECRET) == 200
        request = await approval_message(slack)
        element = button(request, "Approve")
        payload = slack.block_action(CHANNEL, USER, element["action_id"], element["value"], message_ts=request["ts"])
        assert await post_action(url, payload, "not-the-secret") == 401
        await press(slack, url, request, "Deny")
        await wait_for(lambda: "Left it alone." in texts(slack), what="the final answer")
        assert len(folders(home)) == 1
    finally:
        await gateway.stop()
