"""The Slack adapter with the real slack-bolt / slack_sdk against a fake Slack on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from adapters.base import Button, ButtonPress, DeliveryError, InboundMessage, OutboundMessage
from adapters.slack import SlackAdapter
from tests.fakes.inbox import Inbox
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.slack_server import BOT_USER_ID, FakeSlackServer, post_action, post_event, signed_headers

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"



@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackServer]:
    server = await FakeSlackServer().start()
    server.users["U1"] = {"real_name": "Ada Lovelace", "display_name": "ada"}
    yield server
    await server.stop()


class HttpApp:
    """The adapter in HTTP mode, mounted on an aiohttp server like the gateway's."""

    def __init__(self, adapter: SlackAdapter, url: str, runner: web.AppRunner) -> None:
        self.adapter, self.url, self.runner = adapter, url, runner


@pytest.fixture
async def http_mode(slack: FakeSlackServer) -> AsyncIterator[tuple[HttpApp, Inbox]]:
    inbox = Inbox()
    adapter = SlackAdapter(inbox, token=slack.bot_token, api_base=slack.api_base, signing_secret=SECRET)
    app = web.Application()
    adapter.attach_routes(app)
    runner, port = await serve_on_loopback(app)
    await adapter.start()
    yield HttpApp(adapter, f"http://127.0.0.1:{port}/slack/events", runner), inbox
    await adapter.stop()
    await runner.cleanup()


async def test_signed_dm_is_delivered_with_the_right_fields(
        slack: FakeSlackServer, http_mode: tuple[HttpApp, Inbox]) -> None:
    app, inbox = http_mode
    body = slack.message_event("D1", "U1", "hello &lt;world&gt; <https://example.org|site>")
    assert await post_event(app.url, body, SECRET) == 200
    [event] = inbox.events      # listeners run before the ack: it is here once the POST returned
    assert isinstance(event, InboundMessage)
    assert (event.platform, event.chat_id, event.user_id) == ("slack", "D1", "U1")
    assert event.display_name == "ada"
    assert event.text == "hello <world> site (https://example.org)"
    assert event.is_dm and not event.mentioned and event.thread_id is None
    assert event.message_id == body["event"]["ts"]
    assert event.dedup_key == body["event_id"]


async def test_wrong_signature_gets_401_and_is_not_delivered(
        slack: FakeSlackServer, http_mode: tuple[HttpApp, Inbox]) -> None:
    app, inbox = http_mode
    body = slack.message_event("D1", "U1", "forged")
    assert await post_event(app.url, body, "not-the-secret") == 401
    raw = json.dumps(body)
    stale = signed_headers(raw, SECRET, timestamp=1_000_000_000)       # a replayed old request
    async with aiohttp.ClientSession() as http:
        async with http.post(app.url, data=raw, headers={"Content-Type": "application/json", **stale}) as r:
            assert r.status == 401
        async with http.post(app.url, data=raw, headers={"Content-Type": "application/json"}) as r:
            assert r.status == 401
    assert inbox.events == []


async def test_channel_mention_thread_reply_and_double_subscription(
        slack: FakeSlackServer, http_mode: tuple[HttpApp, Inbox]) -> None:
    app, inbox = http_mode
    mention = slack.message_event("C1", "U1", f"<@{BOT_USER_ID}> deploy it", channel_type="channel")
    assert await post_event(app.url, mention, SECRET) == 200
    # The same message again as an app_mention event (apps subscribed to both get both).
    twin = slack.message_event("C1", "U1", f"<@{BOT_USER_ID}> deploy it", channel_type="channel",
                               ts=mention["event"]["ts"], event_type="app_mention")
    assert await post_event(app.url, twin, SECRET) == 200
    reply = slack.message_event("C1", "U1", "and the docs", channel_type="channel", thread_ts="1700.1",
                                parent_user_id=BOT_USER_ID)
    assert await post_event(app.url, reply, SECRET) == 200
    own = slack.message_event("C1", BOT_USER_ID, "my own post", channel_type="channel", bot_id="BBOT0001")
    assert await post_event(app.url, own, SECRET) == 200
    first, second = inbox.events
    assert isinstance(first, InboundMessage) and first.mentioned and first.text == "deploy it"
    assert not first.is_dm
    assert isinstance(second, InboundMessage) and second.thread_id == "1700.1" and second.reply_to_bot
    assert not second.mentioned


