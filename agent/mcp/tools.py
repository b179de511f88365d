"""MCP tools as registry `Tool`s: named `server__tool`, schema taken verbatim from the server.

`mcp_tools(manager)` lists the tools of every running server. A call goes through the
server's connection (restart and one retry when it died); the result's text parts come back to
the model, an `isError` result or a failed call comes back as an error the model can read.
"""

from __future__ import annotations

import json
import re
from typing import Any

import mcp_types as types
from pydantic import BaseModel, ConfigDict, create_model

from agent.mcp.manager import McpCallError, McpManager, McpServer
from agent.tools.registry import Tool, ToolContext, ToolError

MAX_RESULT_CHARS = 50_000
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def tool_name(server: str, tool: str) -> str:
    """`server__tool`, limited to what model APIs accept (letters, digits, _ and -, 64 chars)."""
    return f"{server}__{_UNSAFE.sub('_', tool)}"[:64]


def input_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    """The server's JSON schema as function parameters (always an object with properties)."""
    cleaned = {k: v for k, v in (schema or {}).items() if k not in ("title", "$schema")}
    cleaned["type"] = "object"
    cleaned.setdefault("properties", {})
    return cleaned


def render_result(result: types.CallToolResult) -> str:
    """The parts of a tool result a model can read, as text."""
    parts: list[str] = []
    for item in result.content:
        if isinstance(item, types.TextContent):
            parts.append(item.text)
        elif isinstance(item, types.ImageContent):
            parts.append(f"[image {item.mime_type}, {len(item.data) * 3 // 4} bytes]")
        elif isinstance(item, types.AudioContent):
            parts.append(f"[audio {item.mime_type}, {len(item.data) * 3 // 4} bytes]")
        elif isinstance(item, types.ResourceLink):
            parts.append(f"[resource {item.uri}]")
        elif isinstance(item, types.EmbeddedResource):
            resource = item.resource
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource {resource.uri}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n".join(parts)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + "\n[... truncated]"
    return text


class McpTool(Tool):
    """A tool served by an MCP server; arguments are checked by the server against its schema."""

    def __init__(self, server: McpServer, info: types.Tool) -> None:
        self.server = server
        self.remote_name = info.name
        self.name = tool_name(server.name, info.name)
        summary = info.description or info.title or info.name
        self.description = f"{summary}\n\n(tool {info.name!r} of the MCP server {server.name!r})"
        self.parameters = input_schema(info.input_schema)
        self.context_param = None
        self.func = self._invoke
        self.arguments_model: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{self.name}_arguments", __config__=ConfigDict(extra="allow"))

    async def _invoke(self, **arguments: Any) -> str:
        try:
            result = await self.server.call(self.remote_name, arguments)
        except McpCallError as exc:
            raise ToolError(str(exc)) from exc
        text = render_result(result)
        if result.is_error:
            raise ToolError(f"{self.name}: {text or 'the tool reported an error'}")
        return text

    async def __call__(self, ctx: ToolContext, arguments: dict[str, Any]) -> Any:
        return await self._invoke(**arguments)


def mcp_tools(manager: McpManager) -> list[Tool]:
    """One Tool for every tool of every running server (duplicates after sanitizing are dropped)."""
    tools: list[Tool] = []
    seen: set[str] = set()
    for server in manager.servers.values():
        if server.state != "running":
            continue
        for info in server.tools:
            t = McpTool(server, info)
            if t.name not in seen:
                seen.add(t.name)
                tools.append(t)
    return tools
