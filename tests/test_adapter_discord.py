"""The Discord adapter with the real discord.py against a fake REST API + gateway on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.base import Button, ButtonPress, DeliveryError, InboundMessage, OutboundMessage
from adapters.discord import DiscordAdapter
from tests.fakes.discord_server import (
    BOT_ID,
    TEXT_CHANNEL_ID,
    THREAD_ID,
    FakeDiscordServer,
    running_fake_discord,
)
from tests.fakes.inbox import Inbox

DM = "940000000000000001"
USER = "950000000000000001"



@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscordServer]:
    async with running_fake_discord() as server:
        yield server


@pytest.fixture
async def running(fake: FakeDiscordServer) -> AsyncIterator[tuple[DiscordAdapter, Inbox]]:
    inbox = Inbox()
    adapter = DiscordAdapter(inbox, token=fake.token, api_base=fake.api_base, gateway_url=fake.gateway_url,
                             ready_timeout=10, guild_ready_timeout=0.05)
    await adapter.start()
    yield adapter, inbox
    await adapter.stop()


async def test_dm_arrives_as_inbound_message(fake: FakeDiscordServer, running: tuple[DiscordAdapter, Inbox]) -> None:
    adapter, inbox = running
    assert adapter.status.connected and fake.identifies == 1
    message_id = fake.queue_message(DM, USER, "hello **there**")
    [event] = await inbox.wait(1)
    assert isinstance(event, InboundMessage)
    assert (event.platform, event.chat_id, event.user_id) == ("discord", DM, USER)
    assert event.display_name == "Ada Lovelace"
    assert event.text == "hello **there**"
    assert event.is_dm and not event.mentioned and event.thread_id is None
    assert event.message_id == message_id and event.dedup_key == message_id


async def test_guild_mention_thread_and_reply(fake: FakeDiscordServer, running: tuple[DiscordAdapter, Inbox]) -> None:
    _, inbox = running
    fake.queue_message(TEXT_CHANNEL_ID, USER, f"<@{BOT_ID}> summarise this", guild=True, mention_bot=True)
    fake.queue_message(THREAD_ID, USER, "in the thread", guild=True)
    fake.queue_message(TEXT_CHANNEL_ID, USER, "what about it?", guild=True, reply_to_bot_message="777")
    mention, threaded, reply = await inbox.wait(3)
    assert isinstance(mention, InboundMessage) and mention.mentioned and mention.text == "summarise this"
    assert not mention.is_dm and mention.chat_id == TEXT_CHANNEL_ID
    assert isinstance(threaded, InboundMessage) and threaded.chat_id == TEXT_CHANNEL_ID
    assert threaded.thread_id == THREAD_ID and not threaded.mentioned
    assert isinstance(reply, InboundMessage) and reply.reply_to_bot and reply.reply_to == "777"


async def test_send_edit_typing_and_threads(fake: FakeDiscordServer, running: tuple[DiscordAdapter, Inbox]) -> None:
    adapter, _ = running
    text = "**Done**\n```py\nprint('<ok>')\n```"
    sent = await adapter.send(OutboundMessage(chat_id=DM, text=text, reply_to="123"))
    [msg] = fake.sent(DM)
    assert msg["content"] == text                          # Discord renders Markdown itself
    assert msg["message_reference"]["message_id"] == "123" or msg["message_reference"]["message_id"] == 123
    await adapter.edit(sent, "**Done**, edited")
    assert msg["content"] == "**Done**, edited" and msg["edits"] == [text]
    await adapter.send(OutboundMessage(chat_id=TEXT_CHANNEL_ID, thread_id=THREAD_ID, text="in thread"))
    assert [m["content"] for m in fake.sent(THREAD_ID)] == ["in thread"]
    await adapter.typing(DM)
    assert ("POST", f"/channels/{DM}/typing") in fake.requests


async def test_buttons_render_as_components_and_presses_come_back(
        fake: FakeDiscordServer, running: tuple[DiscordAdapter, Inbox]) -> None:
    adapter, inbox = running
    long_value = "v" * 150                                 # over the 100-character custom_id limit
    sent = await adapter.send(OutboundMessage(chat_id=DM, text="Approve?", buttons=(
        Button("Approve", "approve", "call-1", style="primary"), Button("Deny", "deny", long_value, style="danger"))))
    [msg] = fake.sent(DM)
    [row] = msg["components"]
    approve, deny = row["components"]
    assert (approve["label"], approve["style"], approve["custom_id"]) == ("Approve", 1, "hermes|approve|call-1")
    assert (deny["label"], deny["style"]) == ("Deny", 4) and len(deny["custom_id"]) <= 100
    fake.queue_button_press(DM, USER, approve["custom_id"], sent.message_id)
    fake.queue_button_press(DM, USER, deny["custom_id"], sent.message_id)
    first, second = await inbox.wait(2)
    assert first == ButtonPress(platform="discord", chat_id=DM, user_id=USER, action_id="approve", value="call-1",
                                message_id=sent.message_id)
    assert isinstance(second, ButtonPress) and second.value == long_value
    for _ in range(50):
        if len(fake.interaction_callbacks) == 2:
            break
        await asyncio.sleep(0.01)
    assert [c["type"] for c in fake.interaction_callbacks] == [6, 6]   # deferred update: click acknowledged


async def test_rate_limits(fake: FakeDiscordServer, running: tuple[DiscordAdapter, Inbox]) -> None:
    adapter, _ = running
    # A short 429 is retried by discord.py itself after sleeping retry_after: one message posted.
    fake.fail_next(1, status=429, retry_after=0.05, method="POST")
    await adapter.send(OutboundMessage(chat_id=DM, text="after a short wait"))
    assert [m["content"] for m in fake.sent(DM)] == ["after a short wait"]
    # A wait over max_ratelimit_timeout (30 s) is raised instead: the delivery layer schedules it.
    fake.fail_next(1, status=429, retry_after=45, method="POST")
    with pytest.raises(DeliveryError) as info:
        await adapter.send(OutboundMessage(chat_id=DM, text="later"))
    assert info.value.retry_after == 45 and not info.value.permanent
    # A 429 without Discord's Via header (a proxy / Cloudflare) is not retried by the library.
    fake.fail_next(1, status=429, retry_after=2, method="POST", cloudflare=True)
    with pytest.raises(DeliveryError) as info:
        await adapter.send(OutboundMessage(chat_id=DM, text="later"))
    assert info.value.retry_after == 2
    with pytest.raises(DeliveryError) as info:
        await adapter.send(OutboundMessage(chat_id=DM, text="x" * 2001))
    assert info.value.permanent
    assert [m["content"] for m in fake.sent(DM)] == ["after a short wait"]


async def test_resumes_after_the_gateway_drops_without_duplicates_or_gaps(
        fake: FakeDiscordServer, running: tuple[DiscordAdapter, Inbox]) -> None:
    adapter, inbox = running
    fake.queue_message(DM, USER, "one")
    await inbox.wait(1)
    await fake.drop_gateway(code=4000)
    fake.queue_message(DM, USER, "two")          # sent while the client is away: replayed on RESUME
    await fake.wait_connected(identifies=1, resumes=1)
    fake.queue_message(DM, USER, "three")
    await inbox.wait(3)
    await asyncio.sleep(0.1)
    assert [e.text for e in inbox.events if isinstance(e, InboundMessage)] == ["one", "two", "three"]
    assert fake.identifies == 1 and fake.resumes == 1      # resumed the session, did not start a new one
    assert adapter.status.reconnects == 1 and adapter.status.connected


async def test_slash_commands_are_registered_and_invocations_arrive(
        fake: FakeDiscordServer, running: tuple[DiscordAdapter, Inbox]) -> None:
    adapter, _ = running
    await adapter.set_commands([("help", "Show help"), ("skill-name", "Run a skill"), ("Bad Name!", "x")])
    assert [c["name"] for c in fake.commands] == ["help", "skill-name"]
    assert fake.commands[0]["description"] == "Show help"
    assert fake.commands[0]["options"][0]["name"] == "args"


async def test_bad_token_fails_start_clearly(fake: FakeDiscordServer) -> None:
    adapter = DiscordAdapter(Inbox(), token="wrong", api_base=fake.api_base, gateway_url=fake.gateway_url)
    with pytest.raises(RuntimeError, match="token was refused"):
        await adapter.start()


async def test_attachments_are_downloaded_under_the_cap(fake: FakeDiscordServer) -> None:
    inbox = Inbox()
    adapter = DiscordAdapter(inbox, token=fake.token, api_base=fake.api_base, gateway_url=fake.gateway_url,
                             guild_ready_timeout=0.05, max_attachment_bytes=100)
    await adapter.start()
    try:
        small = fake.attachment("diagram.png", b"\x89PNG small", "image/png")
        big = fake.attachment("dump.log", b"x" * 500, "text/plain")
        fake.queue_message(DM, USER, "see these", attachments=[small, big])
        [event] = await inbox.wait(1)
        assert isinstance(event, InboundMessage)
        image, log = event.attachments
        assert image.kind == "image" and image.data == b"\x89PNG small"
        assert log.kind == "document" and log.data is None and log.size == 500
    finally:
        await adapter.stop()


async def test_slash_command_invocation_arrives_as_a_message(
        fake: FakeDiscordServer, running: tuple[DiscordAdapter, Inbox]) -> None:
    adapter, inbox = running
    await adapter.set_commands([("model", "Show or switch the model")])
    [command] = fake.commands
    fake._dispatch("INTERACTION_CREATE", {
        "id": "960000000000000001", "application_id": "900000000000000002", "type": 2, "token": "tok",
        "version": 1, "channel_id": DM, "channel": {"id": DM, "type": 1},
        "user": {"id": USER, "username": "ada", "discriminator": "0", "avatar": None, "global_name": "Ada"},
        "data": {"id": "961", "name": "model", "type": 1,
                 "options": [{"name": "args", "type": 3, "value": "gpt-4o"}]},
        "locale": "en-US", "entitlements": [], "authorizing_integration_owners": {}, "context": 1,
        "attachment_size_limit": 8388608})
    [event] = await inbox.wait(1)
    assert isinstance(event, InboundMessage)
    assert (event.text, event.chat_id, event.user_id, event.is_dm) == ("/model gpt-4o", DM, USER, True)
    assert fake.interaction_callbacks[-1]["type"] == 4                 # answered within Discord's 3 s
    assert fake.interaction_callbacks[-1]["data"]["flags"] == 64       # ephemeral: only the user sees it
    assert command["name"] == "model"