async def test_send_converts_to_mrkdwn_and_buttons_become_block_kit(
        slack: FakeSlackServer, http_mode: tuple[HttpApp, Inbox]) -> None:
    app, inbox = http_mode
    sent = await app.adapter.send(OutboundMessage(chat_id="D1", text="**Done** in `a<b` — [log](https://x.org)",
                                                  thread_id="1700.1"))
    [msg] = slack.sent("D1")
    assert msg["text"] == "*Done* in `a&lt;b` — <https://x.org|log>"
    assert msg["thread_ts"] == "1700.1" and msg["blocks"] is None
    assert sent.message_id == msg["ts"]

    await app.adapter.edit(sent, "**Done**, really")
    assert msg["text"] == "*Done*, really"

    question = await app.adapter.send(OutboundMessage(chat_id="D1", text="Run _this_?", buttons=(
        Button("Approve", "approve", "call-1", style="primary"), Button("Deny", "deny", "call-1", style="danger"))))
    blocks = slack.sent("D1")[1]["blocks"]
    assert blocks[0] == {"type": "section", "text": {"type": "mrkdwn", "text": "Run _this_?"}}
    buttons = blocks[1]["elements"]
    assert [(b["text"]["text"], b["action_id"], b["value"], b.get("style")) for b in buttons] == [
        ("Approve", "approve", "call-1", "primary"), ("Deny", "deny", "call-1", "danger")]

    payload = slack.block_action("D1", "U1", "approve", "call-1", message_ts=question.message_id)
    assert await post_action(app.url, payload, SECRET) == 200
    assert await post_action(app.url, payload, "wrong") == 401
    [press] = inbox.events
    assert press == ButtonPress(platform="slack", chat_id="D1", user_id="U1", action_id="approve",
                                value="call-1", message_id=question.message_id)


async def test_429_and_permanent_errors(slack: FakeSlackServer, http_mode: tuple[HttpApp, Inbox]) -> None:
    app, _ = http_mode
    # slack_sdk's async client does not retry a 429 by default (only connection errors, once).
    slack.fail_next(1, status=429, retry_after=7, method="chat.postMessage")
    with pytest.raises(DeliveryError) as info:
        await app.adapter.send(OutboundMessage(chat_id="D1", text="hi"))
    assert info.value.retry_after == 7 and not info.value.permanent
    with pytest.raises(DeliveryError) as info:
        await app.adapter.send(OutboundMessage(chat_id="", text="hi"))
    assert info.value.permanent
    slack.fail_next(1, status=200, method="chat.postMessage", error="invalid_blocks")
    await app.adapter.send(OutboundMessage(chat_id="D1", text="**x**", buttons=(Button("OK", "ok"),)))
    [msg] = slack.sent("D1")
    assert msg["text"] == "x" and msg["mrkdwn"] is False       # resent as plain text
    assert msg["blocks"][0]["text"]["type"] == "plain_text"


async def test_files_are_downloaded_with_the_bot_token(
        slack: FakeSlackServer, http_mode: tuple[HttpApp, Inbox]) -> None:
    app, inbox = http_mode
    image = slack.add_file("chart.png", b"\x89PNG chart", "image/png")
    elsewhere = dict(slack.add_file("x.pdf", b"%PDF", "application/pdf"),
                     url_private_download="http://127.0.0.2:9/steal", url_private="http://127.0.0.2:9/steal")
    body = slack.message_event("D1", "U1", "look", files=[image, elsewhere])
    assert await post_event(app.url, body, SECRET) == 200
    [event] = inbox.events
    assert isinstance(event, InboundMessage)
    png, pdf = event.attachments
    assert png.kind == "image" and png.data == b"\x89PNG chart" and png.filename == "chart.png"
    assert pdf.kind == "document" and pdf.data is None        # the token never leaves for another host


