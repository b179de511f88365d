"""The Responses API: `POST /v1/responses`, `GET /v1/responses/{id}`.

`input` is a string or a list of message items; `instructions` are the client's instructions for
this response (not carried to the next one, as in OpenAI's API); `previous_response_id`
continues the conversation a stored response ended, so the client sends only what is new. Every
response is its own turn (stateless, like a chat completion without a session); with `store`
(the default) the response and the conversation it ends are kept in `api_responses`, readable
and continuable only with the API token that created them. `stream` sends the `response.*`
server-sent events the official clients parse, with the usage in `response.completed`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from gateway.api.errors import ApiError
from gateway.api.openai_compat import caller_of
from gateway.api.request_models import (
    ResponsesRequest,
    check_user,
    parse_body,
    refuse_unsupported,
    response_conversation,
    validate,
    validate_model,
)
from gateway.api.turns import ApiReply, ApiTurns, Caller


def _usage(result: Any) -> dict[str, Any]:
    prompt = result.prompt_tokens if result is not None else 0
    completion = result.completion_tokens if result is not None else 0
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion}


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" \
        else []
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


class Responses:
    def __init__(self, turns: ApiTurns) -> None:
        self.turns = turns
        self.metrics = turns.metrics

    # -- storage ----------------------------------------------------------------------------------------
    async def _load(self, caller: Caller, response_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        found = await self.turns.store.api_response(response_id, token_id=caller.token_id)
        return (found.response, found.messages) if found is not None else None

    async def _save(self, caller: Caller, response: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        await self.turns.store.api_response_save(response, messages, token_id=caller.token_id)

    # -- handlers ---------------------------------------------------------------------------------------
    async def get(self, request: web.Request) -> web.Response:
        found = await self._load(caller_of(request, ""), request.match_info["response_id"])
        if found is None:
            raise ApiError(404, f"no stored response {request.match_info['response_id']!r} for this API token",
                           param="response_id")
        return web.json_response(found[0])

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = validate(ResponsesRequest, parse_body(await request.read()))
        refuse_unsupported(body)
        model = validate_model(body.model, self.turns.models())
        caller = caller_of(request, check_user(body.user))
        conversation = response_conversation(body)
        earlier: list[dict[str, Any]] = []
        if body.previous_response_id:
            found = await self._load(caller, body.previous_response_id)
            if found is None:
                raise ApiError(404, f"previous_response_id: no stored response {body.previous_response_id!r} for "
                                    "this API token", param="previous_response_id", code="previous_response_not_found")
            earlier = found[1]
        reply = await self.turns.start(caller, conversation, session_id=None, model=model, params=body.params(),
                                       stream=bool(body.stream), history=tuple(earlier))
        store = body.store is not False
        shell = {
            "id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
            "status": "in_progress", "model": model, "output": [], "error": None, "incomplete_details": None,
            "instructions": body.instructions, "previous_response_id": body.previous_response_id,
            "parallel_tool_calls": False, "tool_choice": "auto", "tools": [], "temperature": body.temperature,
            "top_p": body.top_p, "max_output_tokens": body.max_output_tokens, "metadata": body.metadata or {},
            "store": store, "text": {"format": {"type": "text"}}, "usage": None, "user": body.user,
        }
        new_messages = [*earlier, *conversation.history, conversation.content
                        if isinstance(conversation.content, dict) else {"role": "user", "content": conversation.content}]
        if body.stream:
            return await self._stream(request, reply, shell, caller, new_messages, store)
        try:
            text, result = await reply.final()
        except Exception:
            self.metrics.errors.labels("api").inc()
            raise
        response = await self._complete(shell, text, result, caller, new_messages, store, f"msg_{uuid.uuid4().hex}")
        return web.json_response(response)

    async def _complete(self, shell: dict[str, Any], text: str, result: Any, caller: Caller,
                        messages: list[dict[str, Any]], store: bool, item_id: str, answer: str | None = None) \
            -> dict[str, Any]:
        """The completed response (`text` as the client saw it), stored with the conversation it ends
        (`answer`: the agent's final answer, without what it said between tool calls)."""
        response = {**shell, "status": "completed", "completed_at": int(time.time()),
                    "output": [_message_item(item_id, text, "completed")], "usage": _usage(result)}
        if store:
            await self._save(caller, response, [*messages, {"role": "assistant", "content": answer or text}])
        self.metrics.messages_out.labels("api").inc()
        return response

    async def _stream(self, request: web.Request, reply: ApiReply, shell: dict[str, Any], caller: Caller,
                      messages: list[dict[str, Any]], store: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        sequence = 0
        item_id = f"msg_{uuid.uuid4().hex}"

        async def send(kind: str, **data: Any) -> None:
            nonlocal sequence
            event = {"type": kind, "sequence_number": sequence, **data}
            sequence += 1
            await response.write(f"event: {kind}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode())

        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        try:
            await send("response.created", response=shell)
            await send("response.in_progress", response=shell)
            await send("response.output_item.added", output_index=0, item=_message_item(item_id, "", "in_progress"))
            await send("response.content_part.added", **where,
                       part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            streamed: list[str] = []
            while True:
                kind, text, result = await reply.items.get()
                if kind == "delta":
                    streamed.append(text)
                    await send("response.output_text.delta", **where, delta=text, logprobs=[])
                    continue
                if kind == "error":
                    self.metrics.errors.labels("api").inc()
                    failed = {**shell, "status": "failed", "error": {"code": "server_error", "message": text}}
                    await send("response.failed", response=failed)
                    break
                sent = "".join(streamed)
                extra = text if not streamed else \
                    "\n\nStopped." if result is not None and result.status == "interrupted" else ""
                if extra:
                    await send("response.output_text.delta", **where, delta=extra, logprobs=[])
                    sent += extra
                final = await self._complete(shell, sent, result, caller, messages, store, item_id, answer=text)
                part = final["output"][0]["content"][0]
                await send("response.output_text.done", **where, text=sent, logprobs=[])
                await send("response.content_part.done", **where, part=part)
                await send("response.output_item.done", output_index=0, item=final["output"][0])
                await send("response.completed", response=final)
                break
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away; the turn goes on
        return response
