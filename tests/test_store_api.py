"""The API's and the dashboard's state in the store on both engines: web logins, stored responses,
API session ownership and the session queries of the dashboard, the API and trajectories export.
Two store clients on one database stand for two gateway processes sharing it."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.store import open_store
from gateway.store.api_responses import ApiSession
from gateway.store.snapshot import Snapshot, TableRows, load_snapshot


async def test_a_login_made_through_one_client_ends_for_both_by_logout_or_expiry(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        now = time.time()
        await first.web_login_add("a" * 64, address="127.0.0.1", created_at=now, expires_at=now + 60)
        await first.web_login_add("b" * 64, address="::1", created_at=now, expires_at=now - 1)
        assert await second.web_login_expiry("a" * 64) == pytest.approx(now + 60)
        assert await second.web_login_expiry("c" * 64) is None
        assert await second.web_logins_prune(now) == 1                 # only the ended one
        assert [x.token_hash for x in await first.web_logins()] == ["a" * 64]
        assert await second.web_login_remove("a" * 64) is True
        assert await first.web_login_expiry("a" * 64) is None
        assert await first.web_login_remove("a" * 64) is False
    finally:
        await first.close()
        await second.close()


async def test_stored_responses_are_read_only_with_their_token_and_keep_their_conversation(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        response = {"id": "resp_1", "created_at": 1_700_000_000, "previous_response_id": None, "output": ["Paris."]}
        conversation = [{"role": "user", "content": "capital of France? ünïcode \u200b"},
                        {"role": "assistant", "content": "Paris."}]
        await first.api_response_save(response, conversation, token_id="tok-a")
        found = await second.api_response("resp_1", token_id="tok-a")
        assert found is not None and found.response == response and found.messages == conversation
        assert await second.api_response("resp_1", token_id="tok-b") is None
        assert await second.api_response("resp_2", token_id="tok-a") is None
    finally:
        await first.close()
        await second.close()


async def test_api_sessions_claimed_at_once_by_two_clients_listed_per_token_and_deleted(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        prefix = "api:tok-a:"
        await asyncio.gather(*((first if n % 2 else second).api_session_claim("tok-a", "chat-42", user_id="ada",
                                                                                at=100.0 + n) for n in range(8)))
        await first.api_session_claim("tok-a", "chat-43", user_id="", at=200.0)
        await first.api_session_claim("tok-b", "chat-42", user_id="eve", at=300.0)
        assert await second.api_session("tok-a", "chat-42", prefix + "chat-42") == ApiSession(
            "chat-42", "ada", pytest.approx(100.0, abs=8), None, "", None, 0)   # claimed, no turn yet

        old = await first.active_session(prefix + "chat-42", platform="api")
        await first.add_message(old.id, {"role": "user", "content": "I am Ada"})
        chat = await first.new_session(prefix + "chat-42", platform="api")      # the old one is archived
        for message in ({"role": "user", "content": "Who am I?"},
                        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
                        {"role": "tool", "tool_call_id": "c1", "content": "ada.txt"},
                        {"role": "assistant", "content": "You are Ada."}):
            await first.add_message(chat.id, message)
        await first.set_session_title(chat.id, "Ada's chat")
        other = await first.active_session(prefix + "chat-43", platform="api")
        await first.add_message(other.id, {"role": "user", "content": "Hello?"})

        one = await second.api_session("tok-a", "chat-42", prefix + "chat-42")
        assert one is not None and one.store_id == chat.id and one.title == "Ada's chat"
        assert one.message_count == 3                                   # user and assistant, active session only
        listed = await second.api_sessions_of("tok-a", prefix)
        assert [(s.session_id, s.message_count) for s in listed] == [("chat-43", 1), ("chat-42", 3)]
        assert [s.session_id for s in await second.api_sessions_of("tok-b", "api:tok-b:")] == ["chat-42"]
        assert await second.api_session("tok-b", "chat-43", "api:tok-b:chat-43") is None

        shown = await second.session_messages(chat.id, active_only=True, roles=("user", "assistant"))
        assert [m.message.get("content") for m in shown] == ["Who am I?", None, "You are Ada."]

        deleted = await second.api_session_delete("tok-a", "chat-42", prefix + "chat-42")
        assert sorted(deleted) == sorted([old.id, chat.id])
        assert await first.api_session("tok-a", "chat-42", prefix + "chat-42") is None
        assert await first.get_session(chat.id) is None and await first.session_messages(old.id) == []
        assert [s.session_id for s in await first.api_sessions_of("tok-a", prefix)] == ["chat-43"]
        assert [s.session_id for s in await first.api_sessions_of("tok-b", "api:tok-b:")] == ["chat-42"]
        # the next turn of a deleted conversation (from the other process) claims it again
        await first.api_session_claim("tok-a", "chat-42", user_id="ada", at=400.0)
        again = await second.api_session("tok-a", "chat-42", prefix + "chat-42")
        assert again is not None and again.created_at == 400.0 and again.message_count == 0
    finally:
        await first.close()
        await second.close()


HOUR = 1_700_002_800 // 3600      # an hour number; times are placed inside it and the next


async def test_turns_and_tokens_per_hour_put_a_late_second_in_its_own_hour(store_url: str) -> None:
    """An hour is the floor of epoch seconds / 3600 on both engines (PostgreSQL's CAST rounds)."""
    store = await open_store(store_url)
    try:
        start = HOUR * 3600.0
        sessions = TableRows("sessions", ("id", "key", "platform", "created_at", "updated_at"),
                             [("s1", "telegram:1", "telegram", start, start + 3599.9)])
        messages = TableRows("messages", ("id", "session_id", "seq", "role", "data", "active", "created_at"), [
            (1, "s1", 1, "user", '{"role": "user", "content": "a"}', 1, start + 10),
            (2, "s1", 2, "assistant", '{"role": "assistant", "content": "b"}', 1, start + 20),
            (3, "s1", 3, "user", '{"role": "user", "content": "c"}', 1, start + 3599.9),
            (4, "s1", 4, "user", '{"role": "user", "content": "d"}', 0, start + 3600 + 1800.6),
        ])
        usage = TableRows("usage", ("id", "session_id", "model", "purpose", "prompt_tokens", "completion_tokens",
                                    "cost", "created_at"), [
            (1, "s1", "m", "chat", 10, 5, 0.0, start + 2700.0),
            (2, "s1", "m", "checkpoint", 1, 2, 0.0, start + 3600 + 1799.5),
        ])
        await load_snapshot(store.db, Snapshot(None, [sessions, messages, usage]))
        assert await store.hourly_user_turns(start) == {HOUR: 2, HOUR + 1: 1}
        assert await store.hourly_user_turns(start + 3600) == {HOUR + 1: 1}
        assert await store.hourly_tokens(start) == {HOUR: 15, HOUR + 1: 3}
        assert await store.sessions_updated_since(start + 3599) == 1
        assert await store.sessions_updated_since(start + 3600) == 0
    finally:
        await store.close()


async def test_session_queries_for_the_dashboard_and_trajectories(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        ada = await first.active_session("telegram:1", platform="telegram", chat_id="1", user_id="ada")
        bob = await first.active_session("slack:C1", platform="slack", chat_id="C1", team="research")
        idle = await first.active_session("cli:local", platform="cli")
        for n in range(4):
            await first.add_message(ada.id, {"role": "user" if n % 2 == 0 else "assistant", "content": f"m{n}"})
        await first.compact_messages(ada.id, 1, 2, {"role": "user", "content": "summary"})
        await first.add_message(bob.id, {"role": "user", "content": "hi"})
        for name, ok in (("list_files", True), ("read_file", False)):
            await first.record_tool_call(ada.id, call_id=f"c-{name}", name=name, arguments='{"path": "."}', ok=ok,
                                         result=f"{name} result", duration_ms=1.5)
        await first.record_usage(ada.id, model="openai/a", prompt_tokens=10, completion_tokens=2, cost=0.5)
        await first.record_usage(ada.id, model="openai/b", prompt_tokens=7, completion_tokens=1, cost=0.25)
        await first.record_usage(ada.id, model="openai/c", prompt_tokens=3, completion_tokens=3, cost=0.0,
                                 purpose="checkpoint")

        assert [s.id for s in await second.sessions_in_order()] == [ada.id, bob.id, idle.id]
        assert await second.sessions_message_counts([ada.id, bob.id, idle.id]) == {ada.id: 5, bob.id: 1}
        assert await second.sessions_message_counts([]) == {}
        totals = await second.sessions_usage([ada.id, bob.id])
        assert list(totals) == [ada.id] and totals[ada.id].total_tokens == 26 and totals[ada.id].calls == 3
        assert totals[ada.id].cost == pytest.approx(0.75)
        lines = await second.session_usage_lines(ada.id)
        assert [(u.purpose, u.model, u.prompt_tokens, u.completion_tokens, u.calls) for u in lines] == [
            ("chat", "openai/a", 10, 2, 1), ("chat", "openai/b", 7, 1, 1), ("checkpoint", "openai/c", 3, 3, 1)]
        assert await second.session_last_model(ada.id) == "openai/b"
        assert await second.session_last_model(bob.id) == ""
        calls = await second.session_tool_calls(ada.id)
        assert [(c.name, c.ok, c.result) for c in calls] == [("list_files", True, "list_files result"),
                                                            ("read_file", False, "read_file result")]
        shown = await second.session_messages(ada.id)
        assert [(m.seq, m.message["content"], m.active) for m in shown] == [
            (1, "m0", False), (1, "summary", True), (2, "m1", False), (3, "m2", True), (4, "m3", True)]
    finally:
        await first.close()
        await second.close()
