"""The Responses API with the official `openai` client: plain, streamed, previous_response_id, store."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.api_support import (
    BUILTIN_MARK,
    OTHER_TOKEN,
    api_gateway,
    raw,
    sent_messages,
    sse_events,
    system_prompt,
)
from tests.fakes.model_server import FakeModelServer, text


async def test_plain_response_then_a_streamed_one_continuing_it(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Paris."), text("About two million people live there."), text("Third."),
                     text("Raw streamed events."))
    async with api_gateway(home, model_server) as (gateway, client):
        first = await client.responses.with_raw_response.create(
            model="hermes", input="What is the capital of France?", instructions="Answer in one word.",
            temperature=0.1, max_output_tokens=50)
        response = Response.model_validate(first.http_response.json())
        assert response.output_text == "Paris." and response.status == "completed"
        assert response.usage is not None and response.usage.total_tokens == 18
        assert response.instructions == "Answer in one word."

        events = []
        stream = await client.responses.create(model="hermes", input="How many people live there?",
                                               previous_response_id=response.id, stream=True)
        async for event in stream:
            events.append(event)
        kinds = [e.type for e in events]
        assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                             "response.content_part.added"]
        assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                              "response.output_item.done", "response.completed"]
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        assert "".join(deltas) == "About two million people live there." and len(deltas) > 1
        assert [e.sequence_number for e in events] == list(range(len(events)))
        completed = events[-1].response  # type: ignore[union-attr]
        assert completed.output_text == "About two million people live there."
        assert completed.usage is not None and completed.usage.output_tokens == 7
        assert completed.previous_response_id == response.id

        # stored: readable, and continuable from the streamed one
        again = await client.responses.retrieve(completed.id)
        assert again.output_text == completed.output_text and again.id == completed.id
        status, _, body = await raw(gateway, "GET", f"/v1/responses/{completed.id}")
        assert status == 200 and Response.model_validate(body).id == completed.id
        third = await client.responses.create(model="hermes", input=[
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": [{"type": "input_text", "text": "And its area?"}]}],
            previous_response_id=completed.id)
        assert third.output_text == "Third."
        # every server-sent event, as sent, is one of the client's event models
        status, _, body = await raw(gateway, "POST", "/v1/responses", body={
            "model": "hermes", "input": "raw events", "stream": True, "store": False})
        events = sse_events(body)
        adapter = TypeAdapter(ResponseStreamEvent)
        assert status == 200 and [adapter.validate_python(e).type for e in events][-1] == "response.completed"
        assert body.count("event: response.output_text.delta") == len(events) - 8
    first_call, second_call, third_call, _ = model_server.requests
    assert sent_messages(first_call) == [("user", "What is the capital of France?")]
    assert BUILTIN_MARK in system_prompt(first_call) and "Answer in one word." in system_prompt(first_call)
    assert first_call["temperature"] == 0.1 and first_call["max_tokens"] == 50
    assert sent_messages(second_call) == [("user", "What is the capital of France?"), ("assistant", "Paris."),
                                          ("user", "How many people live there?")]
    assert "Answer in one word." not in system_prompt(second_call)  # instructions are not carried over
    assert sent_messages(third_call) == sent_messages(second_call) + [
        ("assistant", "About two million people live there."), ("user", "And its area?")]
    assert "Use metric units." in system_prompt(third_call)


async def test_unstored_and_foreign_responses_cannot_be_read_or_continued(
        home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (_, client):
        unstored = await client.responses.create(model="hermes", input="do not keep this", store=False)
        stored = await client.responses.create(model="hermes", input="the password is swordfish")
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(unstored.id)
        with pytest.raises(openai.NotFoundError) as info:
            await client.responses.create(model="hermes", input="go on", previous_response_id=unstored.id)
        assert isinstance(info.value.body, dict) and info.value.body["param"] == "previous_response_id"
    async with api_gateway(home, model_server, token=OTHER_TOKEN) as (_, client):
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(stored.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.create(model="hermes", input="what was the password?",
                                          previous_response_id=stored.id)
    chat = model_server.requests_with_purpose("chat")  # a learning review may follow a turn: not counted
    assert len(chat) == 2 and "swordfish" not in str(chat[0])


async def test_responses_refuse_what_they_cannot_do(home: Path, model_server: FakeModelServer) -> None:
    cases = [
        ({"input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools"),
        ({"input": [{"role": "user", "content": "a"}, {"type": "function_call_output", "call_id": "c",
                                                       "output": "x"}]}, "input[1].type"),
        ({"input": [{"role": "assistant", "content": "a"}]}, "input"),
        ({"input": 5}, "input"),
        ({"input": "hi", "stream": "true"}, "stream"),
        ({"input": "hi", "store": "no"}, "store"),
        ({"input": "hi", "model": "gpt-9"}, "model"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "previous_response_id": 7}, "previous_response_id"),
        ({"input": "hi", "conversation": "conv_1"}, "conversation"),
        ({"input": "hi", "background": True}, "background"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "file:///etc/shadow"}]}]},
         "input[0].content[0].image_url"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0].type"),
    ]
    async with api_gateway(home, model_server) as (gateway, _):
        for change, param in cases:
            status, _, body = await raw(gateway, "POST", "/v1/responses", body={"model": "hermes", **change})
            assert status == 400 and body["error"]["param"] == param, (change, body)
            assert body["error"]["type"] == "invalid_request_error"
    assert model_server.requests == []
