"""Approvals where there are no buttons: the web chat / OpenAI-compatible API (official openai client).

A streaming request shows the approval request in the streamed answer and waits; the user answers
with `/approve` (or `/deny`) in a second request for the same `user`, as the web chat does. A
non-streaming request cannot be asked anything: the call is denied at once and the model is told why.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import openai

from tests.approvals_support import (
    approval_rows,
    folders,
    script_cleanup,
    start_real_gateway,
    tool_results,
    wait_for,
)
from tests.fakes.gateway_harness import TOKEN
from tests.fakes.model_server import FakeModelServer


async def test_streaming_request_waits_for_approve_sent_as_a_text_command(
        home: Path, model_server: FakeModelServer) -> None:
    script_cleanup(model_server)
    gateway = await start_real_gateway(home, model_server, "")
    client = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key=TOKEN, max_retries=0)
    received: list[str] = []

    async def read_stream() -> None:
        stream = await client.chat.completions.create(
            model="hermes", stream=True, user="web-1",
            messages=[{"role": "user", "content": "please clean the build folder"}])
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)

    try:
        reader = asyncio.create_task(read_stream())
        shown = await wait_for(lambda: re.search(r"Reply `/approve (a[0-9a-f]{6})`", "".join(received)),
                               what="the approval request in the stream")
        assert "rm -rf build" in "".join(received) and len(folders(home)) == 1
        # someone else's /approve does not answer it
        other = await client.chat.completions.create(model="hermes", user="web-2",
                                                     messages=[{"role": "user", "content": f"/deny {shown[1]}"}])
        assert "Only the person whose request this is" in other.choices[0].message.content
        answer = await client.chat.completions.create(model="hermes", user="web-1",
                                                      messages=[{"role": "user", "content": "/approve"}])
        assert answer.choices[0].message.content.startswith("Approved: run `rm -rf build`")
        await asyncio.wait_for(reader, 10)
        streamed = "".join(received)
        assert "Approved by web-1." in streamed and streamed.rstrip().endswith("Cleaned up.")
        assert folders(home) == []
        assert tool_results(model_server)[1].startswith("exit code 0")
        [row] = await approval_rows(gateway)
        assert (row["platform"], row["outcome"], row["answered_by"]) == ("api", "approved", "api:web-1")
    finally:
        await client.close()
        await gateway.stop()


async def test_non_streaming_request_is_denied_at_once_with_the_reason(
        home: Path, model_server: FakeModelServer) -> None:
    script_cleanup(model_server, final="That needs your approval; I could not ask here.")
    gateway = await start_real_gateway(home, model_server, "")
    client = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key=TOKEN, max_retries=0)
    try:
        response = await client.chat.completions.create(
            model="hermes", user="script", messages=[{"role": "user", "content": "please clean the build folder"}])
        assert response.choices[0].message.content == "That needs your approval; I could not ask here."
        assert len(folders(home)) == 1
        result = tool_results(model_server)[1]
        assert "cannot be asked anything" in result and "did not happen" in result
        assert [r["outcome"] for r in await approval_rows(gateway)] == ["unavailable"]
    finally:
        await client.close()
        await gateway.stop()
