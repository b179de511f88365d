"""Assemble the built-in tools a session gets, from `[tools]` settings."""

from __future__ import annotations

from agent.settings import ToolsConfig
from agent.tools.delegate import SubAgentRunner, make_delegate_tool
from agent.tools.files import file_tools
from agent.tools.registry import Tool
from agent.tools.terminal import make_terminal_tool
from agent.tools.web import make_web_fetch_tool


def builtin_tools(settings: ToolsConfig, run_sub_agent: SubAgentRunner | None = None) -> list[Tool]:
    tools: list[Tool] = []
    if settings.files:
        tools.extend(file_tools(settings.max_read_chars))
    if settings.terminal.enabled:
        tools.append(make_terminal_tool(settings.terminal))
    if settings.web_fetch.enabled:
        tools.append(make_web_fetch_tool(settings.web_fetch))
    if settings.delegate.enabled and run_sub_agent is not None:
        tools.append(make_delegate_tool(run_sub_agent, settings.delegate.max_depth))
    return tools
