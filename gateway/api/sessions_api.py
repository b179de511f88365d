"""The API's sessions: `GET /api/sessions`, `GET /api/sessions/{id}[/messages]`, `DELETE /api/sessions/{id}`,
`POST /api/sessions/{id}/stop`.

These are the conversations clients keep on the server with `X-Hermes-Session-Id`; each belongs
to the API token that created it (`api_sessions`): another token gets a 404, as if it did not
exist. The messages are the conversation as the client knows it (user messages and the agent's
answers; tool traffic stays on the server). With `?view=web` (what the web chat shows after a
reload) each answer also has `html`, its Markdown rendered and sanitized, and `steps`, the tool
calls made before it (name, shortened arguments, ok or error). Deleting removes the conversation and its
stored messages and tool calls; a session whose turn is running cannot be deleted (409). Stop
interrupts the running answer (`stopped` says whether one was running); that answer then ends
with "Stopped.", the only word the user sees about it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.errors import ApiError
from gateway.api.openai_compat import caller_of
from gateway.api.request_models import check_session_id
from gateway.api.turns import ApiTurns, Caller
from gateway.api.turns import shown_arguments
from gateway.markdown_html import to_html
from gateway.store.api_responses import CONVERSATION_ROLES, ApiSession

OBJECT = "hermes.session"


class SessionsApi:
    def __init__(self, turns: ApiTurns) -> None:
        self.turns = turns

    async def _owned(self, request: web.Request) -> tuple[Caller, str, ApiSession]:
        caller = caller_of(request, "")
        session_id = check_session_id(request.match_info["session_id"]) or ""
        found = await self.turns.store.api_session(caller.token_id, session_id,
                                                   self.turns.session_key(caller.token_id, session_id))
        if found is None:
            raise ApiError(404, f"no session {session_id!r} for this API token", param="session_id")
        return caller, session_id, found

    @staticmethod
    def _object(found: ApiSession) -> dict[str, Any]:
        return {"id": found.session_id, "object": OBJECT, "user": found.user_id or None,
                "created_at": int(found.created_at), "updated_at": int(found.updated_at or found.created_at),
                "title": found.title, "message_count": found.message_count}

    async def list(self, request: web.Request) -> web.Response:
        caller = caller_of(request, "")
        found = await self.turns.store.api_sessions_of(caller.token_id, self.turns.session_key(caller.token_id, ""))
        return web.json_response({"object": "list", "data": [self._object(f) for f in found]})

    async def get(self, request: web.Request) -> web.Response:
        _, _, found = await self._owned(request)
        return web.json_response(self._object(found))

    async def messages(self, request: web.Request) -> web.Response:
        view = request.query.get("view", "")
        if view not in ("", "web"):
            raise ApiError(400, f"view must be 'web' or absent, not {view[:40]!r}", param="view")
        _, session_id, found = await self._owned(request)
        data: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []  # the tool calls since the last message shown (view=web)
        redactor = self.turns.store.redactor
        ran: dict[str, bool] = {}  # call id: ok, for the steps' marks (view=web)
        if found.store_id and view == "web":
            ran = {call.call_id: call.ok for call in await self.turns.store.session_tool_calls(found.store_id)}
        if found.store_id:
            for stored in await self.turns.store.session_messages(found.store_id, active_only=True,
                                                                  roles=CONVERSATION_ROLES):
                message = stored.message
                for call in (message.get("tool_calls") or []) if view == "web" else []:
                    function = call.get("function") or {}
                    call_id = str(call.get("id", ""))
                    status = "done" if call_id not in ran else "ok" if ran[call_id] else "error"
                    steps.append({"object": "hermes.tool", "id": call_id, "name": str(function.get("name", "?")),
                                  "status": status,
                                  "arguments": shown_arguments(str(function.get("arguments", "")), redactor)})
                if message.get("tool_calls") and not message.get("content"):
                    continue  # the agent calling its tools: not part of the conversation the client sees
                item = {"role": message["role"], "content": message.get("content") or "",
                        "created_at": int(stored.created_at)}
                if view == "web" and message["role"] == "assistant":
                    item["html"] = to_html(item["content"]) if isinstance(item["content"], str) else ""
                    item["steps"], steps = steps, []
                elif message["role"] == "user":
                    steps = []
                data.append(item)
        if view == "web" and steps:  # stopped (or still working) after its tool calls, before an answer
            data.append({"role": "assistant", "content": "", "created_at": int(found.updated_at or 0),
                         "html": "", "steps": steps})
        return web.json_response({"object": "list", "session_id": session_id, "data": data})

    async def stop(self, request: web.Request) -> web.Response:
        """Interrupt the session's running answer; the answer itself then ends with "Stopped."."""
        caller, session_id, _ = await self._owned(request)
        stopped = self.turns.dispatcher.stop(self.turns.session_key(caller.token_id, session_id))
        return web.json_response({"id": session_id, "object": f"{OBJECT}.stop", "stopped": stopped})

    async def delete(self, request: web.Request) -> web.Response:
        caller, session_id, _ = await self._owned(request)
        key = self.turns.session_key(caller.token_id, session_id)
        if self.turns.dispatcher.busy(key):
            raise ApiError(409, f"session {session_id!r} is answering a message; try again when it is done",
                           param="session_id")
        for deleted in await self.turns.store.api_session_delete(caller.token_id, session_id, key):
            self.turns.dispatcher.sessions.forget(deleted)
        return web.json_response({"id": session_id, "object": f"{OBJECT}.deleted", "deleted": True})
