"""Chat commands every platform understands: /help, /new, /stop, /skills, /memory, /usage, /model.

`parse_command` recognises `/name args` (a Telegram-style `/name@botname` too). Commands that do
not change the conversation are answered at once, even while a turn runs; `/new` waits its turn
in the session's queue; `/stop` is handled by the dispatcher. Any other `/name args` that names
a skill in the session's team library is expanded by `expand_skill_command` into the prompt
the agent runs.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from gateway.wording import plural
from gateway.learning.proposals import Decider, ProposalError
from gateway.runtime import Runtime
from gateway.skills_wiring import SkillLibraries, expand_skill_command
from skills.library import SkillLibrary

log = logging.getLogger(__name__)

COMMAND = re.compile(r"^/([A-Za-z0-9][A-Za-z0-9_\-]{0,63})(?:@[A-Za-z0-9_]+)?(?:\s+(.*))?$", re.DOTALL)

BUILTIN_COMMANDS: list[tuple[str, str]] = [
    ("help", "What I can do and the commands I know"),
    ("new", "Start a fresh conversation"),
    ("stop", "Stop the answer I am working on"),
    ("skills", "List the skills in my library"),
    ("memory", "Show what I remember"),
    ("usage", "Tokens and cost of this conversation"),
    ("model", "Which model answers"),
    ("approve", "Approve what I asked to do (or a proposal: /approve ID; admins)"),
    ("deny", "Deny what I asked to do (or a proposal: /deny ID [reason])"),
    ("reject", "Drop a proposal: /reject ID [reason] (admins)"),
]
IMMEDIATE = {"help", "skills", "memory", "usage", "model", "approve", "deny", "reject"}


@dataclass(frozen=True)
class Command:
    name: str
    args: str


def parse_command(text: str) -> Command | None:
    match = COMMAND.match(text.strip())
    if match is None:
        return None
    return Command(match.group(1).lower(), (match.group(2) or "").strip())


@dataclass(frozen=True)
class CommandContext:
    session_key: str
    platform: str
    chat_id: str
    user_id: str
    team: str
    display_name: str = ""
    shared: bool = False  # several people talk in this session (a group with session_scope channel/thread)


class Commands:
    """Answers to the built-in commands, and the skill-command hook."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    # -- the skill library of a team --------------------------------------------------------------
    async def library(self, team: str) -> SkillLibrary:
        """The team's library (`services["skill_libraries"]`, installed by Runtime.open)."""
        libraries: SkillLibraries = self.runtime.services["skill_libraries"]
        return await libraries.get(team)

    async def skill_names(self, team: str = "") -> list[tuple[str, str]]:
        try:
            snapshot = await (await self.library(team)).snapshot()
            return [(s.name, s.description) for s in snapshot.skills]
        except Exception as exc:  # noqa: BLE001 - listing skills must not break a chat
            log.warning("could not list skills: %s", exc)
            return []

    async def expand_skill(self, text: str, team: str) -> str | None:
        """`/skill-name args` -> the request to follow that skill; None when no skill has that name."""
        return await expand_skill_command(await self.library(team), text)

    # -- built-ins -----------------------------------------------------------------------------------
    async def answer(self, command: Command, ctx: CommandContext) -> str:
        handler = getattr(self, f"_cmd_{command.name}")
        return str(await handler(command.args, ctx))

    async def _cmd_help(self, _args: str, ctx: CommandContext) -> str:
        lines = ["I'm Hermes, an agent with tools and a skill library. Just write to me. Commands:"]
        lines += [f"/{name} - {text}" for name, text in BUILTIN_COMMANDS]
        skills = await self.skill_names(ctx.team)
        if skills:
            lines.append("Every skill is a command too, e.g. " + ", ".join(f"/{n}" for n, _ in skills[:5])
                         + (" ..." if len(skills) > 5 else "") + " (see /skills).")
        return "\n".join(lines)

    async def _cmd_skills(self, _args: str, ctx: CommandContext) -> str:
        skills = await self.skill_names(ctx.team)
        if not skills:
            return "My skill library is empty so far. I write skills as I learn your work."
        lines = [f"{plural(len(skills), 'skill')} (run one with /name and what you want):"]
        lines += [f"- /{name}: {' '.join(description.split())[:120]}" for name, description in skills[:50]]
        if len(skills) > 50:
            lines.append(f"... and {len(skills) - 50} more.")
        return "\n".join(lines)

    async def _cmd_memory(self, _args: str, ctx: CommandContext) -> str:
        hook = self.runtime.services.get("memory_show")
        if hook is not None:
            result = hook(team=ctx.team, platform=ctx.platform, user_id=ctx.user_id)
            if inspect.isawaitable(result):
                result = await result
            return str(result) or "I don't remember anything yet."
        return "I don't remember anything yet."

    async def _cmd_usage(self, _args: str, ctx: CommandContext) -> str:
        store = self.runtime.store
        session = await store.active_session(ctx.session_key, platform=ctx.platform, chat_id=ctx.chat_id,
                                             user_id=ctx.user_id, team=ctx.team)
        mine = await store.usage_for_session(session.id)
        today = await store.usage_since(time.time() - 86_400)
        text = (f"This conversation: {plural(mine.calls, 'model call')}, {mine.prompt_tokens} prompt + "
                f"{mine.completion_tokens} completion tokens, ${mine.cost:.4f}.\n"
                f"Everyone, last 24 hours: {plural(today.calls, 'call')}, {today.total_tokens} tokens, ${today.cost:.4f}.")
        learning = self.runtime.services.get("learning")
        if learning is not None:  # split by X-Hermes-Purpose: chat, checkpoint (learning), compress, cron ...
            split = await learning.log.usage_by_purpose(time.time() - 86_400)
            if split:
                text += "\nBy purpose, last 24 hours: " + ", ".join(
                    f"{p} {u['prompt_tokens'] + u['completion_tokens']}" for p, u in split.items()) + " tokens."
        return text

    async def _cmd_model(self, _args: str, _ctx: CommandContext) -> str:
        config = self.runtime.config.model
        if not config.name:
            return "No model is configured yet (set [model] name in config.toml)."
        fallbacks = [f if isinstance(f, str) else f.name for f in config.fallbacks]
        text = f"Model: {config.name}"
        if fallbacks:
            text += " (fallbacks: " + ", ".join(fallbacks) + ")"
        return text + ". The model is set in config.toml ([model] name)."

    # -- proposals (ask mode, protected skills) ------------------------------------------------------
    def _decider(self, ctx: CommandContext) -> Decider:
        section = getattr(self.runtime.config, ctx.platform, None)
        admin = bool(ctx.user_id) and ctx.user_id in (getattr(section, "admins", None) or [])
        return Decider("chat", platform=ctx.platform, user_id=ctx.user_id, team=ctx.team, admin=admin)

    async def _list_proposals(self, learning: Any, ctx: CommandContext) -> str:
        pending = await learning.pending(team=ctx.team)
        if not pending:
            return "No skill proposals are waiting."  # (of this chat's team)
        lines = [f"#{p.id} {p.title[:160]}" for p in pending]
        who = ("Approve with /approve ID, reject with /reject ID [reason]." if self._decider(ctx).admin
               else f"An admin of {ctx.platform} can approve them with /approve ID.")
        return "Waiting for approval:\n" + "\n".join(lines) + "\n" + who

    async def _cmd_approve(self, args: str, ctx: CommandContext) -> str:
        approvals = self.runtime.services.get("approvals")  # a tool call waiting in this chat comes first
        answer = await approvals.command("approve", args, ctx) if approvals is not None else None
        if answer is not None:
            return answer
        learning = self.runtime.services.get("learning")
        if learning is None:
            return "The learning loop is off."
        if not args.strip():
            return await self._list_proposals(learning, ctx)
        try:
            proposal_id = int(args.split()[0].lstrip("#"))
        except ValueError:
            return "Usage: /approve ID"
        try:
            applied = await learning.approve(proposal_id, by=self._decider(ctx))
        except ProposalError as exc:
            return str(exc)
        return f"Approved #{applied.proposal.id}: {applied.message}."

    async def _cmd_deny(self, args: str, ctx: CommandContext) -> str:
        head = args.strip().split(" ", 1)[0].lstrip("#")
        if head.isascii() and head.isdigit() and self.runtime.services.get("learning") is not None:
            return await self._cmd_reject(args, ctx)  # tool-approval ids start with a letter: this is a proposal
        approvals = self.runtime.services.get("approvals")
        answer = await approvals.command("deny", args, ctx) if approvals is not None else None
        return answer or "Nothing is waiting for approval here."

    async def _cmd_reject(self, args: str, ctx: CommandContext) -> str:
        learning = self.runtime.services.get("learning")
        if learning is None:
            return "The learning loop is off."
        head, _, reason = args.strip().partition(" ")
        try:
            proposal_id = int(head.lstrip("#"))
        except ValueError:
            return "Usage: /reject ID [reason]"
        try:
            proposal = await learning.reject(proposal_id, self._decider(ctx), reason.strip())
        except ProposalError as exc:
            return str(exc)
        because = f" Reason kept for later reviews: {reason.strip()}" if reason.strip() else ""
        return f"Rejected #{proposal.id} ({proposal.action} {proposal.skill}).{because}"

    async def new_session(self, ctx: CommandContext) -> str:
        await self.runtime.store.new_session(ctx.session_key, platform=ctx.platform, chat_id=ctx.chat_id,
                                             user_id=ctx.user_id, team=ctx.team)
        return "Started a fresh conversation."
