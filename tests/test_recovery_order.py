"""After a crash a session keeps one order: re-runs first, in arrival order, then what came later.

The store holds what a SIGKILL leaves behind (written through the store's own methods, as the
killed gateway wrote it): a chat whose message 1 was mid-turn (its user message and a tool call
stored), messages 2 and 3 queued behind it. A new gateway starts and, while its adapter starts
(as Telegram's first poll does), message 4 arrives. The user hears once that their message was interrupted (not once per pending message);
every message is answered once, in order 1, 2, 3, 4, and each turn's context holds the
conversation up to its own message: message 1's re-run does not see its interrupted run twice,
nor 2, 3 or 4. A part of an answer the killed run had posted is edited into the final answer.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from adapters.base import InboundMessage, OutboundMessage, SentMessage
from gateway.app import Gateway
from gateway.config import load_config
from gateway.delivery import RetryPolicy
from gateway.home import Home
from gateway.inbox import GAVE_UP_NOTICE, INTERRUPTED_NOTICE, MAX_ATTEMPTS, Inbox
from gateway.store import open_store
from gateway.store.delivery import SentRow
from tests.conftest import model_config
from tests.fakes.gateway_harness import api_section
from tests.fakes.memory_adapter import MemoryAdapter, Posted
from tests.fakes.model_server import FakeModelServer, Reply

CONFIG = '[telegram]\nenabled = true\ntoken = "t"\nallow_users = ["u1"]\n[learning]\nannounce = false\n'


def message(n: int) -> InboundMessage:
    return InboundMessage(platform="telegram", chat_id="dm-u1", user_id="u1", text=f"question {n}",
                          message_id=str(n), is_dm=True, dedup_key=f"update-{n}")


def user_texts(body: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in body["messages"] if m.get("role") == "user"]


def answer(body: dict[str, Any]) -> Reply:
    return Reply(content=f"answer to {user_texts(body)[-1]}")


class Starting(Gateway):
    started: asyncio.Task[None]


class ArrivingAdapter(MemoryAdapter):
    """Hands messages over inside `start()`, as the Telegram adapter does with its first poll."""

    arriving: list[str] = []

    async def start(self) -> None:
        await super().start()
        for n, text in enumerate(self.arriving, start=4):
            await self.inject(text, user="u1", message_id=str(n), dedup_key=f"update-{n}")


async def begin_start(home: Path, config: str, earlier: list[tuple[str, str]] = (),
                      arriving: list[str] = ()) -> tuple[Starting, dict[str, MemoryAdapter]]:
    """A gateway on `home` whose start is under way: returns once its adapter has started (and
    before the rows an earlier process left are queued). `earlier`: (message id, text) the chat
    shows already (posted by the killed process); `arriving`: messages the platform hands over
    while the adapter starts (numbered from 4)."""
    (home / "config.toml").write_text(config, encoding="utf-8")
    adapters: dict[str, MemoryAdapter] = {}

    def factory(on_event: Any) -> list[MemoryAdapter]:
        adapter = adapters["telegram"] = ArrivingAdapter(on_event, name="telegram")
        adapter.arriving = list(arriving)
        for message_id, shown in earlier:
            adapter.posted.append(Posted(OutboundMessage(chat_id="dm-u1", text=shown),
                                         SentMessage("telegram", "dm-u1", message_id), shown, [shown]))
        return [adapter]

    gateway = Starting(load_config(None, Home(home), environ={}), Home(home), adapter_factory=factory, grace=5.0,
                       retry_policy=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    gateway.started = asyncio.create_task(gateway.start())
    async with asyncio.timeout(60):
        while "telegram" not in adapters or not adapters["telegram"].started:
            await asyncio.sleep(0.001)
    return gateway, adapters


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
    gateway, adapters = await begin_start(home, config, arriving=["question 4"])
    await gateway.started
    try:
        tg = adapters["telegram"]
        await tg.wait_for(lambda: "answer to question 4" in tg.texts(), timeout=60)
        await asyncio.sleep(0.3)                                         # time for anything doubled
        assert tg.texts() == [INTERRUPTED_NOTICE] + [f"answer to question {n}" for n in (1, 2, 3, 4)]   # one notice
        chats = model_server.requests_with_purpose("chat")
        assert [user_texts(r) for r in chats] == [
            [f"question {k}" for k in range(n + 1)] for n in (1, 2, 3, 4)]
        assert all("list_files" not in str(r["messages"]) for r in chats)   # the interrupted run is gone
        async with asyncio.timeout(5):
            while await gateway.inbox.pending():
                await asyncio.sleep(0.02)
    finally:
        await gateway.stop()



async def test_a_partial_answer_of_the_interrupted_run_is_edited_into_the_final_one(
        home: Path, model_server: FakeModelServer) -> None:
    config = model_config(model_server) + api_section() + CONFIG
    home.mkdir(parents=True, exist_ok=True)
    store = await open_store(os.environ.get("HERMES_STORE_URL") or home / "state.db")
    try:   # message 1's run had posted the first part of its answer (message 900) when it died
        session = await store.active_session("telegram:dm:u1", platform="telegram", chat_id="dm-u1", user_id="u1")
        row = await Inbox(store).take(message(1), "update-1")
        await Inbox(store).begin(row, session.id)
        await store.add_message(session.id, {"role": "user", "content": "question 1"})
        await store.sent_record("telegram:update-1:0:0", SentRow("telegram", "dm-u1", "900"))
    finally:
        await store.close()

    model_server.add(answer, purpose="chat")
    gateway, adapters = await begin_start(home, config, earlier=[("900", "answer to qu")])
    await gateway.started
    try:
        tg = adapters["telegram"]
        await tg.wait_for(lambda: "answer to question 1" in tg.texts(), timeout=60)
        await asyncio.sleep(0.3)
        assert [t for t in tg.texts() if t != INTERRUPTED_NOTICE] == ["answer to question 1"]
        assert tg.posted[0].sent.message_id == "900" and tg.posted[0].history == ["answer to qu", "answer to question 1"]
        assert await gateway.inbox.pending() == []
    finally:
        await gateway.stop()


async def test_a_message_whose_runs_were_cut_three_times_is_given_up_with_a_notice(
        home: Path, model_server: FakeModelServer) -> None:
    config = model_config(model_server) + api_section() + CONFIG
    home.mkdir(parents=True, exist_ok=True)
    store = await open_store(os.environ.get("HERMES_STORE_URL") or home / "state.db")
    try:   # three gateways died while answering message 1 (each counted its attempt)
        session = await store.active_session("telegram:dm:u1", platform="telegram", chat_id="dm-u1", user_id="u1")
        inbox = Inbox(store)
        row = await inbox.take(message(1), "update-1")
        for _ in range(MAX_ATTEMPTS):
            await inbox.begin(row, session.id)
            await store.add_message(session.id, {"role": "user", "content": "question 1"})
    finally:
        await store.close()

    model_server.add(answer, purpose="chat")
    gateway, adapters = await begin_start(home, config, arriving=["question 4"])
    await gateway.started
    try:
        tg = adapters["telegram"]
        await tg.wait_for(lambda: "answer to question 4" in tg.texts(), timeout=60)
        await asyncio.sleep(0.3)
        # told once that message 1 is given up (not run a fourth time), then the next message answered
        assert tg.texts() == [GAVE_UP_NOTICE.format(n=MAX_ATTEMPTS), "answer to question 4"]
        assert "send it again" in tg.texts()[0]
        assert [user_texts(r)[-1] for r in model_server.requests_with_purpose("chat")] == ["question 4"]
        assert await gateway.inbox.pending() == []
    finally:
        await gateway.stop()
