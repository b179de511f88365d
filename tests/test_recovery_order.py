"""After a crash a session keeps one order: re-runs first, in arrival order, then what came later.

The store holds what a SIGKILL leaves behind (written through the store's own methods, as the
killed gateway wrote it): a chat whose message 1 was mid-turn (its user message and a tool call
stored), messages 2 and 3 queued behind it. A new gateway starts and, while it starts, message 4
arrives. Every message is answered once, in order 1, 2, 3, 4, and each turn's context holds the
conversation up to its own message: message 1's re-run does not see its interrupted run twice,
nor 2, 3 or 4.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from adapters.base import InboundMessage
from gateway.app import Gateway
from gateway.config import load_config
from gateway.delivery import RetryPolicy
from gateway.home import Home
from gateway.inbox import INTERRUPTED_NOTICE, Inbox
from gateway.store import open_store
from tests.conftest import model_config
from tests.fakes.gateway_harness import api_section
from tests.fakes.memory_adapter import MemoryAdapter
from tests.fakes.model_server import FakeModelServer, Reply

CONFIG = '[telegram]\nenabled = true\ntoken = "t"\nallow_users = ["u1"]\n[learning]\nannounce = false\n'


def message(n: int) -> InboundMessage:
    return InboundMessage(platform="telegram", chat_id="dm-u1", user_id="u1", text=f"question {n}",
                          message_id=str(n), is_dm=True, dedup_key=f"update-{n}")


def user_texts(body: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in body["messages"] if m.get("role") == "user"]


def answer(body: dict[str, Any]) -> Reply:
    return Reply(content=f"answer to {user_texts(body)[-1]}")


async def test_left_over_messages_run_first_in_order_and_a_rerun_sees_only_its_past(
        home: Path, model_server: FakeModelServer) -> None:
    config = model_config(model_server) + api_section() + CONFIG
    home.mkdir(parents=True, exist_ok=True)
    store = await open_store(os.environ.get("HERMES_STORE_URL") or home / "state.db")
    try:   # what the killed gateway left
        session = await store.active_session("telegram:dm:u1", platform="telegram", chat_id="dm-u1", user_id="u1")
        await store.add_message(session.id, {"role": "user", "content": "question 0"})
        await store.add_message(session.id, {"role": "assistant", "content": "answer to question 0"})
        inbox = Inbox(store)
        rows = [await inbox.take(message(n), f"update-{n}") for n in (1, 2, 3)]
        assert await inbox.begin(rows[0], session.id) is False          # message 1's turn started ...
        await store.add_message(session.id, {"role": "user", "content": "question 1"})
        await store.add_message(session.id, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "list_files", "arguments": "{}"}}]})
    finally:                                                             # ... and the process died
        await store.close()

    model_server.add(*([answer] * 4), purpose="chat")
    (home / "config.toml").write_text(config, encoding="utf-8")
    adapters: dict[str, MemoryAdapter] = {}

    def factory(on_event: Any) -> list[MemoryAdapter]:
        adapters["telegram"] = MemoryAdapter(on_event, name="telegram")
        return [adapters["telegram"]]

    gateway = Gateway(load_config(None, Home(home), environ={}), Home(home), adapter_factory=factory, grace=5.0,
                      retry_policy=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    starting = asyncio.create_task(gateway.start())
    async with asyncio.timeout(60):           # message 4 arrives while the gateway is starting
        while "telegram" not in adapters or not adapters["telegram"].started:
            await asyncio.sleep(0.001)
    fourth = asyncio.create_task(adapters["telegram"].inject("question 4", user="u1", message_id="4",
                                                             dedup_key="update-4"))
    await starting
    await fourth
    try:
        tg = adapters["telegram"]
        await tg.wait_for(lambda: "answer to question 4" in tg.texts(), timeout=60)
        await asyncio.sleep(0.3)                                         # time for anything doubled
        answers = [t for t in tg.texts() if t != INTERRUPTED_NOTICE]
        assert answers == [f"answer to question {n}" for n in (1, 2, 3, 4)]
        chats = model_server.requests_with_purpose("chat")
        assert [user_texts(r) for r in chats] == [
            [f"question {k}" for k in range(n + 1)] for n in (1, 2, 3, 4)]
        assert all("list_files" not in str(r["messages"]) for r in chats)   # the interrupted run is gone
        async with asyncio.timeout(5):
            while await gateway.inbox.pending():
                await asyncio.sleep(0.02)
    finally:
        await gateway.stop()

