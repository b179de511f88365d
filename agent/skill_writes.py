"""Checkpoint skill writes: the guarded `skill_manage`, near-duplicate checks and announcements.

`GuardedSkillManage` wraps the agent's `skill_manage` tool for a checkpoint: it enforces in code
what the prompt asks (no near-duplicate creates, no deletes, secrets redacted, proposals in
`ask` mode, nothing in `off` mode). `announcement` renders the line posted back to a channel.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from agent.redact import Redactor
from agent.tools.registry import Tool, ToolContext, ToolError
from agent.tools.skills import skill_manage
from skills.document import SkillFormatError, parse
from skills.history import unified_diff
from skills.dedup import Embed
from skills.library import Skill, SkillError, SkillLibrary
from skills.search import terms

AutoSkills = Literal["on", "ask", "off"]
Proposer = Callable[[str, str, dict[str, Any], str], Awaitable[int]]
"""(action, skill name, arguments, one-line summary) -> proposal id."""

NAME_SIMILARITY = 0.85
TERM_OVERLAP = 0.6


@dataclass
class SkillChange:
    """One skill write made (or proposed) by a checkpoint."""

    name: str
    action: str
    description: str = ""
    diff: str = ""
    summary: str = ""
    proposal_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "description": self.description, "diff": self.diff,
                "summary": self.summary, "proposal": self.proposal_id}


# -- near duplicates -------------------------------------------------------------------------------
def _term_set(text: str) -> set[str]:
    return set(terms(text.replace("-", " ")))


def _overlap(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def is_near_duplicate(name: str, description: str, other: Skill) -> bool:
    """Whether a skill called `name` described by `description` would duplicate `other`."""
    if name == other.name:
        return True
    names_a, names_b = _term_set(name), _term_set(other.name)
    if names_a and names_a == names_b:
        return True
    if difflib.SequenceMatcher(None, name, other.name).ratio() >= NAME_SIMILARITY:
        return True
    desc_a, desc_b = _term_set(description), _term_set(other.description)
    union = desc_a | desc_b
    jaccard = len(desc_a & desc_b) / len(union) if union else 0.0
    # names share words and the descriptions largely agree, or the descriptions are nearly the same
    return jaccard >= 0.5 or (_overlap(names_a, names_b) >= 0.5 and _overlap(desc_a, desc_b) >= TERM_OVERLAP)


async def near_duplicates(library: SkillLibrary, name: str, description: str) -> list[Skill]:
    candidates = [skill for skill, _ in await library.search(f"{name.replace('-', ' ')} {description}", 8)]
    snapshot = await library.snapshot()
    exact = snapshot.get(name)
    if exact is not None and exact not in candidates:
        candidates.insert(0, exact)
    return [s for s in candidates if is_near_duplicate(name, description, s)]


# -- the guarded skill_manage ----------------------------------------------------------------------
class GuardedSkillManage(Tool):
    """`skill_manage` as a checkpoint may use it (same name and schema as the agent's tool)."""

    def __init__(self, mode: AutoSkills, redactor: Redactor, propose: Proposer | None) -> None:
        inner = skill_manage
        self.__dict__.update(inner.__dict__)
        self.inner = inner
        self.mode = mode
        self.redactor = redactor
        self.propose = propose
        self.changes: list[SkillChange] = []
        self.refused: list[str] = []

    def _refuse(self, message: str) -> None:
        self.refused.append(message)
        raise ToolError(message)

    async def __call__(self, ctx: ToolContext, arguments: dict[str, Any]) -> Any:
        validated = self.inner.arguments_model.model_validate(arguments)
        args = {k: getattr(validated, k) for k in type(validated).model_fields}
        action, name = str(args["action"]), str(args["name"])
        library = await _library(ctx)
        if not isinstance(library, SkillLibrary):
            raise ToolError("the skill library is not available")
        if self.mode == "off":
            self._refuse("skill writes are turned off (learning.auto_skills = off); update memory only")
        if action == "delete":
            self._refuse("a checkpoint never deletes skills; patch the skill instead, or leave it")
        for key in ("content", "new_text", "file_content"):
            if args.get(key) and self.redactor.contains_secret(args[key]):
                args[key] = self.redactor.redact(args[key])
        description = ""
        if action in ("create", "edit"):
            try:
                document = parse(args.get("content") or "").document
            except SkillFormatError as exc:
                raise ToolError(f"invalid SKILL.md in content: {exc}") from exc
            description = document.description
        if action == "create":
            duplicates = await near_duplicates(library, name, description)
            if duplicates:
                listing = "; ".join(f"{s.name}: {s.description[:160]}" for s in duplicates[:3])
                self._refuse(
                    f"not created: {name!r} nearly duplicates existing skill(s) {listing}. Patch the closest "
                    f"one instead: skill_view(name={duplicates[0].name!r}) to read it, then "
                    f"skill_manage(action='patch', name={duplicates[0].name!r}, old_text=..., new_text=...).")
        elif not description:
            try:
                description = (await library.get(name)).description
            except SkillError as exc:
                raise ToolError(str(exc)) from exc
        if self.mode == "ask":
            return await self._propose(ctx, library, action, name, args, description)
        before = await _read_or_none(library, name)
        result = await self.inner(ctx, {k: v for k, v in args.items() if v is not None})
        after = await _read_or_none(library, name)
        self.changes.append(SkillChange(name, action, description, unified_diff(before, after, f"{name}/SKILL.md")
                                        if action in ("create", "patch", "edit")
                                        else f"{action} {args.get('file_path')}"))
        return result

    async def _propose(self, ctx: ToolContext, library: SkillLibrary, action: str, name: str,
                       args: dict[str, Any], description: str) -> str:
        if self.propose is None:
            raise ToolError("proposals cannot be recorded here")
        if action == "patch":  # check now, so a proposal is applicable when approved
            text = await _read_or_none(library, name)
            count = (text or "").count(args.get("old_text") or "\x00")
            if count != 1:
                raise ToolError(f"old_text occurs {count} times in {name}/SKILL.md; it must occur exactly once")
        kept = {k: v for k, v in args.items() if v is not None and k not in ("action", "name")}
        summary = description if action == "create" else f"{action} of {name}"
        proposal_id = await self.propose(action, name, kept, summary)
        diff = unified_diff(None, args.get("content"), f"{name}/SKILL.md") if action == "create" else ""
        if action == "patch":
            diff = unified_diff(args.get("old_text"), args.get("new_text"), f"{name}/SKILL.md")
        self.changes.append(SkillChange(name, action, description, diff, proposal_id=proposal_id))
        return (f"recorded as proposal #{proposal_id} ({action} {name}); it is written only when a user "
                "approves it. Continue as if it were accepted.")


async def _library(ctx: ToolContext) -> SkillLibrary | None:
    """The session's team library, resolved the way the skill tools resolve it."""
    libraries = ctx.services.get("skill_libraries")
    if ctx.team and libraries is not None:
        return await libraries.get(ctx.team)
    library = ctx.services.get("skills")
    return library if isinstance(library, SkillLibrary) else None


async def _read_or_none(library: SkillLibrary, name: str) -> str | None:
    try:
        return await library.read(name)
    except SkillError:
        return None


def _shorten(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def announcement(change: SkillChange) -> str:
    """The line posted back to the channel, with the skill's name usable as a slash command."""
    if change.proposal_id is not None:
        verb = "create skill" if change.action == "create" else "update"
        return (f"Proposed: {verb} `/{change.name}` — {change.summary}. Approve with `/approve "
                f"{change.proposal_id}` (or reject with `/reject {change.proposal_id}`).")
    if change.action == "create":
        return f"Learned: created skill `/{change.name}` — {change.summary}"
    return f"Updated `/{change.name}`: {change.summary}"


def litellm_embedder(model: str, *, api_base: str = "", api_key: str = "", timeout: float = 30.0) -> Embed:
    """An `Embed` callback for `skills.dedup` calling `litellm.aembedding` (imported on first use)."""
    async def embed(texts: list[str]) -> list[list[float]]:
        from agent.model_call import import_litellm

        litellm = import_litellm()
        kwargs: dict[str, Any] = {"model": model, "input": texts, "timeout": timeout}
        if api_base:
            kwargs["api_base"] = api_base
        if api_key:
            kwargs["api_key"] = api_key
        response = await litellm.aembedding(**kwargs)
        items = [item if isinstance(item, dict) else dict(item) for item in response.data]
        return [list(item["embedding"]) for item in sorted(items, key=lambda item: int(item.get("index", 0)))]

    return embed
