"""`/sessions`: recent sessions with their token usage; `/sessions/{id}`: the transcript, tool calls
folded (arguments, result, duration) and the usage by purpose (chat, checkpoint, compress, cron, delegate).

Read-only. Messages compacted away by context compression are still shown, marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.dashboard.core import Dashboard
from gateway.store.sessions_query import StoredMessage, StoredToolCall

SESSIONS_SHOWN = 100


@dataclass
class ToolCallView:
    call_id: str
    name: str
    arguments: str
    result: str | None = None
    ok: bool | None = None
    duration_ms: float | None = None


@dataclass
class MessageView:
    seq: int
    role: str
    text: str
    created_at: float
    compacted: bool
    tool_calls: list[ToolCallView] = field(default_factory=list)


def content_text(content: Any) -> str:
    """A message's content as text (multi-part content: text parts, other parts named)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, dict):
                parts.append(f"[{part.get('type', 'attachment')}]")
        return "\n".join(parts)
    return str(content)


def transcript(stored: list[StoredMessage], calls: dict[str, StoredToolCall]) -> list[MessageView]:
    """Messages in order, each tool result folded into the assistant message that asked for it."""
    views: list[MessageView] = []
    pending: dict[str, ToolCallView] = {}
    for row in stored:
        message = row.message
        role = str(message.get("role", row.role))
        if role == "tool" and message.get("tool_call_id") in pending:
            pending.pop(message["tool_call_id"]).result = content_text(message.get("content"))
            continue
        view = MessageView(row.seq, role, content_text(message.get("content")), row.created_at, not row.active)
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            call_id = str(call.get("id", ""))
            recorded = calls.get(call_id)
            tool_view = ToolCallView(call_id, str(function.get("name", "?")), str(function.get("arguments", "")),
                                     ok=recorded.ok if recorded is not None else None,
                                     duration_ms=recorded.duration_ms if recorded is not None else None)
            view.tool_calls.append(tool_view)
            pending[call_id] = tool_view
        if role == "tool":  # a result whose call is not in view (compacted away)
            view.role = f"tool result ({message.get('name') or message.get('tool_call_id') or '?'})"
        views.append(view)
    return views


def routes(d: Dashboard) -> list[web.RouteDef]:
    async def index(request: web.Request) -> web.Response:
        store = d.runtime.store
        sessions = await store.list_sessions(limit=SESSIONS_SHOWN, include_archived=True)
        ids = [s.id for s in sessions]
        usage = await store.sessions_usage(ids)
        counts = await store.sessions_message_counts(ids)
        return d.page(request, "sessions.html", active="/sessions", sessions=sessions, usage=usage, counts=counts)

    async def show(request: web.Request) -> web.Response:
        store = d.runtime.store
        session = await store.get_session(request.match_info["id"])
        if session is None:
            raise web.HTTPNotFound(text=f"no session with id {request.match_info['id']!r}")
        stored = await store.session_messages(session.id)
        calls = {c.call_id: c for c in await store.session_tool_calls(session.id)}
        usage = await store.session_usage_lines(session.id)
        total = await store.usage_for_session(session.id)
        return d.page(request, "session.html", active="/sessions", session=session,
                      messages=transcript(stored, calls), usage=usage, total=total)

    return [web.get("/sessions", index), web.get("/sessions/{id}", show)]
