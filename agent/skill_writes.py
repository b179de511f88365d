"""Checkpoint skill writes: the guarded `skill_manage`, near-duplicate checks and announcements.

`GuardedSkillManage` is `skill_manage` as a review (checkpoint) may use it. It enforces in code
what the prompt asks, in every `auto_skills` mode:

- `off`: no writes; `delete`: never (merging is the curator's job, and it keeps history);
- text that looks like a secret is redacted before it reaches a skill;
- a `create` that nearly duplicates an existing skill (`skills.similar`, whole text) is refused
  and names the skill to patch instead;
- a skill no checkpoint of this library created is protected (`SkillLibrary.is_protected`): a
  review may not edit it or its files; its patches always become proposals an admin approves;
- sizes: SKILL.md at most `[skills] max_skill_chars`, a supporting file at most `MAX_FILE_CHARS`,
  a description at most 1,024 characters;
- a patch that only appends a "seen again" note is refused: rewrite the step instead;
- every write is checked by the skills guard and the size limits on the final text as stored,
  under the skill's lock: `checkpoint_policy` is the one `WritePolicy` for what a review writes,
  checked again when a proposal is recorded and when it is approved, and by the curator.

Each refusal is a `Refusal` (kind and message) in `refused` and a `ToolError` telling the model
what to do instead. `announcement` renders the line posted back to a channel (the learned
text cut to 100 characters).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from agent.redact import Redactor
from agent.tools.registry import Tool, ToolContext, ToolError
from agent.tools.skills import skill_manage
from skills.document import SkillFormatError, parse
from skills.errors import RefusalKind
from skills.history import unified_diff
from skills.library import SkillError, SkillLibrary, SkillRefused, WritePolicy
from skills.paths import PathEscapeError
from skills.similar import SkillDeduplicator, Embed, SkillText
from skills.snapshot import Skill
from skills.validate import MAX_DESCRIPTION
from skills.write_policy import Writer

AutoSkills = Literal["on", "ask", "off"]
Proposer = Callable[[str, str, dict[str, Any], str], Awaitable[int]]
"""(action, skill name, arguments, one-line summary) -> proposal id; raises `SkillRefused` when the
same change is already pending or was rejected."""

MAX_SKILL_CHARS = 20_000
MAX_FILE_CHARS = 20_000       # a supporting file (scripts/, references/...) a review writes
MAX_ANNOUNCEMENT_CHARS = 100
APPENDED_NOTE = re.compile(
    r"(?i)\b(seen again|also seen|observed again|happened again|again on \d|note \(\d{4}|update \(\d{4}|"
    r"additional note|addendum)\b")
PATCH_ADVICE = (" patch: old_text = the whole step or section you improve, new_text = its improved version; "
                "rewrite it in place, never append notes such as 'Seen again'.")


@dataclass(frozen=True)
class Refusal:
    """One write a checkpoint was refused, and why (kept in the learning log)."""

    kind: RefusalKind
    message: str
    skill: str = ""
    action: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.action} {self.skill}: {self.message}".replace("  ", " ")


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
async def near_duplicates(library: SkillLibrary, name: str, text: str,
                          dedup: SkillDeduplicator | None = None, exclude: tuple[str, ...] = ()) -> list[Skill]:
    """The skills of `library` that the skill `name` with SKILL.md `text` nearly duplicates."""
    found = await (dedup or SkillDeduplicator()).duplicates(library, SkillText.from_markdown(text, name), exclude=exclude)
    snapshot = await library.snapshot()
    return [s for s in (snapshot.get(f.name) for f in found) if s is not None]


def duplicate_message(name: str, duplicates: list[Skill]) -> str:
    listing = "; ".join(f"{s.name}: {s.description[:160]}" for s in duplicates[:3])
    target = duplicates[0].name
    return (f"not created: {name!r} is the same procedure as existing skill(s) {listing}. Patch the closest one "
            f"instead: skill_view(name={target!r}) to read it, then skill_manage(action='patch', name={target!r}, "
            "old_text=<the step or section to improve>, new_text=<its improved version>).")


def checkpoint_policy(max_skill_chars: int = MAX_SKILL_CHARS, *, protect: bool = True,
                      writer: Writer = "checkpoint") -> WritePolicy:
    """The write policy of everything a review writes: the guard, protection (off once an admin
    approved the change, or for the curator), SKILL.md and supporting-file sizes."""
    return WritePolicy(guard=True, protect=protect, max_skill_chars=max_skill_chars,
                       max_file_chars=MAX_FILE_CHARS, writer=writer)


# -- the guarded skill_manage ----------------------------------------------------------------------
class GuardedSkillManage(Tool):
    """`skill_manage` as a checkpoint may use it (same name and schema as the agent's tool).

    Reads `ctx.services["skill_dedup"]` (a `SkillDeduplicator`, embeddings included when configured)
    and `ctx.services["max_skill_chars"]` when the gateway provides them.
    """

    def __init__(self, mode: AutoSkills, redactor: Redactor, propose: Proposer | None) -> None:
        inner = skill_manage
        self.__dict__.update(inner.__dict__)
        self.description = inner.description + PATCH_ADVICE
        self.inner = inner
        self.mode = mode
        self.redactor = redactor
        self.propose = propose
        self.changes: list[SkillChange] = []
        self.refused: list[Refusal] = []

    def _refuse(self, kind: RefusalKind, message: str, name: str = "", action: str = "") -> None:
        self.refused.append(Refusal(kind, message, name, action))
        raise ToolError(message)

    async def __call__(self, ctx: ToolContext, arguments: dict[str, Any]) -> Any:
        validated = self.inner.arguments_model.model_validate(arguments)
        args = {k: getattr(validated, k) for k in type(validated).model_fields}
        action, name = str(args["action"]), str(args["name"])
        library = await _library(ctx)
        if not isinstance(library, SkillLibrary):
            raise ToolError("the skill library is not available")
        dedup = ctx.services.get("skill_dedup")
        dedup = dedup if isinstance(dedup, SkillDeduplicator) else SkillDeduplicator()
        limit = int(ctx.services.get("max_skill_chars") or MAX_SKILL_CHARS)
        if self.mode == "off":
            self._refuse("mode", "skill writes are turned off (learning.auto_skills = off); update memory only",
                         name, action)
        if action == "delete":
            self._refuse("mode", "a review never deletes skills; patch the skill instead, or leave it (the curator "
                                 "merges duplicates, keeping history)", name, action)
        for key in ("content", "new_text", "file_content"):
            if args.get(key) and self.redactor.contains_secret(args[key]):
                args[key] = self.redactor.redact(args[key])
        try:
            return await self._write(ctx, library, dedup, limit, action, name, args)
        except SkillRefused as exc:
            self._refuse(exc.kind, str(exc), name, action)
        except (SkillError, PathEscapeError) as exc:
            self._refuse("invalid", str(exc), name, action)
        raise AssertionError("unreachable")

    async def _write(self, ctx: ToolContext, library: SkillLibrary, dedup: SkillDeduplicator, limit: int,
                     action: str, name: str, args: dict[str, Any]) -> Any:
        description = ""
        if action in ("create", "edit"):
            content = args.get("content") or ""
            try:
                document = parse(content).document
            except SkillFormatError as exc:
                raise SkillError(f"invalid SKILL.md in content: {exc}; give the full text with front matter "
                                 "(name, description) and the procedure") from exc
            description = document.description
            if len(description) > MAX_DESCRIPTION:
                raise SkillRefused("size", f"the description is {len(description)} characters; the limit is "
                                           f"{MAX_DESCRIPTION}. Say in one or two sentences what the skill does "
                                           "and when to use it.")
            if len(content) > limit:
                raise SkillRefused("size", f"SKILL.md is {len(content)} characters; the limit is {limit} "
                                           "([skills] max_skill_chars). Keep the procedure short and move long "
                                           "reference material into a supporting file (write_file).")
        if action == "create":
            duplicates = await near_duplicates(library, name, args.get("content") or "", dedup)
            if duplicates:
                raise SkillRefused("duplicate", duplicate_message(name, duplicates))
            protected = False
        else:
            try:
                protected = await library.is_protected(name)
                description = description or (await library.get(name)).description
            except SkillError as exc:
                raise SkillError(f"{exc}. To add a new procedure use action='create'.") from exc
        if action == "patch":
            old, new = args.get("old_text") or "", args.get("new_text") or ""
            if new.startswith(old) and APPENDED_NOTE.search(new[len(old):]):
                raise SkillRefused("invalid", "this patch appends a note instead of improving the procedure. Rewrite "
                                              "the step or section concerned: old_text = that whole step or "
                                              "section, new_text = the corrected version.")
        if protected and action != "patch":
            raise SkillRefused("protected", (
                f"skill {name!r} is protected: no review created it (it is bundled, installed, or a person wrote "
                f"or edited it), so a review may not {action} it. Propose the improvement as a patch "
                "(action='patch', exact old_text): it becomes a proposal an admin approves."))
        if self.mode == "ask" or protected:
            return await self._propose(library, dedup, limit, action, name, args, description, protected)
        policy = checkpoint_policy(limit)
        origin = f"session:{ctx.session_id}" if ctx.session_id else "checkpoint"
        before = await _read_or_none(library, name)
        if action == "create":
            skill = await library.create(name, args.get("content") or "", args.get("category") or "general", origin,
                                         policy)
            result = f"created skill {skill.name!r} in category {skill.category!r}"
        elif action == "patch":
            skill = await library.patch(name, _need(args, "old_text", action), args.get("new_text") or "", origin,
                                        policy)
            result = f"patched skill {name!r} (now version {skill.document.metadata.get('version', '?')})"
        elif action == "edit":
            skill = await library.edit(name, _need(args, "content", action), origin, policy)
            result = f"rewrote skill {name!r} (now version {skill.document.metadata.get('version', '?')})"
        elif action == "write_file":
            result = await library.write_file(name, _need(args, "file_path", action),
                                              _need(args, "file_content", action), origin, policy)
        elif action == "remove_file":
            result = await library.remove_file(name, _need(args, "file_path", action), origin, policy)
        else:
            raise SkillError(f"unknown action {action!r}")
        after = await _read_or_none(library, name)
        self.changes.append(SkillChange(name, action, description, unified_diff(before, after, f"{name}/SKILL.md")
                                        if action in ("create", "patch", "edit")
                                        else f"{action} {args.get('file_path')}"))
        return result

    async def _propose(self, library: SkillLibrary, dedup: SkillDeduplicator, limit: int, action: str, name: str,
                       args: dict[str, Any], description: str, protected: bool) -> str:
        if self.propose is None:
            raise SkillError("proposals cannot be recorded here")
        before, after = await check_proposal(library, dedup, limit, action, name, args)
        kept = {k: v for k, v in args.items() if v is not None and k not in ("action", "name")}
        diff = (unified_diff(before, after, f"{name}/SKILL.md") if after is not None
                else f"{action} {args.get('file_path')}")
        summary = description if action == "create" else (first_added_line(diff) or f"{action} of {name}")
        proposal_id = await self.propose(action, name, kept, summary)
        self.changes.append(SkillChange(name, action, description, diff, proposal_id=proposal_id))
        why = (f"{name!r} is protected (not created by a review), so the patch" if protected and self.mode == "on"
               else "it")
        return (f"recorded as proposal #{proposal_id} ({action} {name}); {why} is written only when an admin "
                "approves it. Continue as if it were accepted.")


async def check_proposal(library: SkillLibrary, dedup: SkillDeduplicator, limit: int, action: str, name: str,
                         args: dict[str, Any], *, protect: bool = False) -> tuple[str | None, str | None]:
    """Everything a write of this proposal would be refused for, checked now (raises SkillRefused/SkillError).

    Runs when a proposal is recorded and again when it is approved, on the final text. Returns
    SKILL.md (before, after) for create, patch and edit; (None, None) for supporting files.
    """
    if action == "create":
        duplicates = await near_duplicates(library, name, str(args.get("content") or ""), dedup)
        if duplicates:
            raise SkillRefused("duplicate", duplicate_message(name, duplicates))
    policy = checkpoint_policy(limit, protect=protect, writer="none")
    if action in ("create", "patch", "edit"):
        before, after = await library.preview(action, name, content=args.get("content"),
                                              old_text=args.get("old_text"), new_text=args.get("new_text"))
        await asyncio.to_thread(library.check, policy, name, before, after)
        return before, after
    if action == "write_file":
        skill_text = await library.read(name)
        path = str(args.get("file_path") or "")
        previous = None
        try:
            previous = await library.read(name, path)
        except SkillError:
            previous = None
        await asyncio.to_thread(library.check, policy, name, skill_text, None,
                                {path: str(args.get("file_content") or "")}, previous)
    return None, None


def first_added_line(diff: str) -> str:
    """The first line a diff adds (front-matter bookkeeping skipped), shortened: what a patch changes."""
    for line in diff.splitlines():
        text = line[1:].strip(" -*#")
        if line.startswith("+") and not line.startswith("+++") and text \
                and not re.match(r"^\s*(version|updated|created|use_count|last_used):", line[1:]):
            return _shorten(text)
    return ""


def _need(args: dict[str, Any], key: str, action: str) -> str:
    value = args.get(key)
    if value is None:
        raise SkillError(f"action {action!r} needs {key}")
    return str(value)


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
    """The line posted back to the channel, with the skill's name usable as a slash command.

    What was learned is cut to 100 characters (with an ellipsis): a model's long `Announce:`
    line is not posted as is.
    """
    change = SkillChange(change.name, change.action, change.description, change.diff,
                         _shorten(change.summary, MAX_ANNOUNCEMENT_CHARS), change.proposal_id)
    if change.proposal_id is not None:
        verb = "create skill" if change.action == "create" else "update"
        return (f"Proposed: {verb} `/{change.name}` — {change.summary.rstrip('.')}. Approve with `/approve "
                f"{change.proposal_id}` (or reject with `/reject {change.proposal_id}`).")
    if change.action == "create":
        return f"Learned: created skill `/{change.name}` — {change.summary}"
    return f"Updated `/{change.name}`: {change.summary}"


def litellm_embedder(model: str, *, api_base: str = "", api_key: str = "", timeout: float = 30.0) -> Embed:
    """An `Embed` callback for `skills.similar` calling `litellm.aembedding` (imported on first use)."""
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
