"""The `memory` tool: add, replace or remove short dated entries in MEMORY.md or USER.md.

Services it uses (put there by `gateway/learning/loop.py`):
- `ctx.services["memory"]`: an `agent.memory.MemoryStore`;
- the session's team, platform and user come from the `ToolContext` (`ctx.team`, `ctx.platform`,
  `ctx.user_id`); `ctx.services["memory_listener"]`, when present, hears of every change;
- `ctx.services["memory_proposer"]`, when present (a review with `[learning] auto_memory = "ask"`),
  records the change as a proposal instead of writing it.

Changes are visible at once through this tool and reach the system prompt in the next session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from agent.memory import Change, MemoryOpError, MemoryStore, Scope
from agent.tools.registry import ToolContext, ToolError, tool
from skills.paths import PathEscapeError

ChangeListener = Callable[[str, Change], Awaitable[None]]


def _store(ctx: ToolContext) -> MemoryStore:
    store = ctx.services.get("memory")
    if not isinstance(store, MemoryStore):
        raise ToolError("memory is not available in this session")
    return store


def scope_of(ctx: ToolContext) -> Scope:
    """Whose memory a tool call touches: the session's team library and platform identity."""
    return Scope(team=ctx.team, platform=ctx.platform, user_id=ctx.user_id)


@tool
async def memory(ctx: ToolContext, action: Literal["add", "replace", "remove"],
                 target: Literal["memory", "user"] = "memory", text: str = "", old_text: str = "",
                 new_text: str = "") -> str:
    """Keep durable notes across sessions: facts about the environment, conventions, corrections
    (target memory, shared with the team) or what you know about this user: preferences, role,
    how they like answers (target user). Entries are short single lines; the files are bounded,
    so when one is full merge or remove entries first. Never store secrets.

    Args:
        action: add (a new entry from `text`) | replace (the entry containing `old_text` becomes `new_text`) | remove (the entry containing `old_text`).
        target: memory (MEMORY.md, the team's notes) or user (USER.md, this user's profile).
        text: for add: the entry, one short line.
        old_text: for replace and remove: a piece of the entry's text that occurs in exactly one entry.
        new_text: for replace: the entry's new text.
    """
    proposer = ctx.services.get("memory_proposer")
    if proposer is not None:
        return str(await proposer(ctx, action, target, text, old_text, new_text))
    store = _store(ctx)
    scope = scope_of(ctx)
    try:
        if action == "add":
            change = await store.add(target, scope, text)
        elif action == "replace":
            change = await store.replace(target, scope, old_text, new_text or text)
        elif action == "remove":
            change = await store.remove(target, scope, old_text)
        else:  # pragma: no cover - the schema allows only the three
            raise ToolError(f"unknown action {action!r}")
    except (MemoryOpError, PathEscapeError) as exc:
        raise ToolError(str(exc)) from exc
    listener: ChangeListener | None = ctx.services.get("memory_listener")
    if listener is not None:
        await listener(ctx.session_id, change)
    limit = store.limit_for(target)
    file_name = "MEMORY.md" if target == "memory" else "USER.md"
    used = len(change.after or "")
    return f"{action} done in {file_name} ({used}/{limit} characters used)."
