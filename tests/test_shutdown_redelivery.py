"""A message that arrives while the gateway shuts down is answered by the next process, once.

The real gateway and the real libraries against the fake platforms: a turn is running (the fake
model takes its time), `Gateway.stop()` (what SIGTERM calls) begins, and a new message arrives
during the grace period. The gateway finishes the running turn but does not take the new
message; the platform keeps it (Telegram: unconfirmed; Slack: a 503 the Events API retries, an
unacknowledged Socket Mode envelope), and a new gateway on the same home answers it exactly
once, without answering the earlier message again. The OpenAI-compatible API answers 503 while
the gateway is stopping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from adapters.discord import DiscordAdapter
from gateway.app import Gateway
from gateway.config import load_config
from gateway.delivery import RetryPolicy
from gateway.home import Home
from tests.approvals_support import wait_for
from tests.conftest import model_config
from tests.fakes.discord_server import FakeDiscordServer, running_fake_discord
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.inbox import Inbox
from tests.fakes.model_server import FakeModelServer, text
from tests.fakes.slack_server import FakeSlackServer, deliver_event
from tests.fakes.telegram_server import FakeTelegramServer

USER = 42
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_USER, SLACK_DM = "U1", "D1"
TURN_SECONDS = 0.8       # how long the fake model takes for the turn that is running at stop


async def start_real(home: Path, model_server: FakeModelServer, section: str) -> Gateway:
    """A gateway as `hermes gateway` runs it, adapters built from the config."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(model_config(model_server) + api_section() + section, encoding="utf-8")
    hermes_home = Home(home)
    gateway = Gateway(load_config(None, hermes_home, environ={}), hermes_home, grace=5.0,
                      retry_policy=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    await gateway.start()
    return gateway


async def begin_stop(gateway: Gateway, model_server: FakeModelServer) -> asyncio.Task[None]:
    """Start the graceful stop while a turn is running; returns once receiving has stopped."""
    await wait_for(lambda: model_server.requests, what="the first turn's model call")
    stopping = asyncio.create_task(gateway.stop())
    await wait_for(lambda: gateway.health()["status"] == "stopping", what="the gateway to stop receiving")
    assert not stopping.done(), "the running turn should still be finishing"
    return stopping


# --- Telegram ------------------------------------------------------------------------------------

@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer().start()
    yield server
    await server.stop()


def telegram_section(tg: FakeTelegramServer) -> str:
    return (f'[telegram]\nenabled = true\ntoken = "{tg.token}"\napi_base = "{tg.api_base}"\n'
            f'poll_timeout = 0.5\nallow_users = ["{USER}"]\n')


def texts(tg: FakeTelegramServer) -> list[str]:
    return [m["text"] for m in tg.sent(USER)]


async def test_telegram_message_during_shutdown_is_answered_once_by_the_next_gateway(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    model_server.add(text("first answer", delay=TURN_SECONDS), text("second answer"))
    gateway = await start_real(home, model_server, telegram_section(tg))
    first = tg.queue_message(USER, USER, "first question")
    stopping = await begin_stop(gateway, model_server)

    second = tg.queue_message(USER, USER, "second question")      # arrives during the grace period
    await asyncio.sleep(0.3)                                       # a poll would have taken it by now
    await asyncio.wait_for(stopping, 10)

    assert texts(tg) == ["first answer"]                # the running turn finished and was delivered
    assert tg.unconfirmed() == [second]                 # Telegram still holds the new message
    assert tg.delivered[second] <= 1                    # (at most seen by the confirming call)
    assert len(model_server.requests) == 1

    # Telegram hands the handled update out again too, as when the confirming call is lost:
    # the deduplication table, written before the first gateway stopped, keeps it unanswered.
    tg.redeliver(first)
    again = await start_real(home, model_server, telegram_section(tg))
    try:
        await wait_for(lambda: "second answer" in texts(tg), what="the answer to the second message")
        await asyncio.sleep(0.2)
        assert texts(tg) == ["first answer", "second answer"]
        assert len(model_server.requests) == 2
        assert "second question" in str(model_server.requests[1]["messages"][-1])
        await wait_for(lambda: not tg.unconfirmed(), what="the new gateway to confirm both updates")
    finally:
        await again.stop()
    assert texts(tg) == ["first answer", "second answer"]


# --- Slack ---------------------------------------------------------------------------------------

@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackServer]:
    server = await FakeSlackServer().start()
    yield server
    await server.stop()


def slack_section(slack: FakeSlackServer, mode: str = "http") -> str:
    return (f'[slack]\nenabled = true\nmode = "{mode}"\ntoken = "{slack.bot_token}"\n'
            f'app_token = "{slack.app_token}"\napi_base = "{slack.api_base}"\n'
            f'signing_secret = "{SECRET}"\nallow_users = ["{SLACK_USER}"]\n')


def slack_texts(slack: FakeSlackServer) -> list[str]:
    return [m["text"] for m in slack.sent(SLACK_DM)]


async def test_slack_event_during_shutdown_gets_503_and_its_retry_is_answered_once(
        home: Path, model_server: FakeModelServer, slack: FakeSlackServer) -> None:
    model_server.add(text("first answer", delay=TURN_SECONDS), text("second answer"))
    gateway = await start_real(home, model_server, slack_section(slack))
    url = gateway.url + "slack/events"
    first = slack.message_event(SLACK_DM, SLACK_USER, "first question")
    assert (await deliver_event(url, first, SECRET))[0] == 200
    stopping = await begin_stop(gateway, model_server)

    second = slack.message_event(SLACK_DM, SLACK_USER, "second question")
    status, headers = await deliver_event(url, second, SECRET)
    assert status == 503 and headers.get("Retry-After")          # Slack will retry it
    unsigned, _ = await deliver_event(url, second, "not-the-secret")
    assert unsigned == 401                                        # the signature is still checked
    await asyncio.wait_for(stopping, 10)
    assert slack_texts(slack) == ["first answer"]

    again = await start_real(home, model_server, slack_section(slack))
    url = again.url + "slack/events"
    try:
        # Slack's retries: the refused event, and (after a lost 200) the one already answered.
        assert (await deliver_event(url, first, SECRET, retry_num=1))[0] == 200
        assert (await deliver_event(url, second, SECRET, retry_num=1))[0] == 200
        assert (await deliver_event(url, second, SECRET, retry_num=2))[0] == 200
        await wait_for(lambda: "second answer" in slack_texts(slack), what="the answer to the retried event")
        await asyncio.sleep(0.2)
        assert slack_texts(slack) == ["first answer", "second answer"]
        assert len(model_server.requests) == 2
    finally:
        await again.stop()


async def test_slack_socket_mode_envelope_during_shutdown_is_not_acked_and_answered_after_restart(
        home: Path, model_server: FakeModelServer, slack: FakeSlackServer) -> None:
    model_server.add(text("first answer", delay=TURN_SECONDS), text("second answer"))
    gateway = await start_real(home, model_server, slack_section(slack, "socket"))
    await slack.wait_connections(1)
    slack.queue_event(slack.message_event(SLACK_DM, SLACK_USER, "first question"))
    stopping = await begin_stop(gateway, model_server)

    second = slack.queue_event(slack.message_event(SLACK_DM, SLACK_USER, "second question"))
    await asyncio.wait_for(stopping, 10)
    assert slack_texts(slack) == ["first answer"]
    assert slack.unacked() == [second]                   # Slack delivers it again

    again = await start_real(home, model_server, slack_section(slack, "socket"))
    try:
        await wait_for(lambda: "second answer" in slack_texts(slack), what="the redelivered envelope's answer")
        await wait_for(lambda: not slack.unacked(), what="the envelope to be acknowledged")
        await asyncio.sleep(0.2)
        assert slack_texts(slack) == ["first answer", "second answer"]
        assert len(model_server.requests) == 2
    finally:
        await again.stop()


# --- Discord -------------------------------------------------------------------------------------

@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscordServer]:
    async with running_fake_discord() as server:
        yield server


