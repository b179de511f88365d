"""Tools the agent can call: the registry and the built-in tools."""

from agent.tools.registry import Tool, ToolContext, ToolError, ToolRegistry, ToolResult, tool

__all__ = ["Tool", "ToolContext", "ToolError", "ToolRegistry", "ToolResult", "tool"]