async def test_native_slash_command_arrives_as_a_message(
        slack: FakeSlackServer, http_mode: tuple[HttpApp, Inbox]) -> None:
    from urllib.parse import urlencode

    app, inbox = http_mode
    raw = urlencode({"command": "/usage", "text": "week", "user_id": "U1", "channel_id": "D1",
                     "channel_name": "directmessage", "team_id": "T0001", "trigger_id": "trig-9",
                     "response_url": "https://hooks.slack.com/commands/x"})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed_headers(raw, SECRET)}
    async with aiohttp.ClientSession() as http, http.post(app.url, data=raw, headers=headers) as r:
        assert r.status == 200
    [event] = inbox.events
    assert isinstance(event, InboundMessage)
    assert (event.text, event.chat_id, event.user_id, event.is_dm) == ("/usage week", "D1", "U1", True)
    assert event.dedup_key == "trig-9"


# --- Socket Mode ------------------------------------------------------------------------------

async def test_socket_mode_receives_and_reconnects_without_duplicates_or_gaps(slack: FakeSlackServer) -> None:
    inbox = Inbox()
    adapter = SlackAdapter(inbox, token=slack.bot_token, api_base=slack.api_base, mode="socket",
                           app_token=slack.app_token, ping_interval=0.2)
    await adapter.start()
    try:
        await slack.wait_connections(1)
        first = slack.message_event("D1", "U1", "one")
        slack.queue_event(first)
        await inbox.wait(1)
        await slack.drop_socket()                       # the server closes the websocket
        slack.queue_event(slack.message_event("D1", "U1", "two"))   # pending until a client is back
        await slack.wait_connections(2)
        await inbox.wait(2)
        await slack.request_refresh()                   # Slack's "disconnect: refresh_requested"
        await slack.wait_connections(3)
        slack.queue_event(slack.message_event("D1", "U1", "three"))
        await inbox.wait(3)
        await asyncio.sleep(0.3)                        # a duplicate would have arrived by now
        texts = [e.text for e in inbox.events if isinstance(e, InboundMessage)]
        assert texts == ["one", "two", "three"]
        assert adapter.status.connected and adapter.status.reconnects >= 1
        assert ("apps.connections.open", {}) in [(m, {}) for m, _ in slack.calls]
        assert len(slack.acked) == 3
    finally:
        await adapter.stop()


def test_http_mode_requires_a_signing_secret() -> None:
    with pytest.raises(ValueError, match="signing_secret"):
        SlackAdapter(Inbox(), token="xoxb-1", mode="http")
    with pytest.raises(ValueError, match="app_token"):
        SlackAdapter(Inbox(), token="xoxb-1", mode="socket")


# --- Markdown → Slack mrkdwn -----------------------------------------------------------------------

def test_mrkdwn_escaping_and_code_fences() -> None:
    from adapters.markdown import to_slack_mrkdwn

    assert to_slack_mrkdwn("a < b & c > d") == "a &lt; b &amp; c &gt; d"
    assert to_slack_mrkdwn("**bold** *it* ~~no~~ snake_case") == "*bold* _it_ ~no~ snake_case"
    assert to_slack_mrkdwn("## Plan\n- step <1>") == "*Plan*\n• step &lt;1&gt;"
    assert to_slack_mrkdwn("[docs](https://e.org/a|b)") == "<https://e.org/a%7Cb|docs>"
    assert to_slack_mrkdwn("```python\nif a < b:\n    x = **y**\n```") == \
        "```\nif a &lt; b:\n    x = **y**\n```"
    assert to_slack_mrkdwn("> quoted\n> more") == "> quoted\n> more"