async def test_discord_message_after_stop_receiving_is_ignored_and_logged(
        fake_discord: FakeDiscordServer, caplog: pytest.LogCaptureFixture) -> None:
    inbox = Inbox()
    adapter = DiscordAdapter(inbox, token=fake_discord.token, api_base=fake_discord.api_base,
                             gateway_url=fake_discord.gateway_url, ready_timeout=10, guild_ready_timeout=0.05)
    await adapter.start()
    try:
        fake_discord.queue_message("940000000000000001", "950000000000000001", "before")
        await inbox.wait(1)
        await adapter.stop_receiving()
        with caplog.at_level(logging.INFO, logger="adapters.discord"):
            late = fake_discord.queue_message("940000000000000001", "950000000000000001", "during shutdown")
            await wait_for(lambda: late in caplog.text, what="the log line about the ignored message")
        assert [e.text for e in inbox.events] == ["before"]     # type: ignore[union-attr]
        [line] = [r.getMessage() for r in caplog.records if late in r.getMessage()]
        assert "will not be answered" in line
    finally:
        await adapter.stop()


# --- the OpenAI-compatible API -------------------------------------------------------------------

async def test_api_answers_503_while_the_gateway_is_stopping(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("first answer", delay=TURN_SECONDS))
    gateway, _ = await start_gateway(home, model_config(model_server) + api_section())
    url = gateway.url + "v1/chat/completions"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"model": "hermes", "user": "ada", "messages": [{"role": "user", "content": "hello"}]}
    async with aiohttp.ClientSession() as http:
        running = asyncio.create_task(http.post(url, json=body, headers=headers))
        stopping = await begin_stop(gateway, model_server)
        late = {**body, "user": "bob"}
        async with http.post(url, json=late, headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as response:
            assert response.status == 503
            assert "shutting down" in (await response.json())["error"]["message"]
        first = await running
        assert first.status == 200
        assert (await first.json())["choices"][0]["message"]["content"] == "first answer"
        first.release()
        await asyncio.wait_for(stopping, 10)


# --- a message refused at the last moment ------------------------------------------------------------

async def test_a_message_refused_because_the_gateway_is_stopping_is_answered_when_redelivered(
        home: Path, model_server: FakeModelServer) -> None:
    # An adapter that hands a message over just as the dispatcher stops accepting (an adapter
    # without stop_receiving, or one that could not finish in time): the message is refused,
    # and its dedup key is forgotten, so the platform's redelivery to the next process counts.
    model_server.add(text("answered after the restart"))
    config = model_config(model_server) + api_section() + '[telegram]\nallow_users = ["u1"]\n'
    gateway, adapters = await start_gateway(home, config)
    gateway.dispatcher.accepting = False                   # what Dispatcher.close does first
    await adapters["telegram"].inject("hello", user="u1", message_id="77", dedup_key="update-77")
    await gateway.stop()
    assert adapters["telegram"].texts() == [] and not model_server.requests

    again, adapters = await start_gateway(home, config)
    try:
        tg = adapters["telegram"]
        await tg.inject("hello", user="u1", message_id="77", dedup_key="update-77")
        await tg.wait_for(lambda: tg.texts() == ["answered after the restart"])
        await tg.inject("hello", user="u1", message_id="77", dedup_key="update-77")   # once only
        await asyncio.sleep(0.2)
        assert tg.texts() == ["answered after the restart"] and len(model_server.requests) == 1
    finally:
        await again.stop()
