"""`/v1/chat/completions` with the official `openai` client and LiteLLM: stateless by default,
the client's conversation is the conversation, parameters reach the model, refusals are 400s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.api_support import BUILTIN_MARK, api_gateway, raw, sent_messages, sse_events, system_prompt
from tests.fakes.gateway_harness import TOKEN
from tests.fakes.model_server import FakeModelServer, text


async def test_two_clients_without_a_session_never_see_each_others_messages(
        home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Noted."), text("I know of no note."), text("Second answer."))
    async with api_gateway(home, model_server) as (_, client):
        first = [{"role": "system", "content": "You are Alice's notebook. Answer in French."},
                 {"role": "user", "content": "Earlier question"},
                 {"role": "assistant", "content": "Earlier answer"},
                 {"role": "user", "content": "private note: the vault code is 4471"}]
        answer = await client.chat.completions.create(model="hermes", messages=first)  # type: ignore[arg-type]
        assert answer.choices[0].message.content == "Noted."
        # client B, same token, same (absent) user: a conversation of its own
        other = await client.chat.completions.create(
            model="hermes", messages=[{"role": "user", "content": "What was the private note?"}])
        assert other.choices[0].message.content == "I know of no note."
        # and the same `user` does not join conversations either: user names the person
        await client.chat.completions.create(model="hermes", user="alice",
                                             messages=[{"role": "user", "content": "Again, alone"}])
    alice, bob, third = model_server.requests
    assert sent_messages(alice) == [("user", "Earlier question"), ("assistant", "Earlier answer"),
                                    ("user", "private note: the vault code is 4471")]
    prompt = system_prompt(alice)
    assert BUILTIN_MARK in prompt and prompt.index(BUILTIN_MARK) < prompt.index("You are Alice's notebook")
    assert not prompt.startswith("You are Alice's notebook")  # our prompt first, the client's after it
    assert sent_messages(bob) == [("user", "What was the private note?")]
    assert "4471" not in str(bob) and "notebook" not in str(bob)
    assert sent_messages(third) == [("user", "Again, alone")]


async def test_plain_streamed_and_include_usage_validate_as_the_clients_models(
        home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Hello from Hermes."), text("Streaming works fine here."), text("Raw stream."))
    async with api_gateway(home, model_server) as (gateway, client):
        response = await client.chat.completions.with_raw_response.create(
            model="hermes", messages=[{"role": "user", "content": "Say hello"}])
        completion = ChatCompletion.model_validate(response.http_response.json())
        assert completion.choices[0].message.content == "Hello from Hermes."
        assert completion.usage is not None and completion.usage.total_tokens == 18
        assert completion.model == "hermes"

        stream = await client.chat.completions.create(
            model="hermes", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Stream please"}])
        chunks = [chunk async for chunk in stream]
        pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
        assert "".join(pieces) == "Streaming works fine here." and len(pieces) > 1
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.prompt_tokens == 11 and chunks[-1].usage.completion_tokens == 7
        assert all(c.usage is None for c in chunks[:-1])

        status, headers, body = await raw(gateway, "POST", "/v1/chat/completions", body={
            "model": "hermes", "stream": True, "messages": [{"role": "user", "content": "raw"}]})
        events = sse_events(body)
        assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
        assert body.endswith("data: [DONE]\n\n")
        for event in events:
            ChatCompletionChunk.model_validate(event)
        assert not any("usage" in e for e in events)  # no usage chunk unless asked for
        assert events[-1]["choices"][0]["finish_reason"] == "stop"

        assert (await client.models.retrieve("openai/fake-model")).id == "openai/fake-model"
        listed = await client.models.list()
        assert [Model.model_validate(m.model_dump()).id for m in listed.data] == ["hermes", "hermes-agent", "openai/fake-model"]


async def test_sampling_parameters_reach_the_model_call(home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (_, client):
        await client.chat.completions.create(
            model="hermes", messages=[{"role": "user", "content": "json please"}], temperature=0.2, top_p=0.5,
            max_tokens=64, stop=["END"], seed=7, response_format={"type": "json_object"})
        await client.chat.completions.create(
            model="hermes", messages=[{"role": "user", "content": "newer name"}], max_completion_tokens=33,
            stream=True)
        await client.chat.completions.create(model="hermes", messages=[{"role": "user", "content": "defaults"}])
    by_text = {str(r["messages"][-1].get("content")): r for r in model_server.requests}
    first, second, third = by_text["json please"], by_text["newer name"], by_text["defaults"]
    assert (first["temperature"], first["top_p"], first["max_tokens"], first["seed"]) == (0.2, 0.5, 64, 7)
    assert first["stop"] == ["END"] and first["response_format"] == {"type": "json_object"}
    assert second["max_completion_tokens"] == 33
    assert not {"temperature", "top_p", "max_tokens", "seed", "stop", "response_format"} & set(third)


async def test_a_request_naming_a_fallback_model_runs_on_it(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("from the backup"), model="fake-backup")
    async with api_gateway(home, model_server, fallbacks=["openai/fake-backup"]) as (_, client):
        models = [m.id for m in (await client.models.list()).data]
        assert models == ["hermes", "hermes-agent", "openai/fake-model", "openai/fake-backup"]
        answer = await client.chat.completions.create(
            model="openai/fake-backup", messages=[{"role": "user", "content": "which model?"}])
        assert answer.choices[0].message.content == "from the backup" and answer.model == "openai/fake-backup"
        await client.chat.completions.create(model="hermes", messages=[{"role": "user", "content": "default"}])
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert [r["model"] for r in model_server.requests] == ["fake-backup", "fake-model"]
    error = info.value.body
    assert isinstance(error, dict) and error["param"] == "model" and error["type"] == "invalid_request_error"
    assert "hermes, hermes-agent, openai/fake-model, openai/fake-backup" in error["message"]


BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("n=2", {"n": 2}, "n"),
    ("n=0", {"n": 0}, "n"),
    ("temperature=5", {"temperature": 5}, "temperature"),
    ("top_p=1.5", {"top_p": 1.5}, "top_p"),
    ("logprobs", {"logprobs": True}, "logprobs"),
    ("top_logprobs", {"top_logprobs": 3}, "top_logprobs"),
    ("tools required", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
                        "tool_choice": "required"}, "tools"),
    ("tool_choice required", {"tool_choice": "required"}, "tool_choice"),
    ("functions", {"functions": [{"name": "f", "parameters": {}}]}, "functions"),
    ("stream as a string", {"stream": "false"}, "stream"),
    ("user as an object", {"user": {"id": "alice"}}, "user"),
    ("user too long", {"user": "u" * 500}, "user"),
    ("user with a newline", {"user": "alice\nadmin"}, "user"),
    ("max_tokens=0", {"max_tokens": 0}, "max_tokens"),
    ("max_tokens as a string", {"max_tokens": "10"}, "max_tokens"),
    ("seed as a float", {"seed": 1.5}, "seed"),
    ("stop as a number", {"stop": 5}, "stop"),
    ("response_format type", {"response_format": {"type": "xml"}}, "response_format.type"),
    ("stream_options without stream", {"stream_options": {"include_usage": True}}, "stream_options"),
    ("include_usage as a string", {"stream": True, "stream_options": {"include_usage": "yes"}},
     "stream_options.include_usage"),
    ("model as a number", {"model": 4}, "model"),
    ("no messages", {"messages": []}, "messages"),
    ("messages as a string", {"messages": "hi"}, "messages"),
    ("ends with an assistant message", {"messages": [{"role": "user", "content": "a"},
                                                     {"role": "assistant", "content": "b"}]}, "messages"),
    ("a tool message", {"messages": [{"role": "tool", "content": "r", "tool_call_id": "c"},
                                     {"role": "user", "content": "a"}]}, "messages[0].role"),
    ("assistant tool calls", {"messages": [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
                                                               "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "a"}]}, "messages[0].tool_calls"),
    ("an unknown role", {"messages": [{"role": "root", "content": "a"}]}, "messages[0].role"),
    ("content as a number", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("a local file as an image", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]},
     "messages[0].content[1].image_url.url"),
    ("2001 messages", {"messages": [{"role": "user", "content": "a"}] * 2001}, "messages"),
    ("an audio part", {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0].type"),
]


async def test_what_the_gateway_cannot_honour_is_a_400_naming_the_parameter(
        home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (gateway, client):
        for name, change, param in BAD_REQUESTS:
            body = {"model": "hermes", "messages": [{"role": "user", "content": "hi"}], **change}
            status, _, answer = await raw(gateway, "POST", "/v1/chat/completions", body=body)
            assert status == 400, (name, answer)
            assert set(answer["error"]) == {"message", "type", "param", "code"}, name
            assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["param"] == param, \
                (name, answer)
            assert param.split("[")[0].split(".")[0] in answer["error"]["message"], name
            if not {"stream", "user", "model", "messages"} & set(change):
                # through the official client: a BadRequestError carrying the same body
                with pytest.raises(openai.BadRequestError) as info:
                    await client.chat.completions.create(**body)
                assert isinstance(info.value.body, dict) and info.value.body["param"] == param, name
    assert model_server.requests == []


async def test_every_error_is_json_in_openais_format(home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (gateway, _):
        cases = [("GET", "/v1/chat/completions", TOKEN, None, 405),
                 ("PUT", "/v1/responses", TOKEN, None, 405),
                 ("GET", "/v1/no-such-endpoint", TOKEN, None, 404),
                 ("GET", "/api/sessions/nope", TOKEN, None, 404),
                 ("POST", "/v1/chat/completions", "wrong-" + TOKEN, {"model": "hermes"}, 401),
                 ("POST", "/v1/chat/completions", TOKEN, b"{not json", 400),
                 ("POST", "/v1/chat/completions", TOKEN, b"[1, 2]", 400),
                 ("GET", "/v1/models/gpt-4o", TOKEN, None, 404)]
        for method, path, token, body, expected in cases:
            status, headers, answer = await raw(gateway, method, path, token=token, body=body)
            assert status == expected, (method, path, answer)
            assert headers["Content-Type"].startswith("application/json"), (method, path)
            assert set(answer["error"]) == {"message", "type", "param", "code"}, (method, path)
            assert answer["error"]["message"], (method, path)
        status, headers, answer = await raw(gateway, "GET", "/v1/chat/completions")
        assert "POST" in headers["Allow"] and "POST" in answer["error"]["message"]


async def test_hostile_text_is_stored_and_answered(home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (gateway, _):
        nasty = "lone \ud800 surrogate, NUL \x00, bidi \u202e, zero width \u200b " + "x" * 100_000
        body = ('{"model": "hermes", "messages": [{"role": "system", "content": "sys \\udfff"}, '
                '{"role": "user", "content": ' + __import__("json").dumps(nasty) + "}]}")
        status, _, answer = await raw(gateway, "POST", "/v1/chat/completions", body=body,
                                      headers={"X-Hermes-Session-Id": "hostile-1"})
        assert status == 200, answer
        status, _, messages = await raw(gateway, "GET", "/api/sessions/hostile-1/messages")
        stored = messages["data"][0]["content"]
        assert status == 200 and "\ufffd" in stored and "\x00" in stored and len(stored) > 100_000
    assert "\ufffd" in model_server.requests[0]["messages"][-1]["content"]


async def test_litellm_as_a_client_like_a_company_proxy(home: Path, model_server: FakeModelServer) -> None:
    from agent.llm import import_litellm

    litellm = import_litellm()
    model_server.add(text("Proxy answer."), text("Streamed proxy answer."))
    async with api_gateway(home, model_server) as (gateway, _):
        target = {"model": "openai/hermes", "api_base": gateway.url + "v1", "api_key": TOKEN,
                  "num_retries": 0, "max_retries": 0}
        conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "first"},
                        {"role": "assistant", "content": "first answer"}, {"role": "user", "content": "second"}]
        answer = await litellm.acompletion(messages=conversation, temperature=0.3, **target)
        assert answer.choices[0].message.content == "Proxy answer."
        assert answer.usage.total_tokens == 18
        stream = await litellm.acompletion(messages=[{"role": "user", "content": "stream"}], stream=True,
                                           stream_options={"include_usage": True}, **target)
        chunks = [chunk async for chunk in stream]
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == "Streamed proxy answer."
        with pytest.raises(litellm.BadRequestError, match="n"):
            await litellm.acompletion(messages=[{"role": "user", "content": "two"}], n=2, **target)
    proxied, streamed_request = model_server.requests
    assert sent_messages(proxied) == [("user", "first"), ("assistant", "first answer"), ("user", "second")]
    assert "Be brief." in system_prompt(proxied) and proxied["temperature"] == 0.3
    assert sent_messages(streamed_request) == [("user", "stream")]


async def test_hermes_events_are_sent_only_to_a_stream_that_asks_for_them(
        home: Path, model_server: FakeModelServer) -> None:
    from tests.fakes.model_server import tool_calls

    secret = "ghp_" + "a1B2c3D4e5" * 4  # a GitHub token's shape: masked in what the chat shows
    fetch = ("web_fetch", {"url": f"https://x.example/?t={secret}"})
    model_server.add(tool_calls(("list_files", {"path": "."}), fetch), text("A **bold** plan."),
                     tool_calls(("list_files", {"path": "."})), text("Plain again."))
    body = {"model": "hermes", "stream": True, "messages": [{"role": "user", "content": "look"}]}
    async with api_gateway(home, model_server) as (gateway, client):
        status, _, stream = await raw(gateway, "POST", "/v1/chat/completions", body=body,
                                      headers={"X-Hermes-Events": "tools, html"})
        events = sse_events(stream)
        assert status == 200
        steps = [(e["name"], e["status"]) for e in events if e.get("object") == "hermes.tool"]
        assert [s for s in steps if s[0] == "list_files"] == [("list_files", "running"), ("list_files", "ok")]
        assert ("web_fetch", "running") in steps and secret not in stream
        assert any(e.get("name") == "web_fetch" and "[REDACTED]" in e["arguments"] for e in events)
        assert [e["html"] for e in events if e.get("object") == "hermes.html"][-1] == \
            "<p>A <strong>bold</strong> plan.</p>\n"
        chunks = [ChatCompletionChunk.model_validate(e) for e in events if e.get("object") != "hermes.tool"
                  and e.get("object") != "hermes.html"]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "A **bold** plan."
        # an OpenAI client that did not ask sees only chat.completion.chunk objects
        plain = await client.chat.completions.create(model="hermes", stream=True,
                                                     messages=[{"role": "user", "content": "again"}])
        objects = {chunk.object async for chunk in plain}
        assert objects == {"chat.completion.chunk"}
        status, _, refused = await raw(gateway, "POST", "/v1/chat/completions", body=body,
                                       headers={"X-Hermes-Events": "tools, sparkles"})
        assert status == 400 and "unknown event kind 'sparkles'" in refused["error"]["message"]
        assert refused["error"]["param"] == "X-Hermes-Events"
