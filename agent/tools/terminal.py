"""`terminal`: run a shell command in the session's workspace, with a timeout and an output cap.

Off unless `[tools.terminal] enabled = true`. Commands that match the dangerous-pattern list
(destructive deletes, disk writes, force pushes, piping downloads into a shell, ...) run only
after the user approves them through the context's approval channel.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal

from agent.redact import SECRET_ENV_NAME
from agent.settings import TerminalConfig
from agent.tools.registry import Tool, ToolContext, ToolError, tool

DANGEROUS_PATTERNS: tuple[str, ...] = (
    r"\brm\s+(-[a-zA-Z]*[rf][a-zA-Z]*\s+)+",        # rm -rf, rm -f, rm -r
    r"\bmkfs(\.\w+)?\b",
    r"\bdd\s+.*\bof=",
    r"\b(shutdown|reboot|halt|poweroff)\b",
    r":\(\)\s*\{\s*:\|:&\s*\};:",                    # fork bomb
    r"\bchmod\s+(-R\s+)?[0-7]*777\b",
    r"\bchown\s+-R\b",
    r"(curl|wget)[^|]*\|\s*(sudo\s+)?(ba|z|)sh\b",
    r"\bgit\s+push\s+.*(--force|-f)\b",
    r"\bgit\s+reset\s+--hard\b",
    r"\bgit\s+clean\s+-[a-z]*f",
    r">\s*/dev/(sd|nvme|hd)",
    r"\b(DROP|TRUNCATE)\s+(TABLE|DATABASE)\b",
    r"\bsudo\b",
    r"\bkill(all)?\s+-9\b",
    r"\bcrontab\s+-r\b",
)


def dangerous_reason(command: str, extra_patterns: list[str]) -> str | None:
    """The pattern a command matches, if it is on the dangerous list."""
    for pattern in (*DANGEROUS_PATTERNS, *extra_patterns):
        if re.search(pattern, command, flags=re.IGNORECASE):
            return pattern
    return None


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


def _child_environment(cwd: object) -> dict[str, str]:
    """The process environment without secret-named variables: commands must not leak API keys."""
    env = {k: v for k, v in os.environ.items() if not SECRET_ENV_NAME.search(k)}
    env["PWD"] = str(cwd)
    return env


def make_terminal_tool(settings: TerminalConfig) -> Tool:
    """The terminal tool bound to its settings."""

    @tool(name="terminal")
    async def terminal(ctx: ToolContext, command: str, timeout: float | None = None) -> str:
        """Run a shell command in the workspace folder and return its exit code and output.

        Args:
            command: the shell command line.
            timeout: seconds before the command is killed (capped by the configured limit).
        """
        reason = dangerous_reason(command, settings.dangerous_patterns)
        if reason is not None:
            approved = await ctx.approve("terminal", f"run `{command}` (matches dangerous pattern {reason!r})")
            if not approved:
                raise ToolError(f"the command was not approved by the user, so it did not run: {command}")
        limit = min(timeout or settings.timeout, settings.timeout)
        cwd = ctx.workspace.ensure().root
        process = await asyncio.create_subprocess_exec(
            settings.shell, "-c", command, cwd=cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
            env=_child_environment(cwd),
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=limit)
        except (TimeoutError, asyncio.CancelledError) as exc:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await process.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise ToolError(f"the command timed out after {limit:g} s and was killed: {command}") from None
        text = _cap(output.decode("utf-8", errors="replace"), settings.max_output_chars)
        return f"exit code {process.returncode}\n{text}"

    return terminal
