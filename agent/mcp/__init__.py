"""MCP client support: servers from `[[mcp.servers]]`, their tools offered as `server__tool`.

`agent.mcp.settings` holds the config models (no heavy imports); `agent.mcp.manager` starts,
supervises and calls the servers with the official `mcp` SDK; `agent.mcp.tools` turns their
tools into registry `Tool`s.
"""
