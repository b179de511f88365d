"""A small stdio MCP server for tests, written with the official SDK (`MCPServer`, formerly FastMCP).

    python tests/fakes/mcp_server.py                 # stdio
    python tests/fakes/mcp_server.py --http PORT     # streamable HTTP on 127.0.0.1:PORT/mcp

Tools: `add(a, b)`, `shout(text)`, `whoami()` (the server's process id, so a test can see a
restart), `sleep(seconds)` (for call timeouts) and, over HTTP, `header(name)` (a request header
the client sent).
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("fake-tools")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def shout(text: str) -> str:
    """Return the text in capital letters."""
    return text.upper() + "!"


@server.tool()
def whoami() -> str:
    """The server's process id."""
    return f"pid {os.getpid()}"


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait, then answer."""
    await asyncio.sleep(seconds)
    return "awake"


@server.tool()
def header(name: str, ctx: Context) -> str:
    """A header of the HTTP request that carried this call."""
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    return headers.get(name, "(none)") if headers is not None else "(not over HTTP)"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
