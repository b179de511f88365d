"""A small stdio MCP server for tests, written with the official SDK (`MCPServer`, formerly FastMCP).

    python -m tests.fakes.mcp_server            # or: python tests/fakes/mcp_server.py

Tools: `add(a, b)`, `shout(text)`, `whoami()` (the server's process id, so a test can see a
restart) and `sleep(seconds)` (for call timeouts).
"""

from __future__ import annotations

import asyncio
import os

from mcp.server.mcpserver import MCPServer

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


if __name__ == "__main__":
    server.run("stdio")
