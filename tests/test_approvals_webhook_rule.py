"""An admin's "always allow" for a webhook covers that URL exactly, and the request shows it whole.

The real gateway and python-telegram-bot against the fake Bot API; the hostile model asks for cron
jobs that deliver to webhooks on the same host: another path, another query, the same URL again.
"""

from __future__ import annotations

import html
from pathlib import Path

from tests.approvals_support import wait_for
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.fakes.telegram_server import FakeTelegramServer
from tests.store_support import home_store
from tests.test_approvals_telegram import ADMIN, USER, button, start, texts, tg  # noqa: F401

SIG = "sig-7c1d9e2f4a"
ALLOWED = f"https://hooks.example/a?sig={SIG}"


def requests_with_buttons(tg: FakeTelegramServer) -> list[dict]:
    return [m for m in tg.sent(USER) if m.get("reply_markup")]


async def test_always_allow_for_one_webhook_url_covers_only_that_url(
        home: Path, model_server: FakeModelServer, tg: FakeTelegramServer) -> None:
    def create(url: str) -> object:
        return tool_calls(("cron", {"action": "create", "schedule": "every 1d", "prompt": "post the report",
                                    "deliver": f"webhook:{url}"}))

    model_server.add(create(ALLOWED), text("First."),
                     create("https://hooks.example/b"), text("Second."),
                     create(f"https://hooks.example/a?sig={SIG}&x=1"), text("Third."),
                     create(ALLOWED), text("Fourth."),
                     purpose="chat")  # a learning review after a denied step must not take these
    gateway = await start(home, model_server, tg)
    try:
        tg.queue_message(USER, USER, "post the report to my webhook daily")
        request = await wait_for(lambda: next(iter(requests_with_buttons(tg)), None), timeout=60,
                                 what="the first approval request (the first turn imports LiteLLM)")
        assert f"delivers to webhook:{ALLOWED} instead of this chat" in request["text"]   # whole
        tg.queue_callback(USER, ADMIN, button(request, "Always allow"), message_id=request["message_id"])
        await wait_for(lambda: "First." in texts(tg), what="the first answer")

        for question, answer, url in (("and to /b", "Second.", "https://hooks.example/b"),
                                      ("and with another query", "Third.", f"{ALLOWED}&x=1")):
            asked = len(requests_with_buttons(tg))
            tg.queue_message(USER, USER, question)
            fresh = await wait_for(lambda n=asked: requests_with_buttons(tg)[n:], what=f"a request for {url}")
            assert f"delivers to webhook:{url} instead" in html.unescape(fresh[0]["text"])   # sent as HTML
            tg.queue_callback(USER, USER, button(fresh[0], "Deny"), message_id=fresh[0]["message_id"])
            await wait_for(lambda a=answer: a in texts(tg), what=answer)

        asked = len(requests_with_buttons(tg))
        tg.queue_message(USER, USER, "and the first one again")
        await wait_for(lambda: "Fourth." in texts(tg), what="the fourth answer")
        assert len(requests_with_buttons(tg)) == asked            # the very same URL: not asked again
        assert gateway.runtime is not None
        jobs = await gateway.runtime.services["cron"].list(owner=f"telegram:{USER}")
        assert sorted(j.target for j in jobs) == [f"webhook:{ALLOWED}"] * 2
    finally:
        await gateway.stop()
    async with home_store(home) as store:     # a second store client: SQLite or PostgreSQL
        rules = [r["rule"] for r in await store.approval_rule_rows()]
        described = " ".join(r["description"] for r in await store.approval_request_rows())
    assert len(rules) == 1 and SIG not in rules[0] and "hooks.example/a" in rules[0]
    assert SIG not in described
