"""A fake OpenAI-compatible model server for tests: scripted replies, streaming, faults on demand.

The real LiteLLM talks to it over a socket (`model="openai/<name>"`, `api_base=server.base_url`).
Each request pops the next reply from the script of its `X-Hermes-Purpose` (`add(...,
purpose="checkpoint")`), else of the requested model, else the shared script; when a script is
empty the server answers `default_text`. Every request body is recorded in `requests` (and its
purpose header in `purposes`, same order) so tests can assert on what the agent sent, except
the gateway's start-up model check (`X-Hermes-Purpose: probe`), which is recorded in `probes`
and answered from the "probe" script (else `default_text`), never from the shared one.

A reply is one of:
- `text("...")`, `tool_calls(("name", {...}), ...)`: an assistant message;
- `fault(status, retry_after=...)`: an HTTP error (429, 500, ...);
- `context_overflow()`: a 400 with `context_length_exceeded`;
- `hang(seconds)`: wait before answering (timeouts);
- a callable `(request_body) -> reply`, to answer from what was asked.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import serve_on_loopback


@dataclass
class Reply:
    content: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    retry_after: float | None = None
    error_code: str = ""
    delay: float = 0.0
    word_delay: float = 0.0  # streaming: pause between words, so a client can be seen streaming
    prompt_tokens: int = 11
    completion_tokens: int = 7


_ids = itertools.count(1)


def text(content: str, *, delay: float = 0.0, word_delay: float = 0.0) -> Reply:
    return Reply(content=content, delay=delay, word_delay=word_delay)


def tool_calls(*calls: tuple[str, dict[str, Any]], content: str | None = None) -> Reply:
    return Reply(content=content, calls=[
        {"id": f"call_{next(_ids)}", "type": "function",
         "function": {"name": name, "arguments": json.dumps(arguments)}}
        for name, arguments in calls
    ])


def fault(status: int, *, retry_after: float | None = None) -> Reply:
    return Reply(status=status, retry_after=retry_after)


def context_overflow() -> Reply:
    return Reply(status=400, error_code="context_length_exceeded")


def hang(seconds: float) -> Reply:
    return Reply(content="(late)", delay=seconds)


ReplySource = Reply | Callable[[dict[str, Any]], Reply]
EMBEDDING_DIMENSIONS = 256


def fake_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic stand-in for an embedding model: hashed bag of stemmed words (sublinear tf).

    It only exercises the embedding path's mechanics (LiteLLM call, batching, thresholds); its
    similarities are lexical, not semantic.
    """
    import hashlib
    import math
    from collections import Counter

    from skills.search import terms

    vector = [0.0] * dimensions
    for term, count in Counter(terms(text)).items():
        digest = hashlib.blake2b(term.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "big") % dimensions
        vector[slot] += (1 if digest[4] & 1 else -1) * (1 + math.log(count))
    return vector


class FakeModelServer:
    def __init__(self, default_text: str = "ok") -> None:
        self.default_text = default_text
        self.script: deque[ReplySource] = deque()
        self.by_model: dict[str, deque[ReplySource]] = {}
        self.by_purpose: dict[str, deque[ReplySource]] = {}
        self.requests: list[dict[str, Any]] = []
        self.purposes: list[str] = []
        self.probes: list[dict[str, Any]] = []
        self.latency = 0.0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- scripting ----------------------------------------------------------------------------
    def add(self, *replies: ReplySource, model: str | None = None, purpose: str | None = None) -> FakeModelServer:
        if purpose is not None:
            queue = self.by_purpose.setdefault(purpose, deque())
        else:
            queue = self.script if model is None else self.by_model.setdefault(model, deque())
        queue.extend(replies)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("model") == model]

    def requests_with_purpose(self, purpose: str) -> list[dict[str, Any]]:
        """Requests whose `X-Hermes-Purpose` header was `purpose`."""
        return [r for r, p in zip(self.requests, self.purposes) if p == purpose]

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> FakeModelServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeModelServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- handlers -----------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [{"object": "embedding", "index": i, "embedding": fake_embedding(str(t))} for i, t in enumerate(texts)]
        tokens = sum(len(str(t).split()) for t in texts)
        return web.json_response({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _next(self, body: dict[str, Any], purpose: str = "") -> Reply:
        queue = self.by_purpose.get(purpose) or self.by_model.get(str(body.get("model")))
        source: ReplySource | None = None
        if queue:
            source = queue.popleft()
        elif self.script:
            source = self.script.popleft()
        if source is None:
            return Reply(content=self.default_text)
        return source(body) if callable(source) else source

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        purpose = request.headers.get("X-Hermes-Purpose", "")
        if purpose == "probe":
            self.probes.append(body)
            queue = self.by_purpose.get("probe")
            popped = queue.popleft() if queue else Reply(content=self.default_text)
            reply = popped(body) if callable(popped) else popped
        else:
            self.requests.append(body)
            self.purposes.append(purpose)
            reply = self._next(body, purpose)
        delay = reply.delay + self.latency
        if delay:
            await asyncio.sleep(delay)
        if reply.status != 200:
            headers = {"retry-after": str(reply.retry_after)} if reply.retry_after is not None else {}
            if reply.error_code:
                error = {"message": "This model's maximum context length is 1000 tokens (context_length_exceeded)",
                         "type": "invalid_request_error", "code": reply.error_code}
            else:
                error = {"message": f"fake server error {reply.status}", "type": "server_error", "code": None}
            return web.json_response({"error": error}, status=reply.status, headers=headers)
        model = str(body.get("model", "fake"))
        finish = "tool_calls" if reply.calls else "stop"
        if body.get("stream"):
            return await self._stream(request, model, reply, finish)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.calls:
            message["tool_calls"] = reply.calls
        return web.json_response({
            "id": f"chatcmpl-{next(_ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                      "total_tokens": reply.prompt_tokens + reply.completion_tokens},
        })

    async def _stream(self, request: web.Request, model: str, reply: Reply, finish: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        ident = f"chatcmpl-{next(_ids)}"

        async def send(delta: dict[str, Any], finish_reason: str | None = None,
                       usage: dict[str, Any] | None = None) -> None:
            chunk: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()),
                                     "model": model,
                                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            if usage is not None:
                chunk["choices"] = []
                chunk["usage"] = usage
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        if reply.content:
            words = reply.content.split(" ")
            for i, word in enumerate(words):
                if i and reply.word_delay:
                    await asyncio.sleep(reply.word_delay)
                await send({"content": word if i == len(words) - 1 else word + " "})
        for index, call in enumerate(reply.calls):
            await send({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                        "function": {"name": call["function"]["name"], "arguments": ""}}]})
            await send({"tool_calls": [{"index": index,
                                        "function": {"arguments": call["function"]["arguments"]}}]})
        await send({}, finish_reason=finish)
        await send({}, usage={"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                              "total_tokens": reply.prompt_tokens + reply.completion_tokens})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
