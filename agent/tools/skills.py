"""`skill_manage`, `skill_view`, `skill_search`: the agent's hands on its skill library.

The library is `ctx.services["skills"]` (a `skills.library.SkillLibrary`, put there by the
gateway's wiring). Refusals and invalid results come back to the model as `ToolError` text.
Every write is scanned by the skills guard under the skill's lock, on the final text as stored
(`WritePolicy(guard=True)`), and counts as a person's: the skill becomes protected from reviews.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from agent.tools.registry import Tool, ToolContext, ToolError, tool
from skills.library import SkillError, SkillLibrary, WritePolicy
from skills.paths import PathEscapeError
from skills.snapshot import Skill

MAX_VIEW_CHARS = 40_000
SEARCH_LIMIT = 8
AGENT_POLICY = WritePolicy(guard=True, writer="person")

Action = Literal["create", "patch", "edit", "delete", "write_file", "remove_file"]


async def _library(ctx: ToolContext) -> SkillLibrary:
    """The library of the session's team (`services["skill_libraries"]`), else the default one."""
    libraries = ctx.services.get("skill_libraries")
    if ctx.team and libraries is not None:
        library = await libraries.get(ctx.team)
    else:
        library = ctx.services.get("skills")
    if not isinstance(library, SkillLibrary):
        raise ToolError("the skill library is not available in this session")
    return library


def _need(value: str | None, what: str, action: str) -> str:
    if value is None:
        raise ToolError(f"action {action!r} needs {what}")
    return value


@tool
async def skill_manage(ctx: ToolContext, action: Action, name: str, category: str | None = None,
                       content: str | None = None, old_text: str | None = None, new_text: str | None = None,
                       file_path: str | None = None, file_content: str | None = None) -> str:
    """Create or improve a skill in your library (a SKILL.md procedure you can reuse later).

    create: full SKILL.md text in `content` (front matter with name and description, then When to
    use / Procedure / Pitfalls / Verification). patch: replace `old_text` (must occur exactly once)
    with `new_text`. edit: full rewrite with `content`. delete: remove the skill. write_file /
    remove_file: a supporting file such as scripts/x.py or references/notes.md.

    Args:
        action: create | patch | edit | delete | write_file | remove_file.
        name: the skill name: lowercase letters, digits and hyphens, equal to the front matter name.
        category: for create: a lowercase folder such as devops or research (default general).
        content: for create and edit: the complete SKILL.md text.
        old_text: for patch: the exact passage to replace.
        new_text: for patch: the replacement text.
        file_path: for write_file and remove_file: path inside the skill's folder.
        file_content: for write_file: the file's text.
    """
    library = await _library(ctx)
    origin = f"session:{ctx.session_id}" if ctx.session_id else ""
    try:
        if action == "create":
            skill = await library.create(name, _need(content, "content", action), category or "general", origin,
                                         AGENT_POLICY)
            return f"created skill {skill.name!r} in category {skill.category!r}"
        if action == "patch":
            skill = await library.patch(name, _need(old_text, "old_text", action), new_text or "", origin, AGENT_POLICY)
            return f"patched skill {name!r} (now version {skill.document.metadata.get('version', '?')})"
        if action == "edit":
            skill = await library.edit(name, _need(content, "content", action), origin, AGENT_POLICY)
            return f"rewrote skill {name!r} (now version {skill.document.metadata.get('version', '?')})"
        if action == "delete":
            return await library.delete(name, origin, AGENT_POLICY)
        if action == "write_file":
            return await library.write_file(name, _need(file_path, "file_path", action),
                                            _need(file_content, "file_content", action), origin, AGENT_POLICY)
        if action == "remove_file":
            return await library.remove_file(name, _need(file_path, "file_path", action), origin, AGENT_POLICY)
    except (SkillError, PathEscapeError) as exc:
        raise ToolError(str(exc)) from exc
    raise ToolError(f"unknown action {action!r}")


@tool
async def skill_view(ctx: ToolContext, name: str, file: str | None = None) -> str:
    """Load a skill from your library: its SKILL.md instructions, or one of its supporting files.

    Args:
        name: the skill's name, as listed in the skills index or by skill_search.
        file: optional path of a supporting file inside the skill (e.g. references/api.md).
    """
    library = await _library(ctx)
    try:
        skill = await library.get(name)
        text = await library.read(name, file)
    except (SkillError, PathEscapeError) as exc:
        raise ToolError(str(exc)) from exc
    if not file:
        await library.record_use(name)
        files = await _files(skill)
        listing = f"\nSupporting files (load with file=...): {', '.join(files)}" if files else ""
        text = f"Skill {skill.name} (category {skill.category or '-'}){listing}\n\n{text}"
    if len(text) > MAX_VIEW_CHARS:
        text = text[:MAX_VIEW_CHARS] + "\n[... truncated]"
    return text


async def _files(skill: Skill) -> list[str]:
    return await asyncio.to_thread(skill.files)


@tool
async def skill_search(ctx: ToolContext, query: str) -> str:
    """Find skills in your library relevant to a task, best first.

    Args:
        query: a few words describing the task.
    """
    library = await _library(ctx)
    hits = await library.search(query, SEARCH_LIMIT)
    if not hits:
        count = len((await library.snapshot()).skills)
        return f"no skill matches {query!r}; there {'is 1 skill' if count == 1 else f'are {count} skills'} in all"
    return "\n".join(f"- {skill.name} ({skill.category or '-'}): {skill.description}" for skill, _ in hits)


def skill_tools() -> list[Tool]:
    """The three skill tools, for registering in a `ToolRegistry`."""
    return [skill_manage, skill_view, skill_search]
