"""The API's sessions: `GET /api/sessions`, `GET /api/sessions/{id}[/messages]`, `DELETE /api/sessions/{id}`.

These are the conversations clients keep on the server with `X-Hermes-Session-Id`; each belongs
to the API token that created it (`api_sessions`): another token gets a 404, as if it did not
exist. The messages are the conversation as the client knows it (user messages and the agent's
answers; tool traffic stays on the server). Deleting removes the conversation and its stored
messages and tool calls; a session whose turn is running cannot be deleted (409).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.api.errors import ApiError
from gateway.api.openai_compat import caller_of
from gateway.api.request_models import check_session_id
from gateway.api.turns import ApiTurns, Caller

OBJECT = "hermes.session"


class SessionsApi:
    def __init__(self, turns: ApiTurns) -> None:
        self.turns = turns

    async def _owned(self, request: web.Request) -> tuple[Caller, str, dict[str, Any]]:
        caller = caller_of(request, "")
        session_id = check_session_id(request.match_info["session_id"]) or ""
        row = await self.turns.store.fetchone(
            "SELECT a.session_id, a.user_id, a.created_at, s.id AS store_id, s.updated_at, s.title"
            " FROM api_sessions a LEFT JOIN sessions s ON s.key = ? AND s.archived = 0"
            " WHERE a.token_id = ? AND a.session_id = ? ORDER BY s.created_at DESC LIMIT 1",
            (self.turns.session_key(caller.token_id, session_id), caller.token_id, session_id))
        if row is None:
            raise ApiError(404, f"no session {session_id!r} for this API token", param="session_id")
        return caller, session_id, dict(row)

    async def _count(self, store_id: str | None) -> int:
        if not store_id:
            return 0
        row = await self.turns.store.fetchone(
            "SELECT COUNT(*) FROM messages WHERE session_id = ? AND active = 1 AND role IN ('user', 'assistant')",
            (store_id,))
        return int(row[0]) if row else 0

    @staticmethod
    def _object(row: dict[str, Any], count: int) -> dict[str, Any]:
        return {"id": row["session_id"], "object": OBJECT, "user": row["user_id"] or None,
                "created_at": int(row["created_at"]), "updated_at": int(row["updated_at"] or row["created_at"]),
                "title": row["title"] or "", "message_count": count}

    async def list(self, request: web.Request) -> web.Response:
        caller = caller_of(request, "")
        rows = await self.turns.store.fetchall(
            "SELECT a.session_id, a.user_id, a.created_at, MAX(s.updated_at) AS updated_at, MAX(s.title) AS title,"
            " (SELECT COUNT(*) FROM messages m JOIN sessions t ON t.id = m.session_id WHERE t.key = ? || a.session_id"
            "  AND t.archived = 0 AND m.active = 1 AND m.role IN ('user', 'assistant')) AS message_count"
            " FROM api_sessions a LEFT JOIN sessions s ON s.key = ? || a.session_id AND s.archived = 0"
            " WHERE a.token_id = ? GROUP BY a.session_id ORDER BY COALESCE(MAX(s.updated_at), a.created_at) DESC"
            " LIMIT 500",
            (self.turns.session_key(caller.token_id, ""), self.turns.session_key(caller.token_id, ""),
             caller.token_id))
        return web.json_response({"object": "list", "data": [
            self._object(dict(r), int(r["message_count"] or 0)) for r in rows]})

    async def get(self, request: web.Request) -> web.Response:
        _, _, row = await self._owned(request)
        return web.json_response(self._object(row, await self._count(row["store_id"])))

    async def messages(self, request: web.Request) -> web.Response:
        _, session_id, row = await self._owned(request)
        data: list[dict[str, Any]] = []
        if row["store_id"]:
            rows = await self.turns.store.fetchall(
                "SELECT data, created_at FROM messages WHERE session_id = ? AND active = 1"
                " AND role IN ('user', 'assistant') ORDER BY seq, id", (row["store_id"],))
            for stored in rows:
                message = json.loads(stored["data"])
                if message.get("tool_calls") and not message.get("content"):
                    continue  # the agent calling its tools: not part of the conversation the client sees
                data.append({"role": message["role"], "content": message.get("content") or "",
                             "created_at": int(stored["created_at"])})
        return web.json_response({"object": "list", "session_id": session_id, "data": data})

    async def delete(self, request: web.Request) -> web.Response:
        caller, session_id, _ = await self._owned(request)
        key = self.turns.session_key(caller.token_id, session_id)
        if self.turns.dispatcher.busy(key):
            raise ApiError(409, f"session {session_id!r} is answering a message; try again when it is done",
                           param="session_id")
        store = self.turns.store
        for row in await store.fetchall("SELECT id FROM sessions WHERE key = ?", (key,)):
            self.turns.dispatcher.sessions.forget(row["id"])
            await store.execute("DELETE FROM tool_calls WHERE session_id = ?", (row["id"],))
            await store.execute("DELETE FROM messages WHERE session_id = ?", (row["id"],))
        await store.execute("DELETE FROM sessions WHERE key = ?", (key,))
        await store.execute("DELETE FROM api_sessions WHERE token_id = ? AND session_id = ?",
                            (caller.token_id, session_id))
        return web.json_response({"id": session_id, "object": f"{OBJECT}.deleted", "deleted": True})
