"""`POST /v1/chat/completions`, OpenAI-compatible, streaming (SSE) and not.

The agent keeps each session's history itself, so only the last user message of the request is
new input; the `user` field selects the session (`api:<user>`; no user means `api:default`).
The `model` field is accepted and ignored: the gateway answers with its configured model and
tools. Content parts (text + image_url) are passed through to vision-capable models.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

from agent.events import Event, TextDelta
from agent.loop import TurnResult
from gateway.commands import CommandContext
from gateway.dispatcher import Dispatcher, ShuttingDown
from gateway.metrics import Metrics
from gateway.routing import Router

MAX_USER_CHARS = 128


class ApiReply:
    """A turn's output collected for one HTTP response."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[tuple[str, str, TurnResult | None]] = asyncio.Queue()

    def begin(self) -> None:
        return None

    async def on_event(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.items.put_nowait(("delta", event.text, None))

    async def finish(self, text: str, result: TurnResult | None = None) -> None:
        if result is not None and result.status == "interrupted":
            self.items.put_nowait(("done", ((text + "\n\n") if text else "") + "Stopped.", result))
        else:
            self.items.put_nowait(("done", text, result))

    async def say(self, text: str) -> None:
        self.items.put_nowait(("done", text, None))

    async def fail(self, text: str) -> None:
        self.items.put_nowait(("error", text, None))


def openai_error(status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": param, "code": None}},
                             status=status)


def _last_user_message(body: dict[str, Any]) -> str | dict[str, Any] | None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        parts = [p for p in content if p.get("type") in ("text", "image_url")]
        if not parts:
            return None
        if all(p.get("type") == "text" for p in parts):
            return "\n".join(str(p.get("text", "")) for p in parts)
        return {"role": "user", "content": parts}
    return None


class ChatCompletions:
    def __init__(self, dispatcher: Dispatcher, router: Router, metrics: Metrics, model_name: str) -> None:
        self.dispatcher = dispatcher
        self.router = router
        self.metrics = metrics
        self.model_name = model_name or "hermes"

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.model_name, "object": "model", "created": 0, "owned_by": "hermes"}]})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return openai_error(400, "the request body must be JSON")
        if not isinstance(body, dict):
            return openai_error(400, "the request body must be a JSON object")
        content = _last_user_message(body)
        if content is None:
            return openai_error(400, "messages must end with a user message whose content is text or "
                                     "content parts", param="messages")
        user = str(body.get("user") or "default")[:MAX_USER_CHARS]
        key = self.router.api_key(user)
        ctx = CommandContext(session_key=key, platform="api", chat_id=user, user_id=user,
                             team=self.router.team_for("api", user))
        stream = bool(body.get("stream"))
        reply = ApiReply()
        self.metrics.messages_in.labels("api").inc()
        try:
            await self.dispatcher.handle(ctx, content, reply, stream=None if stream else False)
        except ShuttingDown:
            return openai_error(503, "the gateway is shutting down; try again shortly", "server_error")
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if stream:
            return await self._stream(request, reply, ident)
        while True:
            kind, text, result = await reply.items.get()
            if kind == "done":
                break
            if kind == "error":
                self.metrics.errors.labels("api").inc()
                return openai_error(502, text, "upstream_error")
        self.metrics.messages_out.labels("api").inc()
        prompt = result.prompt_tokens if result else 0
        completion = result.completion_tokens if result else 0
        return web.json_response({
            "id": ident, "object": "chat.completion", "created": int(time.time()), "model": self.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        })

    async def _stream(self, request: web.Request, reply: ApiReply, ident: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": self.model_name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

        streamed = False
        try:
            await response.write(chunk({"role": "assistant", "content": ""}))
            while True:
                kind, text, result = await reply.items.get()
                if kind == "delta":
                    streamed = True
                    await response.write(chunk({"content": text}))
                    continue
                if kind == "error":
                    self.metrics.errors.labels("api").inc()
                    error = {"error": {"message": text, "type": "upstream_error", "param": None, "code": None}}
                    await response.write(f"data: {json.dumps(error)}\n\n".encode())
                    break
                interrupted = result is not None and result.status == "interrupted"
                if not streamed:
                    await response.write(chunk({"content": text}))
                elif interrupted:
                    await response.write(chunk({"content": "\n\nStopped."}))
                await response.write(chunk({}, "stop"))
                self.metrics.messages_out.labels("api").inc()
                break
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            # the client went away; the turn goes on and is stored in the session
            pass
        return response
