"""Wiring MCP servers into a Runtime: start them, register their tools, stop them on close.

    await install_mcp(runtime)     # in Runtime.open, after the built-in tools are registered
    await close_mcp(runtime)       # in Runtime.close, before the store closes
    manager, tools = await start_mcp(config.mcp, home.logs_dir)   # without a Runtime (`hermes batch`)

The manager is kept in `runtime.services["mcp"]`. A server that fails to start is logged with
the reason and skipped; the runtime opens anyway. The MCP SDK is imported only when a server
is configured (it costs about 0.3 s).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.mcp.manager import McpManager
    from agent.tools.registry import Tool
    from gateway.runtime import Runtime

log = logging.getLogger(__name__)


async def install_mcp(runtime: Runtime) -> McpManager | None:
    """Start the enabled `[[mcp.servers]]` and offer their tools; None when none is configured."""
    settings = runtime.config.mcp
    if not any(s.enabled for s in settings.servers):
        return None
    from agent.mcp.manager import McpManager

    existing = runtime.services.get("mcp")
    if isinstance(existing, McpManager):
        return existing  # already installed (Runtime.open does it; a test may call it again)
    manager, tools = await start_mcp(settings, runtime.home.logs_dir)
    assert manager is not None
    runtime.services["mcp"] = manager
    for t in tools:
        if runtime.tools.get(t.name) is not None:
            log.warning("MCP tool %s not offered: a tool of that name already exists", t.name)
            continue
        runtime.tools.register(t)
    return manager


async def start_mcp(settings: Any, log_dir: Path) -> tuple[McpManager | None, list[Tool]]:
    """Start the enabled servers of an `[mcp]` section; (None, []) when none is configured.
    The caller closes the manager (`await manager.close()`)."""
    if not any(s.enabled for s in settings.servers):
        return None, []
    from agent.mcp.manager import McpManager
    from agent.mcp.tools import mcp_tools

    manager = McpManager(settings, log_dir=log_dir)
    await manager.start()
    return manager, list(mcp_tools(manager))


async def close_mcp(runtime: Runtime) -> None:
    """Stop every MCP server started by `install_mcp` (safe to call when none was)."""
    manager = runtime.services.pop("mcp", None)
    if manager is not None:
        await manager.close()
