"""Hypothesis on platform payloads: Telegram updates, Slack events and Discord messages, well-formed
and not, reach the adapter through the real client library and a fake platform server. Each one
becomes a message, is ignored, or is skipped with one log line naming it; never a traceback, and the
adapter goes on receiving (a good message sent after it arrives)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, seed
from hypothesis import strategies as st

from adapters.base import ButtonPress, InboundMessage
from adapters.discord import DiscordAdapter
from adapters.slack import SlackAdapter
from adapters.telegram import TelegramAdapter
from tests.fakes.discord_server import BOT_ID, GUILD_ID, TEXT_CHANNEL_ID, FakeDiscordServer, running_fake_discord
from tests.fakes.inbox import Inbox
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.slack_server import BOT_USER_ID, FakeSlackServer, post_event
from tests.fakes.telegram_server import FakeTelegramServer
from tests.fuzz_support import SEED, SLOW_FUZZ

HOSTILE_TEXT = st.text(max_size=40) | st.sampled_from(["\ud800", "\x00", "@hermes_test_bot", "/start@hermes_test_bot",
                                                       "\u202e\u200b", "a" * 5000, "😀" * 10])
IDS = st.integers(-(2 ** 63), 2 ** 63) | st.sampled_from([0, 1, 42, -100])


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def telegram_user(draw: Any) -> dict[str, Any] | None:
    user = {"id": draw(IDS), "is_bot": draw(st.booleans()), "first_name": draw(HOSTILE_TEXT)}
    for key in ("last_name", "username"):
        if draw(st.booleans()):
            user[key] = draw(HOSTILE_TEXT)
    return draw(st.sampled_from([user, user, user, None, {}]))


@st.composite
def telegram_message(draw: Any, depth: int = 0) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": draw(IDS), "date": draw(st.integers(0, 2 ** 40))}
    if draw(st.integers(0, 9)):
        message["chat"] = {"id": draw(IDS), "type": draw(st.sampled_from(["private", "group", "supergroup",
                                                                          "channel", "sender", "x"]))}
    sender = draw(telegram_user())
    if sender is not None:
        message["from"] = sender
    field = draw(st.sampled_from(["text", "caption", None]))
    if field:
        message[field] = draw(HOSTILE_TEXT)
        entities = draw(st.lists(st.fixed_dictionaries({
            "type": st.sampled_from(["mention", "bot_command", "text_mention", "url", "bold", "custom_emoji", "x"]),
            "offset": st.integers(-5, 60), "length": st.integers(-5, 60)},
            optional={"user": telegram_user()}), max_size=3))
        if entities:
            message["entities" if field == "text" else "caption_entities"] = entities
    if draw(st.booleans()):
        message["message_thread_id"] = draw(IDS)
        message["is_topic_message"] = draw(st.booleans())
    if depth == 0 and draw(st.integers(0, 3)) == 0:
        message["reply_to_message"] = draw(telegram_message(depth=1))
    if draw(st.integers(0, 5)) == 0:
        message["photo"] = draw(st.lists(st.fixed_dictionaries({
            "file_id": st.text(max_size=8), "file_unique_id": st.just("u"), "width": st.integers(-1, 5000),
            "height": st.integers(-1, 5000)}, optional={"file_size": st.integers(-1, 2 ** 40)}), max_size=2))
    if draw(st.integers(0, 5)) == 0:
        message["document"] = draw(st.fixed_dictionaries({"file_id": st.text(max_size=8),
                                                          "file_unique_id": st.just("u")}, optional={
            "file_name": HOSTILE_TEXT, "mime_type": HOSTILE_TEXT, "file_size": st.integers(-1, 2 ** 40)}))
    return message


@st.composite
def telegram_updates(draw: Any) -> tuple[str, dict[str, Any]]:
    if draw(st.integers(0, 4)) == 0:
        query: dict[str, Any] = {"id": draw(st.text(max_size=8)), "chat_instance": "ci",
                                 "data": draw(maybe(HOSTILE_TEXT))}
        sender = draw(telegram_user())
        if sender is not None:
            query["from"] = sender
        if draw(st.booleans()):
            query["message"] = draw(telegram_message(depth=1))
        return "callback_query", query
    return draw(st.sampled_from(["message", "edited_message", "channel_post"])), draw(telegram_message())


class Tracebacks(logging.Handler):
    """Records the log records with a traceback from our adapters and the platform libraries."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.name.startswith(("adapters", "slack_bolt", "slack_sdk", "discord")):
            self.records.append(record)


@pytest.fixture
def tracebacks() -> Any:
    handler = Tracebacks()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture
async def telegram() -> Any:
    server = await FakeTelegramServer().start()
    inbox = Inbox()
    adapter = TelegramAdapter(inbox, token=server.token, api_base=server.api_base, poll_timeout=1,
                              reconnect_base=0.01)
    await adapter.start()
    yield server, adapter, inbox
    await adapter.stop()
    await server.stop()


@seed(SEED)
@SLOW_FUZZ
@given(update=telegram_updates())
async def test_a_telegram_update_becomes_a_message_or_is_skipped_and_polling_goes_on(
        telegram: tuple[FakeTelegramServer, TelegramAdapter, Inbox], tracebacks: Tracebacks,
        update: tuple[str, dict[str, Any]]) -> None:
    server, adapter, inbox = telegram
    before = len(inbox.events)
    server._queue(*update)
    server.queue_message(42, 42, "sentinel")
    events = await inbox.wait(before + 1, timeout=10)
    while getattr(events[-1], "text", None) != "sentinel":
        events = await inbox.wait(len(events) + 1, timeout=10)
    for event in events[before:-1]:
        assert isinstance(event, (InboundMessage, ButtonPress))
        if isinstance(event, InboundMessage):
            assert event.chat_id and event.user_id and isinstance(event.text, str)
    assert [r.getMessage() for r in tracebacks.records] == []
    assert adapter.status.connected


SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                    max_size=3), max_leaves=6)


@st.composite
def slack_events(draw: Any, server: FakeSlackServer) -> dict[str, Any]:
    body = server.message_event(draw(st.sampled_from(["D1", "C1", ""])), draw(st.sampled_from(["U1", "U2"])),
                                draw(HOSTILE_TEXT | st.just(f"<@{BOT_USER_ID}> hi <@{BOT_USER_ID}|x")),
                                channel_type=draw(st.sampled_from(["im", "channel", "group", "mpim", "x"])),
                                event_type=draw(st.sampled_from(["message", "app_mention"])))
    event = body["event"]
    for key in draw(st.lists(st.sampled_from(["ts", "thread_ts", "parent_user_id", "files", "subtype", "user",
                                              "text", "channel", "bot_id", "channel_type"]), max_size=4)):
        event[key] = draw(ANY_JSON | st.sampled_from([[{"size": "big", "name": {}, "url_private": "http://["}],
                                                      [{"mimetype": 7, "url_private": "https://files.slack.com/x",
                                                        "size": 10 ** 30}], "file_share"]))
    if draw(st.integers(0, 9)) == 0:
        body.pop("event_id")
    return body


@pytest.fixture
async def slack() -> AsyncIterator[tuple[FakeSlackServer, SlackAdapter, str, Inbox]]:
    server = await FakeSlackServer().start()
    server.users["U1"] = {"real_name": "Ada Lovelace", "display_name": "ada"}
    inbox = Inbox()
    adapter = SlackAdapter(inbox, token=server.bot_token, api_base=server.api_base, signing_secret=SLACK_SECRET)
    app = web.Application()
    adapter.attach_routes(app)
    runner, port = await serve_on_loopback(app)
    await adapter.start()
    yield server, adapter, f"http://127.0.0.1:{port}/slack/events", inbox
    await adapter.stop()
    await runner.cleanup()
    await server.stop()


@seed(SEED)
@SLOW_FUZZ
@given(data=st.data())
async def test_a_slack_event_becomes_a_message_or_is_ignored_and_events_go_on(
        slack: tuple[FakeSlackServer, SlackAdapter, str, Inbox], tracebacks: Tracebacks, data: st.DataObject) -> None:
    server, _, url, inbox = slack
    body = data.draw(slack_events(server))
    before = len(inbox.events)
    status = await post_event(url, body, SLACK_SECRET)
    assert status < 500 or status == 503, status  # 503: not receiving (Slack retries); never a crash
    for event in inbox.events[before:]:
        assert isinstance(event, InboundMessage) and isinstance(event.text, str) and event.user_id
    assert await post_event(url, server.message_event("D1", "U1", "sentinel"), SLACK_SECRET) == 200
    assert getattr(inbox.events[-1], "text", None) == "sentinel"
    assert [r.getMessage() for r in tracebacks.records] == []


DISCORD_USER = "950000000000000001"
SNOWFLAKES = st.sampled_from(["1", "0", "-1", "99999999999999999999999", "x", "950000000000000001", BOT_ID])


@st.composite
def discord_messages(draw: Any) -> dict[str, Any]:
    """A MESSAGE_CREATE payload in the fake's shape, with fields replaced by odd values."""
    return {key: draw(st.sampled_from([value, value, value]) | ANY_JSON | SNOWFLAKES)
            for key, value in {"content": draw(HOSTILE_TEXT), "type": 0, "tts": False, "pinned": False,
                               "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
                               "mention_everyone": False, "edited_timestamp": None}.items()}


@pytest.fixture
async def discord_fake() -> AsyncIterator[tuple[FakeDiscordServer, DiscordAdapter, Inbox]]:
    async with running_fake_discord() as server:
        inbox = Inbox()
        adapter = DiscordAdapter(inbox, token=server.token, api_base=server.api_base,
                                 gateway_url=server.gateway_url, ready_timeout=10, guild_ready_timeout=0.05)
        await adapter.start()
        yield server, adapter, inbox
        await adapter.stop()


@seed(SEED)
@SLOW_FUZZ
@given(fields=discord_messages(), guild=st.booleans())
async def test_a_discord_message_becomes_a_message_or_is_skipped_and_the_gateway_goes_on(
        discord_fake: tuple[FakeDiscordServer, DiscordAdapter, Inbox], tracebacks: Tracebacks,
        fields: dict[str, Any], guild: bool) -> None:
    server, adapter, inbox = discord_fake
    before = len(inbox.events)
    message: dict[str, Any] = {
        "id": str(1_300_000_000_000_000_000 + before), "channel_id": TEXT_CHANNEL_ID, "timestamp":
        "2026-12-07T09:00:00+00:00", "author": {"id": DISCORD_USER, "username": "ada", "discriminator": "0",
                                                "avatar": None, "global_name": "Ada"}, **fields}
    if guild:
        message.update(guild_id=GUILD_ID, member={"roles": [], "joined_at": "2024-01-01T00:00:00+00:00",
                                                  "deaf": False, "mute": False, "nick": None})
    server._dispatch("MESSAGE_CREATE", message)
    server.queue_message(TEXT_CHANNEL_ID, DISCORD_USER, "sentinel", guild=guild)
    events = await inbox.wait(before + 1, timeout=10)
    while getattr(events[-1], "text", None) != "sentinel":
        events = await inbox.wait(len(events) + 1, timeout=10)
    for event in events[before:-1]:
        assert isinstance(event, InboundMessage) and isinstance(event.text, str)
    assert [r.getMessage() for r in tracebacks.records] == []
    assert adapter.status.connected
