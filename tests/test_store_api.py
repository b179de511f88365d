"""The API's and the dashboard's state in the store on both engines: web logins, stored responses,
API session ownership and the session queries of the dashboard, the API and trajectories export.
Two store clients on one database stand for two gateway processes sharing it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.store import open_store
from gateway.store.api_responses import ApiSession


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_url")


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
    finally:
        await first.close()
        await second.close()
