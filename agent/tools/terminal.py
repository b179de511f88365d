"""`terminal`: run a shell command in a sandbox, in the session's workspace, with time, resource and output limits.

Off unless `[tools.terminal] enabled = true`. Every command (and every skill script it runs) runs
in the sandbox `[tools.terminal] sandbox` picks (`agent.sandbox`): the workspace read-write,
system folders and the skill library read-only, a private /tmp, no HERMES_HOME or home folder,
no gateway processes, only the environment `[tools.terminal] env` passes, no network unless
`network = true`. Where no sandbox can run, the terminal refuses every command and says why,
unless the admin chose `sandbox = "none"`.

Commands that parse as destructive (`agent.tools.command_rules`) also ask the user first, as a
courtesy for the workspace's own files; the sandbox is the boundary.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from agent.sandbox.policy import Limits, SandboxSpec, choose_backend
from agent.sandbox.runner import RunResult, SandboxRefused, run_sandboxed
from agent.settings import TerminalConfig
from agent.tools.command_rules import dangerous_reason
from agent.tools.registry import Tool, ToolContext, ToolError, tool

__all__ = ["dangerous_reason", "make_terminal_tool"]

log = logging.getLogger(__name__)
MB = 1 << 20
BLOCKED = ("Permission denied", "Read-only file system", "Operation not permitted", "No such file or directory",
           "Network is unreachable", "Could not resolve host", "Temporary failure in name resolution",
           "Couldn't connect to server")


def hermes_home() -> Path:
    """The gateway's home, which no command may see (read like `gateway.home.Home.from_env`)."""
    return Path(os.environ.get("HERMES_HOME") or "~/.hermes").expanduser().resolve()


def command_environment(settings: TerminalConfig) -> dict[str, str]:
    """Exactly what `[tools.terminal] env` passes: `NAME` (the gateway's value, if set) or `NAME=value`."""
    env: dict[str, str] = {}
    for entry in settings.env:
        name, sep, value = entry.partition("=")
        if sep:
            env[name] = value
        elif name in os.environ:
            env[name] = os.environ[name]
    return env


def limits(settings: TerminalConfig) -> Limits:
    return Limits(cpu_seconds=settings.cpu_seconds, memory_bytes=settings.memory_mb * MB,
                  processes=settings.max_processes, file_bytes=settings.max_file_mb * MB)


async def _read_only_roots(ctx: ToolContext, settings: TerminalConfig) -> tuple[Path, ...]:
    from agent.tools.skills import _library  # the session's skill library: its scripts run read-only

    roots = [Path(p).expanduser().resolve() for p in settings.read_only_paths]
    try:
        library = await _library(ctx)
    except ToolError:
        library = None
    if library is not None:
        roots.append(Path(library.root).resolve())
    return tuple(roots)


def describe_rules(backend_name: str, spec: SandboxSpec) -> str:
    network = "on" if spec.network else "off"
    return (f"sandbox ({backend_name}): only the workspace {spec.workspace} is writable; system folders and the "
            f"skill library are read-only; HERMES_HOME, the home folder and the gateway's processes are not "
            f"visible; the network is {network}")


def _explain(result: RunResult, settings: TerminalConfig, sandbox_note: str) -> str:
    notes = []
    code = result.returncode
    if code in (-24, 128 + 24):
        notes.append(f"killed: the CPU time limit ({settings.cpu_seconds} s, [tools.terminal] cpu_seconds) was reached")
    elif code in (-25, 128 + 25):
        notes.append(f"killed: a file grew past the size limit ({settings.max_file_mb} MB, "
                     "[tools.terminal] max_file_mb)")
    elif code in (-9, 128 + 9):
        notes.append(f"killed (SIGKILL): perhaps the memory limit ({settings.memory_mb} MB, [tools.terminal] "
                     "memory_mb) or the CPU time limit")
    if result.cut:
        notes.append(f"{result.cut} characters of output were cut (limit {settings.max_output_chars}, "
                     "[tools.terminal] max_output_chars)")
    if code != 0 and sandbox_note and any(marker in result.output for marker in BLOCKED):
        notes.append(f"note: the command ran in a {sandbox_note}")
    return "".join(f"\n[{note}]" for note in notes)


def make_terminal_tool(settings: TerminalConfig) -> Tool:
    """The terminal tool bound to its settings."""
    first = choose_backend(settings.sandbox)
    if not first.usable:
        log.warning("terminal: enabled, but every command will be refused: %s", first.problem)
    elif first.name == "none":
        log.warning('terminal: sandbox = "none": %s', first.detail)

    @tool(name="terminal")
    async def terminal(ctx: ToolContext, command: str, timeout: float | None = None) -> str:
        """Run a shell command in the workspace folder and return its exit code and output.

        Commands run in a sandbox: the workspace is writable, system folders and the skill library
        are read-only, the gateway's own files are not visible, and the network may be off.

        Args:
            command: the shell command line.
            timeout: seconds before the command is killed (capped by the configured limit).
        """
        backend = choose_backend(settings.sandbox)
        if not backend.usable:
            raise ToolError(f"the terminal is off: {backend.problem}")
        reason = dangerous_reason(command, settings.dangerous_patterns)
        if reason is not None:
            approved = await ctx.approve("terminal", f"run `{command}` (matches dangerous pattern {reason!r})")
            if not approved:
                raise ToolError(f"the command was not approved by the user, so it did not run: {command}")
        limit = min(timeout or settings.timeout, settings.timeout)
        workspace = ctx.workspace.ensure().root.resolve()
        spec = SandboxSpec(workspace=workspace, read_only=await _read_only_roots(ctx, settings),
                           hidden=(hermes_home(), Path.home().resolve()), env=command_environment(settings), network=settings.network,
                           limits=limits(settings))
        try:
            result = await run_sandboxed(backend, spec, [settings.shell, "-c", command], timeout=limit,
                                         max_output_chars=settings.max_output_chars)
        except SandboxRefused as exc:
            raise ToolError(f"the command did not run: {exc}") from None
        if result.timed_out:
            raise ToolError(f"the command timed out after {limit:g} s and was killed ([tools.terminal] timeout): "
                            f"{command}\n{result.output}")
        note = describe_rules(backend.name, spec) if backend.name != "none" else ""
        return f"exit code {result.returncode}\n{result.output}{_explain(result, settings, note)}"

    return terminal
