"""Shared by the tests of the OpenAI-compatible API: a gateway with the fake model and real clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import openai

from gateway.app import Gateway
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer

OTHER_TOKEN = "other-token-9b1e4c2d7a6f5e3b8c0d1a2f3e4d5c6b"
BUILTIN_MARK = "## Instructions from the API client"


@asynccontextmanager
async def api_gateway(home: Path, model_server: FakeModelServer, *, token: str = TOKEN,
                      **model: Any) -> AsyncIterator[tuple[Gateway, openai.AsyncOpenAI]]:
    gateway, _ = await start_gateway(home, model_config(model_server, max_retries=0, **model)
                                     + api_section(token=token), platforms=())
    client = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key=token, max_retries=0)
    try:
        yield gateway, client
    finally:
        await client.close()
        await gateway.stop()


def sent_messages(request: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, content) of what the agent sent the model, without the system prompt."""
    return [(m["role"], m["content"]) for m in request["messages"] if m["role"] != "system"]


def system_prompt(request: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in request["messages"] if m["role"] == "system")


async def raw(gateway: Gateway, method: str, path: str, *, token: str = TOKEN, body: Any = None,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """One request with aiohttp: status, headers, the body parsed as JSON (or the text)."""
    all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    data = None if body is None else body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with aiohttp.ClientSession() as http, \
            http.request(method, gateway.url.rstrip("/") + path, headers=all_headers, data=data) as response:
        text = await response.text()
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return response.status, dict(response.headers), parsed


def sse_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]
