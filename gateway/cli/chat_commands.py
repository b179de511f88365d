"""Chat commands in the terminal: the same `/help`, `/skills`, `/memory`, `/model`, `/usage`, `/new`,
`/approve`... as every platform (`gateway.commands`), plus `/exit`, and every skill as `/name`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.cli.identity import CLI_PLATFORM, CLI_SESSION_KEY, CLI_USER

TERMINAL_COMMANDS: list[tuple[str, str]] = [
    ("exit", "Leave (also /quit, Ctrl-D, or Ctrl-C twice at an empty prompt)"),
]
KEYS_HELP = "Ctrl-C stops a running answer; at the prompt it clears the line."


@dataclass(frozen=True)
class Outcome:
    """What a line typed at the prompt asks for."""

    reply: str = ""           # text to show
    prompt: str = ""          # a request for the agent (plain text, or a skill expanded)
    session: Any = None       # the session to continue in (after /new)
    quit: bool = False


class TerminalCommands:
    """Answers slash commands for the terminal session with the platforms' own `Commands`."""

    def __init__(self, runtime: Any) -> None:
        from gateway.commands import Commands

        self.runtime = runtime
        self.commands = Commands(runtime)

    def context(self, session: Any, key: str = "") -> Any:
        from gateway.commands import CommandContext

        return CommandContext(session_key=key or session.key, platform=CLI_PLATFORM, chat_id="", user_id=CLI_USER,
                              team=session.team)

    async def help(self, session: Any, width: int = 100) -> str:
        """Every command and every skill, one line each, cut to the terminal's width."""
        from gateway.commands import BUILTIN_COMMANDS

        def row(name: str, text: str) -> str:
            line = f"  /{name:<9} {' '.join(text.split())}"
            return line if len(line) <= width else line[:max(width - 1, 20)] + "…"

        lines = ["Write to the agent, or use a command:"]
        lines += [row(name, text) for name, text in [*BUILTIN_COMMANDS, *TERMINAL_COMMANDS]]
        skills = await self.commands.skill_names(session.team)
        if skills:
            lines.append("Skills (run one with /name and what you want):")
            lines += [row(name, description) for name, description in skills]
        lines.append(KEYS_HELP)
        return "\n".join(lines)

    async def handle(self, text: str, session: Any, width: int = 100) -> Outcome:
        """What `text` (one line from the prompt) means: a command's answer, or a prompt to run."""
        from gateway.commands import BUILTIN_COMMANDS, parse_command

        command = parse_command(text)
        if command is None:
            return Outcome(prompt=text)
        if command.name in ("exit", "quit"):
            return Outcome(quit=True)
        if command.name == "help":
            return Outcome(reply=await self.help(session, width))
        if command.name == "stop":
            return Outcome(reply="Nothing is running. (Ctrl-C stops an answer while it is being written.)")
        ctx = self.context(session)
        if command.name == "new":  # a fresh interactive session (even after --continue of a one-shot one)
            ctx = self.context(session, key=CLI_SESSION_KEY)
            reply = await self.commands.new_session(ctx)
            fresh = await self.runtime.store.active_session(CLI_SESSION_KEY, platform=CLI_PLATFORM,
                                                            user_id=CLI_USER, team=session.team)
            return Outcome(reply=f"{reply} (session {fresh.id})", session=fresh)
        if command.name in {name for name, _ in BUILTIN_COMMANDS}:
            return Outcome(reply=await self.commands.answer(command, ctx))
        expanded = await self.commands.expand_skill(text, session.team)
        if expanded is not None:
            return Outcome(prompt=expanded)
        return Outcome(reply=f"Unknown command /{command.name}: /help lists the commands and skills.")
