"""`POST /v1/chat/completions` and `GET /v1/models`, OpenAI-compatible, streaming (SSE) and not.

Stateless by default: the conversation is what the client sends. Its system messages are
added after our system prompt as the client's instructions, its earlier messages are the
history, its last (user) message is the new turn. `X-Hermes-Session-Id` keeps the conversation
on the server instead (see `gateway.api.turns`); the client then sends only what is new, and
what it sends again is not stored twice. `model` picks `hermes` or one configured model;
sampling parameters pass through to every model call of the turn; `stream_options.include_usage`
adds the usage chunk. Content parts (text + image_url) reach vision-capable models.

A streaming client may ask for Hermes' own events with `X-Hermes-Events: tools, html` (the web
chat does; other clients never see them): `tools` adds a `{"object": "hermes.tool", "name": ...,
"status": "running" | "ok" | "error"}` chunk as each tool starts and ends; `html` adds
`{"object": "hermes.html", "html": ...}`, the answer so far rendered from Markdown to sanitized
HTML (`gateway.markdown_html`), at most every `HTML_EVERY` seconds while it streams (less often
for a long answer: rendering takes at most `HTML_SHARE` of the stream's time, since it runs on the
event loop) and once at the end. The usual `chat.completion.chunk`s are sent all the same.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.api.errors import ApiError
from gateway.api.request_models import (
    ChatCompletionRequest,
    chat_conversation,
    check_session_id,
    check_user,
    parse_body,
    refuse_unsupported,
    validate,
    validate_model,
)
from gateway.api.turns import EVENTS_HEADER, SESSION_HEADER, TOKEN_ID, ApiReply, ApiTurns, Caller, ToolStep
from gateway.markdown_html import to_html

HTML_EVERY = 0.25  # seconds between two renderings of a streaming answer, at least
HTML_SHARE = 0.05  # and at most this share of the time goes to rendering (a 100 KB answer takes ~0.1 s)
KNOWN_EVENTS = ("tools", "html")


@dataclass(frozen=True)
class StreamEvents:
    """Which Hermes events a streaming client asked for (`X-Hermes-Events`)."""

    tools: bool = False
    html: bool = False

    @classmethod
    def parse(cls, header: str | None) -> StreamEvents:
        """The kinds named in the header: a comma-separated list of known kinds (what docs/openapi.json says)."""
        text = (header or "").strip(" \t")
        names = [part.strip(" \t") for part in text.split(",")] if text else []
        unknown = [name for name in names if name not in KNOWN_EVENTS]
        if unknown:
            raise ApiError(400, f"{EVENTS_HEADER}: unknown event kind {unknown[0]!r}; known: "
                           + ", ".join(KNOWN_EVENTS), param=EVENTS_HEADER)
        return cls(tools="tools" in names, html="html" in names)


def sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def caller_of(request: web.Request, user: str) -> Caller:
    return Caller(token_id=request.get(TOKEN_ID, ""), user=user)


def usage_of(result: Any) -> dict[str, int]:
    prompt = result.prompt_tokens if result is not None else 0
    completion = result.completion_tokens if result is not None else 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class ChatCompletions:
    def __init__(self, turns: ApiTurns) -> None:
        self.turns = turns
        self.metrics = turns.metrics

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "hermes"} for name in self.turns.models()]})

    async def model(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        if name not in self.turns.models():
            raise ApiError(404, f"the model {name!r} does not exist here; /v1/models lists the models served",
                           param="model", code="model_not_found")
        return web.json_response({"id": name, "object": "model", "created": 0, "owned_by": "hermes"})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = validate(ChatCompletionRequest, parse_body(await request.read()))
        refuse_unsupported(body)
        model = validate_model(body.model, self.turns.models())
        user = check_user(body.user)
        session_id = check_session_id(request.headers.get(SESSION_HEADER))
        conversation = chat_conversation(body.messages)
        stream = bool(body.stream)
        events = StreamEvents.parse(request.headers.get(EVENTS_HEADER))  # refused even when not streaming
        if not stream:
            events = StreamEvents()
        reply = await self.turns.start(caller_of(request, user), conversation, session_id=session_id, model=model,
                                       params=body.params(), stream=stream, tools=events.tools)
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        headers = {SESSION_HEADER: session_id} if session_id else {}
        if stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return await self._stream(request, reply, ident, model, include_usage, headers, events)
        try:
            text, result = await reply.final()
        except Exception:
            self.metrics.errors.labels("api").inc()
            raise
        self.metrics.messages_out.labels("api").inc()
        return web.json_response({
            "id": ident, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": usage_of(result),
        }, headers=headers)

    async def _stream(self, request: web.Request, reply: ApiReply, ident: str, model: str, include_usage: bool,
                      headers: dict[str, str], events: StreamEvents) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no", **headers})
        await response.prepare(request)
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk", "created": created,
                                    "model": model,
                                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if include_usage:
                data["usage"] = None
            return sse(data)

        streamed = False
        answer: list[str] = []
        render_next = 0.0  # when the answer so far may be rendered again

        async def render() -> None:
            nonlocal render_next
            started = time.monotonic()
            html = to_html("".join(answer))
            took = time.monotonic() - started
            render_next = started + max(HTML_EVERY, took / HTML_SHARE)
            await response.write(sse({"object": "hermes.html", "html": html}))

        try:
            await response.write(chunk({"role": "assistant", "content": ""}))
            while True:
                kind, text, result = await reply.items.get()
                if kind == "tool":
                    if isinstance(result, ToolStep):
                        await response.write(sse(result.as_json()))
                    continue
                if kind == "delta":
                    streamed = True
                    answer.append(text)
                    await response.write(chunk({"content": text}))
                    if events.html and time.monotonic() >= render_next:
                        await render()
                    continue
                if kind == "error":
                    self.metrics.errors.labels("api").inc()
                    await response.write(sse({"error": {"message": text, "type": "upstream_error", "param": None,
                                                        "code": "model_error"}}))
                    break
                interrupted = result is not None and result.status == "interrupted"
                if not streamed:
                    answer.append(text)
                    await response.write(chunk({"content": text}))
                elif interrupted:
                    answer.append("\n\nStopped.")
                    await response.write(chunk({"content": "\n\nStopped."}))
                if events.html:
                    await render()
                await response.write(chunk({}, "stop"))
                if include_usage:
                    await response.write(sse({"id": ident, "object": "chat.completion.chunk", "created": created,
                                              "model": model, "choices": [], "usage": usage_of(result)}))
                self.metrics.messages_out.labels("api").inc()
                break
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            # the client went away; the turn goes on (and is stored, in a session)
            pass
        return response
