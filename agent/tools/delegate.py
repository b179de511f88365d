"""`delegate`: hand a sub-task to a sub-agent with its own fresh context and return its answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agent.tools.registry import Tool, ToolContext, ToolError, tool

SubAgentRunner = Callable[[ToolContext, str, str], Awaitable[str]]
"""(parent context, task, extra context) -> the sub-agent's final answer."""


def make_delegate_tool(run_sub_agent: SubAgentRunner, max_depth: int) -> Tool:
    @tool(name="delegate")
    async def delegate(ctx: ToolContext, task: str, context: str = "") -> str:
        """Give a self-contained sub-task to a sub-agent with a fresh context; returns its final answer.

        Use it for research or work whose details would clutter this conversation.

        Args:
            task: what the sub-agent must do, stated completely.
            context: facts the sub-agent needs (it does not see this conversation).
        """
        if ctx.depth >= max_depth:
            raise ToolError(f"delegation depth limit ({max_depth}) reached; do this sub-task yourself")
        return await run_sub_agent(ctx, task, context)

    return delegate
