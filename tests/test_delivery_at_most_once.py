"""Sends are at most once: a send that may have reached the platform is never posted twice.

The real libraries over real sockets against the fake platform servers: a fake that carries out
a post and then answers too late (or drops the connection) makes the client fail after the
message was posted. Telegram and Slack have no idempotency key, so such a send is not retried
and is kept in `undelivered` saying it may already have been delivered; failures before the
request went out (connection refused) or HTTP error answers are still retried. Discord posts
carry a nonce from the idempotency key, so a retry there returns the first message.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import DeliveryError, OutboundMessage
from adapters.discord import DiscordAdapter
from adapters.slack import SlackAdapter
from adapters.telegram import TelegramAdapter
from gateway.delivery import Delivery, RetryPolicy
from gateway.metrics import Metrics
from gateway.store import StateStore, open_store
from tests.fakes.discord_server import FakeDiscordServer, running_fake_discord
from tests.fakes.inbox import Inbox
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.telegram_server import FakeTelegramServer

MAYBE = "may already have been delivered"
POLICY = RetryPolicy(attempts=3, base_delay=0.01)
DM = "940000000000000001"


@pytest.fixture
async def store(home: Path) -> AsyncIterator[StateStore]:
    s = await open_store(os.environ.get("HERMES_STORE_URL") or home / "state.db")   # --store=postgresql too
    yield s
    await s.close()


async def undelivered(store: StateStore) -> list[dict[str, Any]]:
    return await store.undelivered_rows()


# --- Telegram ------------------------------------------------------------------------------------

@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def tg_adapter(tg: FakeTelegramServer) -> AsyncIterator[TelegramAdapter]:
    # Sends need no polling: the adapter is not started, only its bot is used (and shut down).
    adapter = TelegramAdapter(Inbox(), token=tg.token, api_base=tg.api_base, read_timeout=0.2)
    yield adapter
    await adapter.stop()


def sends(tg: FakeTelegramServer) -> int:
    return sum(1 for method, _ in tg.calls if method == "sendMessage")


async def test_telegram_answer_after_the_read_timeout_is_posted_once_and_kept(
        tg: FakeTelegramServer, tg_adapter: TelegramAdapter, store: StateStore) -> None:
    tg.stall_next(1, method="sendMessage", seconds=2)
    delivery = Delivery(store, Metrics(), POLICY)
    message = OutboundMessage(chat_id="42", text="the answer is 4", idempotency_key="telegram:9:0")
    assert await delivery.send(tg_adapter, message) is None
    assert [m["text"] for m in tg.sent(42)] == ["the answer is 4"]      # the user has it, once
    assert sends(tg) == 1                                                # and it was not sent again
    [row] = await undelivered(store)
    assert (row["chat_id"], row["text"], row["attempts"]) == ("42", "the answer is 4", 1)
    assert MAYBE in row["error"] and "never posted twice" in row["error"] and "ReadTimeout" in row["error"]

    # The same message sent again (a streamed reply rendered once more) is not posted either.
    assert await delivery.send(tg_adapter, message) is None
    assert sends(tg) == 1 and len(await undelivered(store)) == 1


async def test_telegram_connection_dropped_before_the_answer_is_maybe_delivered(
        tg: FakeTelegramServer, tg_adapter: TelegramAdapter) -> None:
    tg.drop_next(1, method="sendMessage")
    with pytest.raises(DeliveryError) as info:
        await tg_adapter.send(OutboundMessage(chat_id="42", text="hi"))
    assert info.value.maybe_delivered and not info.value.permanent
    assert [m["text"] for m in tg.sent(42)] == ["hi"]


async def test_telegram_error_answers_are_still_retried_and_posted_once(
        tg: FakeTelegramServer, tg_adapter: TelegramAdapter, store: StateStore) -> None:
    tg.fail_next(1, status=502, method="sendMessage")
    with pytest.raises(DeliveryError) as info:
        await tg_adapter.send(OutboundMessage(chat_id="42", text="hi"))
    assert not info.value.maybe_delivered                  # Telegram answered: nothing was posted

    tg.fail_next(2, status=502, method="sendMessage")
    delivery = Delivery(store, Metrics(), POLICY)
    sent = await delivery.send(tg_adapter, OutboundMessage(chat_id="42", text="after two errors",
                                                           idempotency_key="k"))
    assert sent is not None and [m["text"] for m in tg.sent(42)] == ["after two errors"]
    assert sends(tg) == 4 and await undelivered(store) == []


async def test_telegram_connection_refused_is_retried_and_posted_once(store: StateStore) -> None:
    down = await FakeTelegramServer().start()
    port = down.port
    await down.stop()                                      # nothing listens there any more
    adapter = TelegramAdapter(Inbox(), token=down.token, api_base=f"http://127.0.0.1:{port}", read_timeout=0.5)
    with pytest.raises(DeliveryError) as info:
        await adapter.send(OutboundMessage(chat_id="42", text="hi"))
    assert not info.value.maybe_delivered                  # the request never left

    back = FakeTelegramServer()

    async def platform_comes_back(delay: float) -> None:
        if not back.port:
            await back.start(port=port)

    try:
        delivery = Delivery(store, Metrics(), POLICY, sleep=platform_comes_back)
        sent = await delivery.send(adapter, OutboundMessage(chat_id="42", text="once", idempotency_key="k"))
        assert sent is not None and [m["text"] for m in back.sent(42)] == ["once"]
        assert await undelivered(store) == []
    finally:
        await adapter.stop()
        await back.stop()


# --- Slack ----------------------------------------------------------------------------------------

@pytest.fixture
async def slack() -> AsyncIterator[tuple[FakeSlackServer, SlackAdapter]]:
    server = await FakeSlackServer().start()
    adapter = SlackAdapter(Inbox(), token=server.bot_token, api_base=server.api_base, signing_secret="s",
                           request_timeout=0.2)
    yield server, adapter
    await server.stop()


async def test_slack_post_answered_too_late_is_posted_once_and_kept(
        slack: tuple[FakeSlackServer, SlackAdapter], store: StateStore) -> None:
    server, adapter = slack
    server.stall_next(1, method="chat.postMessage", seconds=2)
    delivery = Delivery(store, Metrics(), POLICY)
    assert await delivery.send(adapter, OutboundMessage(chat_id="C1", text="hello", idempotency_key="s:1:0")) is None
    assert [m["text"] for m in server.sent("C1")] == ["hello"]
    assert server.calls_of("chat.postMessage") == 1
    [row] = await undelivered(store)
    assert MAYBE in row["error"] and row["attempts"] == 1


async def test_slack_connection_dropped_after_the_post_is_not_repeated_by_the_sdk(
        slack: tuple[FakeSlackServer, SlackAdapter]) -> None:
    server, adapter = slack
    # slack_sdk's default connection-error handler would repeat this post by itself.
    server.drop_next(1, method="chat.postMessage")
    with pytest.raises(DeliveryError) as info:
        await adapter.send(OutboundMessage(chat_id="C1", text="hello"))
    assert info.value.maybe_delivered
    assert [m["text"] for m in server.sent("C1")] == ["hello"]
    assert server.calls_of("chat.postMessage") == 1


async def test_slack_error_answers_are_retried_and_refused_connections_may_be(
        slack: tuple[FakeSlackServer, SlackAdapter], store: StateStore) -> None:
    server, adapter = slack
    server.fail_next(1, status=500, method="chat.postMessage")
    delivery = Delivery(store, Metrics(), POLICY)
    assert await delivery.send(adapter, OutboundMessage(chat_id="C1", text="hello", idempotency_key="k")) is not None
    assert [m["text"] for m in server.sent("C1")] == ["hello"] and await undelivered(store) == []

    await server.stop()                                   # nothing listens there any more
    with pytest.raises(DeliveryError) as info:
        await adapter.send(OutboundMessage(chat_id="C1", text="nobody listens"))
    assert not info.value.maybe_delivered and not info.value.permanent   # the request never left


# --- Discord --------------------------------------------------------------------------------------

@pytest.fixture
async def dc() -> AsyncIterator[tuple[FakeDiscordServer, DiscordAdapter]]:
    async with running_fake_discord() as server:
        adapter = DiscordAdapter(Inbox(), token=server.token, api_base=server.api_base,
                                 gateway_url=server.gateway_url, ready_timeout=10, guild_ready_timeout=0.05)
        await adapter.start()
        yield server, adapter
        await adapter.stop()


async def test_discord_retry_after_a_dropped_answer_reuses_the_nonce_and_posts_once(
        dc: tuple[FakeDiscordServer, DiscordAdapter], store: StateStore) -> None:
    server, adapter = dc
    server.drop_next(1)
    delivery = Delivery(store, Metrics(), POLICY)
    sent = await delivery.send(adapter, OutboundMessage(chat_id=DM, text="hello", idempotency_key="discord:7:0"))
    [message] = server.sent(DM)
    assert message["content"] == "hello"
    assert sent is not None and sent.message_id == message["id"]        # the first message, returned again
    first, retry = server.posts
    assert first["nonce"] == retry["nonce"] and first["enforce_nonce"] is True
    assert len(first["nonce"]) <= 25 and await undelivered(store) == []

    # Another chunk (another key) is another nonce: it is posted.
    await delivery.send(adapter, OutboundMessage(chat_id=DM, text="more", idempotency_key="discord:7:1"))
    assert [m["content"] for m in server.sent(DM)] == ["hello", "more"]
    assert server.posts[-1]["nonce"] != first["nonce"]


async def test_discord_send_without_a_key_is_not_retried_after_a_dropped_answer(
        dc: tuple[FakeDiscordServer, DiscordAdapter], store: StateStore) -> None:
    server, adapter = dc
    server.drop_next(1)
    with pytest.raises(DeliveryError) as info:
        await adapter.send(OutboundMessage(chat_id=DM, text="no key"))
    assert info.value.maybe_delivered                   # discord.py's random nonce dies with the call

    server.drop_next(1)
    assert await Delivery(store, Metrics(), POLICY).send(adapter, OutboundMessage(chat_id=DM, text="again")) is None
    assert [m["content"] for m in server.sent(DM)] == ["no key", "again"]
    [row] = await undelivered(store)
    assert MAYBE in row["error"]
