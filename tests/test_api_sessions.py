"""Opt-in server-side conversations: `X-Hermes-Session-Id` and `/api/sessions`, owned by the API token."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from gateway.store.snapshot import table_rows
from tests.api_support import OTHER_TOKEN, api_gateway, raw, sent_messages
from tests.fakes.model_server import FakeModelServer, text

HEADER = "X-Hermes-Session-Id"


async def test_the_session_header_keeps_the_conversation_and_history_is_not_stored_twice(
        home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Hi Ada."), text("You are Ada."), text("Still Ada."), text("Fresh start."))
    async with api_gateway(home, model_server) as (gateway, client):
        session = {HEADER: "chat-42"}
        first = await client.chat.completions.with_raw_response.create(
            model="hermes", extra_headers=session, messages=[{"role": "user", "content": "I am Ada"}])
        assert first.headers[HEADER] == "chat-42"
        # only the new message: the server has the rest
        second = await client.chat.completions.create(
            model="hermes", extra_headers=session, messages=[{"role": "user", "content": "Who am I?"}])
        assert second.choices[0].message.content == "You are Ada."
        # a client that resends everything (as chat UIs do): nothing is stored twice
        stream = await client.chat.completions.create(model="hermes", extra_headers=session, stream=True, messages=[
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "I am Ada"}, {"role": "assistant", "content": "Hi Ada."},
            {"role": "user", "content": "Who am I?"}, {"role": "assistant", "content": "You are Ada."},
            {"role": "user", "content": "And now?"}])
        # read to its end, as a chat UI does, before the next request (else the two turns race for the model)
        assert "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]) == "Still Ada."
        # another session id is another conversation
        await client.chat.completions.create(model="hermes", extra_headers={HEADER: "chat-43"},
                                             messages=[{"role": "user", "content": "Hello?"}])

        status, _, listed = await raw(gateway, "GET", "/api/sessions")
        assert status == 200 and [s["id"] for s in listed["data"]] == ["chat-43", "chat-42"]
        assert listed["data"][1]["message_count"] == 6
        status, _, messages = await raw(gateway, "GET", "/api/sessions/chat-42/messages")
        assert [(m["role"], m["content"]) for m in messages["data"]] == [
            ("user", "I am Ada"), ("assistant", "Hi Ada."), ("user", "Who am I?"), ("assistant", "You are Ada."),
            ("user", "And now?"), ("assistant", "Still Ada.")]
        status, _, one = await raw(gateway, "GET", "/api/sessions/chat-43")
        assert status == 200 and one["id"] == "chat-43" and one["message_count"] == 2
    requests = model_server.requests
    assert sent_messages(requests[1]) == [("user", "I am Ada"), ("assistant", "Hi Ada."), ("user", "Who am I?")]
    assert sent_messages(requests[2]) == sent_messages(requests[1]) + [("assistant", "You are Ada."),
                                                                       ("user", "And now?")]
    assert sent_messages(requests[3]) == [("user", "Hello?")]


async def test_another_token_can_neither_read_nor_continue_a_session(
        home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Stored."))
    async with api_gateway(home, model_server) as (_, client):
        await client.chat.completions.create(model="hermes", extra_headers={HEADER: "secret-plans"},
                                             messages=[{"role": "user", "content": "the launch code is 7319-QZ"}])
    # the same state.db, served with another token (rotated, or another deployment's)
    async with api_gateway(home, model_server, token=OTHER_TOKEN) as (gateway, client):
        for method, path in (("GET", "/api/sessions/secret-plans/messages"), ("GET", "/api/sessions/secret-plans"),
                             ("DELETE", "/api/sessions/secret-plans")):
            status, _, body = await raw(gateway, method, path, token=OTHER_TOKEN)
            assert status == 404 and body["error"]["param"] == "session_id", (method, path)
        status, _, listed = await raw(gateway, "GET", "/api/sessions", token=OTHER_TOKEN)
        assert listed["data"] == []
        await client.chat.completions.create(model="hermes", extra_headers={HEADER: "secret-plans"},
                                             messages=[{"role": "user", "content": "what is the launch code?"}])
        assert "7319-QZ" not in str(model_server.requests[-1])
        assert sent_messages(model_server.requests[-1]) == [("user", "what is the launch code?")]


async def test_deleting_a_session_removes_its_conversation(home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (gateway, client):
        await client.chat.completions.create(model="hermes", extra_headers={HEADER: "short-lived"},
                                             messages=[{"role": "user", "content": "remember the number 31"}])
        status, _, deleted = await raw(gateway, "DELETE", "/api/sessions/short-lived")
        assert status == 200 and deleted == {"id": "short-lived", "object": "hermes.session.deleted", "deleted": True}
        assert (await raw(gateway, "GET", "/api/sessions/short-lived/messages"))[0] == 404
        store = gateway.runtime.store  # type: ignore[union-attr]
        for table in ("messages", "sessions", "api_sessions"):   # every stored row, archived or not
            assert not [r for r in await table_rows(store.db, table) if "number 31" in str(r)
                        or "short-lived" in str(r)], table
        await client.chat.completions.create(model="hermes", extra_headers={HEADER: "short-lived"},
                                             messages=[{"role": "user", "content": "which number?"}])
    assert sent_messages(model_server.requests[-1]) == [("user", "which number?")]


@pytest.mark.parametrize("session_id", ["", "../etc/passwd", "a" * 129, "has space", "ünïcode", "-starts-with-dash",
                                        "semi;colon", "nul\x00byte"])
def test_session_ids_are_checked(session_id: str) -> None:
    from gateway.api.errors import ApiError
    from gateway.api.request_models import check_session_id

    with pytest.raises(ApiError) as info:
        check_session_id(session_id)
    assert info.value.status == 400 and info.value.param == HEADER


async def test_a_bad_session_id_is_a_400_before_anything_runs(home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (gateway, client):
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="hermes", extra_headers={HEADER: "../../other"},
                                                 messages=[{"role": "user", "content": "hi"}])
        assert isinstance(info.value.body, dict) and info.value.body["param"] == HEADER
        status, _, body = await raw(gateway, "GET", "/api/sessions/" + "x" * 200)
        assert status == 400 and body["error"]["param"] == HEADER
    assert model_server.requests == []


def test_history_sent_again_is_recognised_after_tool_calls_compression_and_windowing() -> None:
    from agent.loop import SUMMARY_PREFIX
    from gateway.sessions import unseen

    def msg(role: str, content: str) -> dict[str, str]:
        return {"role": role, "content": content}

    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                  "function": {"name": "ls", "arguments": "{}"}}]}
    stored = [msg("user", "u1"), call, {"role": "tool", "tool_call_id": "c1", "content": "files"},
              msg("assistant", "a1"), msg("user", "u2"), msg("assistant", "a2")]
    full = [msg("user", "u1"), msg("assistant", "a1"), msg("user", "u2"), msg("assistant", "a2")]
    assert unseen(stored, full) == []
    assert unseen(stored, full[2:]) == []                 # a client that sends a window of the latest turns
    assert unseen(stored, []) == []
    assert unseen(stored, [*full, msg("user", "aside"), msg("assistant", "ok")]) == [
        msg("user", "aside"), msg("assistant", "ok")]
    compressed = [msg("user", "u1"), msg("user", SUMMARY_PREFIX + "they talked"), msg("user", "u2"),
                  msg("assistant", "a2")]
    assert unseen(compressed, full) == []
    other = [msg("user", "something else"), msg("assistant", "entirely")]
    assert unseen(stored, other) == other                 # not this conversation's messages: all new
    assert unseen([], full) == full


async def test_stop_interrupts_the_sessions_running_answer_and_only_its_owner_may(
        home: Path, model_server: FakeModelServer) -> None:
    import asyncio

    model_server.add(text("Short."), text(" ".join(f"w{i}" for i in range(400)), word_delay=0.02))
    async with api_gateway(home, model_server) as (gateway, client):
        status, _, idle = await raw(gateway, "POST", "/api/sessions/nobody-here/stop")
        assert status == 404
        await client.chat.completions.create(model="hermes", extra_headers={HEADER: "chat-s"},
                                             messages=[{"role": "user", "content": "short"}])
        status, _, idle = await raw(gateway, "POST", "/api/sessions/chat-s/stop")
        assert status == 200 and idle == {"id": "chat-s", "object": "hermes.session.stop", "stopped": False}
        stream = await client.chat.completions.create(model="hermes", extra_headers={HEADER: "chat-s"}, stream=True,
                                                      messages=[{"role": "user", "content": "long"}])
        received: list[str] = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
            if len(received) == 3:
                status, _, other = await raw(gateway, "POST", "/api/sessions/chat-s/stop", token=OTHER_TOKEN)
                assert status in (401, 404)  # another token does not see this session, let alone stop it
                status, _, stopped = await asyncio.wait_for(raw(gateway, "POST", "/api/sessions/chat-s/stop"), 10)
                assert status == 200 and stopped["stopped"] is True
        answer = "".join(received)
        assert answer.endswith("\n\nStopped.") and answer.count("Stopped.") == 1 and "w399" not in answer


async def test_a_session_is_named_after_its_first_line_with_secrets_masked(
        home: Path, model_server: FakeModelServer) -> None:
    secret = "ghp_" + "Zx9Yw8Vu7T" * 4
    model_server.add(text("Noted."), text("Again."), text("Third."))
    async with api_gateway(home, model_server) as (gateway, client):
        await client.chat.completions.create(model="hermes", extra_headers={HEADER: "named"}, messages=[
            {"role": "user", "content": f"\n\n   Deploy   with {secret} please\nsecond line"}])
        await client.chat.completions.create(model="hermes", extra_headers={HEADER: "named"}, messages=[
            {"role": "user", "content": "a later message does not rename it"}])
        await client.chat.completions.create(model="hermes", extra_headers={HEADER: "long"}, messages=[
            {"role": "user", "content": "word " * 40}])
        status, _, listed = await raw(gateway, "GET", "/api/sessions")
    titles = {s["id"]: s["title"] for s in listed["data"]}
    assert status == 200 and titles["named"] == "Deploy with [REDACTED] please"
    assert len(titles["long"]) == 60 and titles["long"].endswith("…") and titles["long"].startswith("word word")
