"""The Telegram adapter with the real python-telegram-bot against a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from adapters.base import Button, ButtonPress, DeliveryError, InboundMessage, OutboundMessage
from adapters.telegram import TelegramAdapter, TelegramConflictError
from tests.fakes.inbox import Inbox
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.telegram_server import FakeTelegramServer


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    server = await FakeTelegramServer().start()
    yield server
    await server.stop()


def make_adapter(server: FakeTelegramServer, inbox: Inbox, **kw: object) -> TelegramAdapter:
    return TelegramAdapter(inbox, token=server.token, api_base=server.api_base, poll_timeout=1,
                           reconnect_base=0.01, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def running(tg: FakeTelegramServer) -> AsyncIterator[tuple[TelegramAdapter, Inbox]]:
    inbox = Inbox()
    adapter = make_adapter(tg, inbox)
    await adapter.start()
    yield adapter, inbox
    await adapter.stop()


async def test_dm_arrives_as_inbound_message(tg: FakeTelegramServer, running: tuple[TelegramAdapter, Inbox]) -> None:
    adapter, inbox = running
    update_id = tg.queue_message(42, 42, "hello <there>", first_name="Ada", last_name="Lovelace")
    [event] = await inbox.wait(1)
    assert isinstance(event, InboundMessage)
    assert (event.platform, event.chat_id, event.user_id) == ("telegram", "42", "42")
    assert event.display_name == "Ada Lovelace"
    assert event.text == "hello <there>"
    assert event.is_dm and not event.mentioned and not event.reply_to_bot
    assert event.thread_id is None
    assert event.dedup_key == str(update_id)
    assert adapter.status.connected


async def test_group_mention_is_stripped_and_topic_and_reply_are_seen(
        tg: FakeTelegramServer, running: tuple[TelegramAdapter, Inbox]) -> None:
    _, inbox = running
    tg.queue_message(-100, 7, "@hermes_test_bot what is 2+2?", chat_type="supergroup", thread_id=55)
    tg.queue_message(-100, 7, "and then?", chat_type="supergroup", reply_to_bot_message=99)
    tg.queue_message(-100, 7, "/help@hermes_test_bot", chat_type="supergroup",
                     entities=[{"type": "bot_command", "offset": 0, "length": 21}])
    tg.queue_message(-100, 7, "just chatting", chat_type="supergroup")
    mention, reply, command, chat = await inbox.wait(4)
    assert isinstance(mention, InboundMessage) and mention.mentioned and not mention.is_dm
    assert mention.text == "what is 2+2?"
    assert mention.thread_id == "55"
    assert isinstance(reply, InboundMessage) and reply.reply_to_bot and reply.reply_to == "99"
    assert isinstance(command, InboundMessage) and command.text == "/help" and command.mentioned
    assert isinstance(chat, InboundMessage) and not chat.mentioned and chat.text == "just chatting"


async def test_send_converts_markdown_to_html(tg: FakeTelegramServer, running: tuple[TelegramAdapter, Inbox]) -> None:
    adapter, _ = running
    sent = await adapter.send(OutboundMessage(chat_id="42", text="**Done**: `a<b` & more\n```py\nx = 1 < 2\n```",
                                              reply_to="7"))
    [msg] = tg.sent(42)
    assert msg["parse_mode"] == "HTML"
    assert msg["text"] == ('<b>Done</b>: <code>a&lt;b</code> &amp; more\n'
                           '<pre><code class="language-py">x = 1 &lt; 2</code></pre>')
    assert msg["reply_parameters"]["message_id"] == 7
    assert sent.message_id == str(msg["message_id"]) and sent.chat_id == "42"

    await adapter.edit(sent, "**Done**, edited")
    assert msg["text"] == "<b>Done</b>, edited" and msg["edits"]
    await adapter.edit(sent, "**Done**, edited")       # "message is not modified" is not an error


async def test_rejected_formatting_is_resent_as_plain_text(
        tg: FakeTelegramServer, running: tuple[TelegramAdapter, Inbox]) -> None:
    adapter, _ = running
    tg.reject_entities_next(1)
    await adapter.send(OutboundMessage(chat_id="42", text="**bold** and [a link](https://example.org)"))
    [msg] = tg.sent(42)
    assert msg["parse_mode"] is None
    assert msg["text"] == "bold and a link (https://example.org)"


async def test_buttons_render_as_inline_keyboard_and_presses_come_back(
        tg: FakeTelegramServer, running: tuple[TelegramAdapter, Inbox]) -> None:
    adapter, inbox = running
    long_value = "x" * 80        # over Telegram's 64-byte callback_data limit
    sent = await adapter.send(OutboundMessage(chat_id="42", text="Run `rm -rf build`?", buttons=(
        Button("Approve", "approve", "call-1", style="primary"),
        Button("Deny", "deny", long_value, style="danger"),
    )))
    [msg] = tg.sent(42)
    [row] = msg["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in row] == ["Approve", "Deny"]
    assert row[0]["callback_data"] == "approve|call-1"
    assert len(row[1]["callback_data"].encode()) <= 64

    tg.queue_callback(42, 42, row[0]["callback_data"], message_id=int(sent.message_id))
    tg.queue_callback(42, 42, row[1]["callback_data"], message_id=int(sent.message_id))
    approve, deny = await inbox.wait(2)
    assert approve == ButtonPress(platform="telegram", chat_id="42", user_id="42", action_id="approve",
                                  value="call-1", message_id=sent.message_id)
    assert isinstance(deny, ButtonPress) and deny.action_id == "deny" and deny.value == long_value
    assert len(tg.answered_callbacks) == 2


async def test_429_surfaces_as_delivery_error_with_retry_after(
        tg: FakeTelegramServer, running: tuple[TelegramAdapter, Inbox]) -> None:
    adapter, _ = running
    tg.fail_next(1, status=429, retry_after=3, method="sendMessage")
    # PTB does not retry a 429 itself (no AIORateLimiter): it raises RetryAfter at once.
    with pytest.raises(DeliveryError) as info:
        await adapter.send(OutboundMessage(chat_id="42", text="hi"))
    assert info.value.retry_after == 3 and not info.value.permanent
    assert tg.sent(42) == []
    tg.fail_next(1, status=403, method="sendMessage", description="Forbidden: bot was blocked by the user")
    with pytest.raises(DeliveryError) as info:
        await adapter.send(OutboundMessage(chat_id="42", text="hi"))
    assert info.value.permanent
    await adapter.send(OutboundMessage(chat_id="42", text="hi"))
    assert [m["text"] for m in tg.sent(42)] == ["hi"]


async def test_reconnects_after_dropped_polls_without_duplicates_or_gaps(
        tg: FakeTelegramServer, running: tuple[TelegramAdapter, Inbox]) -> None:
    adapter, inbox = running
    tg.queue_message(42, 42, "one")
    await inbox.wait(1)
    tg.drop_next_polls(2)
    tg.queue_message(42, 42, "two")
    tg.queue_message(42, 42, "three")
    await inbox.wait(3)
    tg.queue_message(42, 42, "four")
    events = await inbox.wait(4)
    await asyncio.sleep(0.1)           # a duplicate would arrive by now
    assert [e.text for e in inbox.events if isinstance(e, InboundMessage)] == ["one", "two", "three", "four"]
    assert adapter.status.reconnects >= 1 and adapter.status.connected
    assert len({e.dedup_key for e in events}) == 4


async def test_a_second_poller_is_refused_with_a_clear_error(tg: FakeTelegramServer) -> None:
    tg.conflict_polls(1)
    adapter = make_adapter(tg, Inbox())
    with pytest.raises(TelegramConflictError, match="another gateway is polling this bot token"):
        await adapter.start()
    await adapter.stop()


async def test_a_conflict_while_running_stops_polling(
        tg: FakeTelegramServer, running: tuple[TelegramAdapter, Inbox]) -> None:
    adapter, _ = running
    tg.conflict_polls(1)            # the next getUpdates (after the current long poll) gets 409
    for _ in range(150):
        if adapter.fatal_error:
            break
        await asyncio.sleep(0.02)
    assert not adapter.status.connected
    assert "another gateway is polling this bot token" in adapter.status.last_error
    polls = sum(1 for method, _ in tg.calls if method == "getUpdates")
    await asyncio.sleep(0.2)
    assert sum(1 for method, _ in tg.calls if method == "getUpdates") == polls   # not looping


async def test_photos_are_downloaded_and_oversized_files_are_not(tg: FakeTelegramServer) -> None:
    inbox = Inbox()
    adapter = make_adapter(tg, inbox, max_attachment_bytes=1000)
    await adapter.start()
    try:
        photo = tg.add_file(b"\x89PNG fake image", "photos/p1.jpg")
        tg.queue_message(42, 42, "what is this?", caption=True, photo_file_id=photo)
        big = tg.add_file(b"x" * 2000, "documents/big.pdf")
        tg.queue_message(42, 42, "", document={"file_id": big, "file_unique_id": "b", "file_name": "big.pdf",
                                               "mime_type": "application/pdf", "file_size": 2000})
        with_photo, with_doc = await inbox.wait(2)
        assert isinstance(with_photo, InboundMessage) and with_photo.text == "what is this?"
        [image] = with_photo.attachments
        assert image.kind == "image" and image.data == b"\x89PNG fake image"
        assert isinstance(with_doc, InboundMessage)
        [doc] = with_doc.attachments
        assert doc.filename == "big.pdf" and doc.data is None and doc.size == 2000
    finally:
        await adapter.stop()


async def test_commands_typing_and_restart_without_redelivery(tg: FakeTelegramServer,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    inbox = Inbox()
    adapter = make_adapter(tg, inbox)
    await adapter.start()
    too_long = "a-skill-whose-name-is-longer-than-telegram-allows"
    also_long = "another-skill-whose-name-is-far-too-long-for-it"
    with caplog.at_level("INFO", logger="adapters.telegram"):
        await adapter.set_commands([("help", "Show help"), ("new", "Start over"), ("skill-name", "a skill"),
                                    (too_long, "left out"), (also_long, "left out too")])
    # the names that cannot be listed are one line, not one line each
    [left_out] = [r.getMessage() for r in caplog.records if "cannot be in the command menu" in r.getMessage()]
    assert left_out.startswith("telegram: 2 command(s)") and too_long in left_out and also_long in left_out
    # Telegram takes no dashes in command names: the skill is listed as /skill_name (which runs it)
    assert tg.commands == [{"command": "help", "description": "Show help"},
                           {"command": "new", "description": "Start over"},
                           {"command": "skill_name", "description": "a skill"}]
    await adapter.typing("42")
    assert tg.chat_actions[-1]["action"] == "typing"
    tg.queue_message(42, 42, "before restart")
    await inbox.wait(1)
    await adapter.stop()

    again = Inbox()
    adapter = make_adapter(tg, again)
    await adapter.start()
    tg.queue_message(42, 42, "after restart")
    await again.wait(1)
    await asyncio.sleep(0.1)
    await adapter.stop()
    assert [e.text for e in again.events if isinstance(e, InboundMessage)] == ["after restart"]


async def test_webhook_checks_the_secret_token(tg: FakeTelegramServer) -> None:
    inbox = Inbox()
    secret = "s3cret-token-of-enough-length"
    adapter = make_adapter(tg, inbox, mode="webhook", webhook_url="https://bot.example.org/telegram/hook",
                           webhook_secret=secret)
    app = web.Application()
    adapter.attach_routes(app)
    runner, port = await serve_on_loopback(app)
    await adapter.start()
    try:
        assert tg.webhook["url"] == "https://bot.example.org/telegram/hook"
        assert tg.webhook["secret_token"] == secret
        update = {"update_id": 9001, "message": {
            "message_id": 5, "date": 0, "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": False, "first_name": "Ada"}, "text": "via webhook"}}
        url = f"http://127.0.0.1:{port}/telegram/hook"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
                assert r.status == 401
            async with http.post(url, json=update) as r:
                assert r.status == 401
            assert inbox.events == []
            async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as r:
                assert r.status == 200
        [event] = inbox.events
        assert isinstance(event, InboundMessage) and event.text == "via webhook" and event.dedup_key == "9001"

        await adapter.stop_receiving()       # shutting down: Telegram must deliver it again later
        async with aiohttp.ClientSession() as http:
            later = {**update, "update_id": 9002}
            async with http.post(url, json=later, headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as r:
                assert r.status == 503
        assert len(inbox.events) == 1
    finally:
        await adapter.stop()
        await runner.cleanup()


async def test_stop_receiving_confirms_only_the_updates_handed_over(tg: FakeTelegramServer) -> None:
    """Updates fetched in the same batch but not yet handed over stay with Telegram."""
    handed: list[str] = []
    release = asyncio.Event()

    async def slow_handler(event: object) -> None:
        assert isinstance(event, InboundMessage)
        handed.append(event.text)
        await release.wait()            # the gateway is still taking the first update

    adapter = make_adapter(tg, slow_handler)  # type: ignore[arg-type]
    await adapter.start()
    try:
        first = tg.queue_message(42, 42, "one")
        second = tg.queue_message(42, 42, "two")
        while not handed:
            await asyncio.sleep(0.01)
        stopping = asyncio.create_task(adapter.stop_receiving())
        await asyncio.sleep(0.1)
        assert not stopping.done()      # it waits for the update being handed over
        release.set()
        await asyncio.wait_for(stopping, 5)
        assert handed == ["one"]
        assert tg.unconfirmed() == [second] and first < second
        tg.queue_message(42, 42, "three")
        await asyncio.sleep(0.1)
        assert handed == ["one"]        # nothing more is taken
    finally:
        await adapter.stop()
    assert tg.unconfirmed() == [second, second + 1]

    inbox = Inbox()
    again = make_adapter(tg, inbox)
    await again.start()
    try:
        events = await inbox.wait(2)
        assert [e.text for e in events if isinstance(e, InboundMessage)] == ["two", "three"]
    finally:
        await again.stop()


def test_webhook_mode_refuses_a_weak_secret() -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        TelegramAdapter(Inbox(), token="1:x", mode="webhook", webhook_url="https://x/y", webhook_secret="short")




# --- Markdown → Telegram HTML (and the plain fallback) ------------------------------------------

def test_html_escapes_only_what_telegram_parses() -> None:
    from adapters.markdown import to_telegram_html

    assert to_telegram_html("1 < 2 && 3 > 2 (ok) [x] _y_ #z! a.b-c") == \
        "1 &lt; 2 &amp;&amp; 3 &gt; 2 (ok) [x] <i>y</i> #z! a.b-c"
    assert to_telegram_html("snake_case_name and file_name.py") == "snake_case_name and file_name.py"
    assert to_telegram_html("**bold _and italic_** ~~old~~") == "<b>bold <i>and italic</i></b> <s>old</s>"
    assert to_telegram_html("# Heading\n- item\n> quote") == "<b>Heading</b>\n• item\n<blockquote>quote</blockquote>"
    assert to_telegram_html('[a "link"](https://e.org/?q=1&r="2")') == \
        '<a href="https://e.org/?q=1&amp;r=&quot;2&quot;">a "link"</a>'
    assert to_telegram_html(r"not \*emphasis\*") == "not *emphasis*"
    assert to_telegram_html("2 * 3 * 4") == "2 * 3 * 4"


def test_code_fences_keep_their_text_verbatim() -> None:
    from adapters.markdown import to_plain, to_telegram_html

    md = "Run:\n```bash\necho '<b>' && ls **/*.py\n```\nthen `x_y*z`"
    assert to_telegram_html(md) == ("Run:\n<pre><code class=\"language-bash\">echo '&lt;b&gt;' &amp;&amp; "
                                    "ls **/*.py</code></pre>\nthen <code>x_y*z</code>")
    assert to_plain(md) == "Run:\necho '<b>' && ls **/*.py\nthen x_y*z"
    # A fence still open (a streaming reply cut mid-block) is closed, so the HTML stays valid.
    assert to_telegram_html("partial\n```python\nprint(1 < 2)") == \
        'partial\n<pre><code class="language-python">print(1 &lt; 2)</code></pre>'
    assert to_telegram_html("```\n**not bold**\n```") == "<pre>**not bold**</pre>"


# --- the adapter factory ---------------------------------------------------------------------------

def test_factory_imports_no_platform_library_until_a_platform_is_enabled() -> None:
    import subprocess
    import sys

    code = ("import sys, gateway.adapter_factory as f; from gateway.config import Config; "
            "assert f.build_adapters(Config(), None) == []; "
            "print(sorted(m for m in ('telegram', 'discord', 'slack_bolt', 'slack_sdk') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_factory_maps_each_enabled_section_to_its_adapter() -> None:
    from adapters.discord import DiscordAdapter
    from adapters.slack import SlackAdapter
    from gateway.adapter_factory import build_adapters
    from gateway.config import Config

    config = Config.model_validate({
        "telegram": {"enabled": True, "token": "1:abc", "api_base": "http://127.0.0.1:9/", "poll_timeout": 5,
                     "max_attachment_mb": 1},
        "discord": {"enabled": True, "token": "d", "api_base": "http://127.0.0.1:9/api/v10",
                    "gateway_url": "ws://127.0.0.1:9/gw"},
        "slack": {"enabled": True, "token": "xoxb-1", "mode": "socket", "app_token": "xapp-1"},
    })
    telegram, discord_adapter, slack_adapter = build_adapters(config, Inbox())
    assert isinstance(telegram, TelegramAdapter)
    assert telegram.bot.base_url == "http://127.0.0.1:9/bot1:abc" and telegram.poll_timeout == 5
    assert telegram.max_attachment_bytes == 1024 * 1024
    assert isinstance(discord_adapter, DiscordAdapter) and discord_adapter.gateway_url == "ws://127.0.0.1:9/gw"
    assert isinstance(slack_adapter, SlackAdapter) and slack_adapter.mode == "socket"
    assert slack_adapter.client.base_url == "https://slack.com/api/"

    broken = Config.model_validate({"slack": {"enabled": True, "token": "xoxb-1", "mode": "http"}})
    with pytest.raises(ValueError, match=r"\[slack\]: slack.signing_secret is required"):
        build_adapters(broken, Inbox())


async def test_a_failed_first_poll_is_retried_in_the_background(tg: FakeTelegramServer) -> None:
    inbox = Inbox()
    tg.drop_next_polls(1)
    adapter = make_adapter(tg, inbox)
    await adapter.start()                   # does not raise: a network blip is not fatal
    try:
        assert not adapter.status.connected
        tg.queue_message(42, 42, "still arrives")
        [event] = await inbox.wait(1)
        assert isinstance(event, InboundMessage) and event.text == "still arrives"
        assert adapter.status.connected and adapter.status.reconnects == 1
    finally:
        await adapter.stop()


async def test_doctor_credential_checks_reach_each_platform(tg: FakeTelegramServer) -> None:
    from gateway.adapter_factory import check_credentials
    from gateway.config import Config
    from tests.fakes.discord_server import running_fake_discord
    from tests.fakes.slack_server import FakeSlackServer

    slack = await FakeSlackServer().start()
    try:
        async with running_fake_discord() as dc:
            good = Config.model_validate({
                "telegram": {"enabled": True, "token": tg.token, "api_base": tg.api_base},
                "discord": {"enabled": True, "token": dc.token, "api_base": dc.api_base,
                            "gateway_url": dc.gateway_url},
                "slack": {"enabled": True, "token": slack.bot_token, "api_base": slack.api_base,
                          "signing_secret": "s"},
            })
            assert await check_credentials("telegram", good) == (True, "token ok: @hermes_test_bot", "")
            assert await check_credentials("discord", good) == (True, "token ok: hermes", "")
            assert await check_credentials("slack", good) == (True, "token ok: hermes in Fake", "")
            bad = Config.model_validate({
                "telegram": {"enabled": True, "token": "1:wrong", "api_base": tg.api_base},
                "discord": {"enabled": True, "token": "wrong", "api_base": dc.api_base},
                "slack": {"enabled": True, "token": "xoxb-wrong", "api_base": slack.api_base,
                          "signing_secret": "s"},
            })
            for name in ("telegram", "discord", "slack"):
                ok, detail, fix = await check_credentials(name, bad)
                assert not ok and ("refused" in detail) and fix, (name, detail)
    finally:
        await slack.stop()


async def test_connected_for_sending_only_until_polling_is_handed_to_it(tg: FakeTelegramServer) -> None:
    """Several gateways on one bot: each connects for sending; only the duty's owner polls, from
    the offset its predecessor recorded, asking its guard before every getUpdates."""
    inbox = Inbox()
    adapter = make_adapter(tg, inbox)
    old = tg.queue_message(42, 42, "taken by the previous poller")
    await adapter.start(receive=False)
    try:
        assert adapter.status.connected and adapter.single_consumer
        await asyncio.sleep(0.3)
        assert not any(method == "getUpdates" for method, _ in tg.calls)   # another process polls
        await adapter.send(OutboundMessage(chat_id="42", text="sending works"))
        assert [m["text"] for m in tg.sent(42)] == ["sending works"]

        allowed = True
        asked: list[int | None] = []

        async def guard(offset: int | None) -> bool:
            asked.append(offset)
            return allowed

        await adapter.start_polling(old + 1, guard=guard)    # resumes after what was handed over
        new = tg.queue_message(42, 42, "for the new poller")
        [event] = await inbox.wait(1)
        assert isinstance(event, InboundMessage) and event.dedup_key == str(new)
        assert asked[0] == old + 1 and tg.delivered[old] == 0   # the old one never came again
        polls = sum(1 for method, _ in tg.calls if method == "getUpdates")
        assert polls <= len(asked) <= polls + 1              # the guard ran before every getUpdates
        allowed = False                                      # the lease is lost (fenced)
        for _ in range(150):
            if adapter.status.details.get("polling") is False or adapter._poll_task is None or adapter._poll_task.done():
                break
            await asyncio.sleep(0.02)
        stopped_at = sum(1 for method, _ in tg.calls if method == "getUpdates")
        tg.queue_message(42, 42, "not for a fenced poller")
        await asyncio.sleep(1.5)
        assert sum(1 for method, _ in tg.calls if method == "getUpdates") == stopped_at
        assert len(inbox.events) == 1
        await adapter.stop_polling(confirm=False)            # no request from a fenced process
        assert sum(1 for method, _ in tg.calls if method == "getUpdates") == stopped_at
    finally:
        await adapter.stop()


async def test_a_409_under_a_guard_is_a_handover_and_is_retried(tg: FakeTelegramServer) -> None:
    inbox = Inbox()
    adapter = make_adapter(tg, inbox)
    await adapter.start(receive=False)
    try:
        async def guard(offset: int | None) -> bool:
            return True

        tg.conflict_polls(2)      # the previous poller's long poll is still open at Telegram
        await adapter.start_polling(guard=guard)
        tg.queue_message(42, 42, "after the handover")
        [event] = await inbox.wait(1, timeout=10)
        assert isinstance(event, InboundMessage) and event.text == "after the handover"
        assert adapter.fatal_error is None and adapter.status.connected
    finally:
        await adapter.stop()
