"""The self-evaluation checkpoint: a separate agent turn that turns recent work into skills and memory.

It sees what it reviews (a whole task from the user's request to the answer, or a mid-task
slice, or a run of conversation turns), failed steps marked as failures, secrets redacted; what
an earlier review of the same task already did; the skills used (full text), the skills most
similar to the work (with the instruction to patch one of them rather than create a near
duplicate), the current skill index, MEMORY.md, and the USER.md of every person who spoke (in a
shared session each user message carries its speaker, and `memory` takes `user=` to say whose
USER.md a preference goes to). It answers four
questions (what was accomplished, what worked and failed, is there a reusable procedure, what is
worth remembering) and acts through `skill_manage` and `memory` (plus `skill_view` and
`skill_search` to look things up), exactly the tools the agent itself uses.

`skill_manage` is wrapped by `GuardedSkillManage`, which enforces in code what the prompt asks:
a `create` whose name or description nearly duplicates an existing skill is refused with an
instruction to patch that skill; checkpoints never delete skills; text that looks like a secret
is redacted before it reaches a skill; with `auto_skills = "ask"` a write is recorded as a
proposal (written only when a user approves); with `"off"` no skill tool is offered at all.
This module knows nothing of the gateway: the caller supplies the model client, the tool
services, a `propose` callback for ask mode, and callbacks that hear of every model call's
tokens and every write as it happens (so a review killed half-way keeps its cost and its
journal). A review stops once it has used `max_tokens`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.events import Event, ModelUsage, ToolFinished, ToolStarted
from agent.loop import Agent, Conversation
from agent.memory import Change
from agent.model_call import purpose
from agent.redact import Redactor
from agent.settings import AgentConfig
from agent.skill_writes import (
    AutoSkills,
    GuardedSkillManage,
    Proposer,
    SkillChange,
    _shorten,
    announcement,
    near_duplicates,
)
from agent.speakers import Speaker
from agent.tools.memory_tool import memory as memory_tool
from agent.tools.registry import Tool, ToolContext, ToolError, ToolRegistry, tool
from agent.tools.skills import skill_search, skill_view
from skills.history import unified_diff
from skills.snapshot import Skill

log = logging.getLogger(__name__)

MAX_TRANSCRIPT_CHARS = 16_000
MAX_TOOL_RESULT_CHARS = 400        # a successful step: its gist
MAX_FAILED_RESULT_CHARS = 1_000    # a failed step: enough to see why
MAX_SKILL_BODY_CHARS = 20_000
SIMILAR_LIMIT = 5
# A correction or a stated preference: "no, always X", "don't ...", "from now on, Y", "I prefer ...".
CORRECTION = re.compile(
    r"(?:^|[.!?;\n]\s*|,\s*)(?:no|nope|nah|wrong|actually|not like that|that'?s (?:wrong|not right))\b"
    r"|\b(?:from now on|going forward|in (?:the )?future|next time|from today|every time|whenever)\b"
    r"|\b(?:always|never)\b"
    r"|(?:^|[.!?;\n]\s*|,\s*)(?:please\s+)?(?:don'?t|do not|stop|quit)\s+\w+"
    r"|\b(?:i|we)\s+(?:(?:much |really )?prefer|(?:would|'d) rather|(?:don'?t|do not) (?:like|want))\b"
    r"|\binstead(?: of)?\b|\brather than\b|\bshould(?:n'?t| not)?\s+(?:be|use|have|do|run|restart|call)\b"
    r"|\bplease (?:use|call|reply|answer|write|keep)\b|\bremember that\b",
    re.IGNORECASE)
FAILED_RESULT = re.compile(r"^(?:Error\b|exit code (?!0\b)-?\d+|Traceback|\[interrupted)", re.IGNORECASE)

CHECKPOINT_SYSTEM = """You are the learning review of Hermes, an agent that gets better at its team's \
work over time. You review work that just happened (you are not talking to the user) and decide what \
is worth keeping. Answer four questions, acting on them with your tools:

1. What was accomplished?
2. What worked, and what failed or needed retries? Steps marked FAILED failed.
3. Is there a reusable procedure worth a skill? A skill is worth it when the task is likely to recur \
and took several steps, trial and error, or knowledge that is not obvious. If a skill was used and a \
step was missing or wrong, PATCH that skill (skill_manage action=patch, exact old_text). If one of the \
"similar existing skills" already covers the task, patch or extend it: never create a near duplicate. \
Only create a new skill for a genuinely new procedure: full SKILL.md text with front matter (name = \
lowercase-hyphenated, description = what it does and when to use it), then sections When to use, \
Procedure (numbered steps with exact commands), Pitfalls, Verification.
4. Are there facts or preferences worth remembering? Environment facts, conventions and team-wide \
corrections go to memory target=memory; what you learned about a person (preferences, role, how they \
like answers) goes to target=user, into THAT person's USER.md (in a shared conversation pass user=ID \
of the person who said it). Entries are one short line. A correction ("no, always do X", "don't ...", \
"from now on ...", "use Y instead") MUST be written down: into the skill concerned if it is about a \
procedure, otherwise into memory. If a memory file is full, consolidate (replace/remove) first.

Never write secrets (keys, tokens, passwords) anywhere. Never repeat a write listed as already done. \
Do nothing when nothing is worth keeping. When done, reply with a short report:
Accomplished: ...
Worked/failed: ...
Skill: created NAME / patched NAME / none (why)
Remember: ...
and, for every skill you created or patched, one line `Announce: NAME: <what was learned, under 100 \
characters>`."""

SCOPES = {
    "end_of_turn": "a whole task, from the user's request to the answer.",
    "correction": "a turn in which the user corrected the agent or stated a preference: write it down.",
    "mid_task": "the first steps of a task that is still running; the answer is not known yet. Keep only what "
                "is already certain (a failure and its fix, a correction); a review of the whole task follows.",
    "user_turns": "the conversation turns since the last review.",
    "idle": "the conversation turns since the last review (the conversation has gone quiet).",
}


@dataclass
class CheckpointInput:
    """What the checkpoint model sees."""

    transcript: list[dict[str, Any]]
    skill_index: str = ""
    similar: list[Skill] = field(default_factory=list)
    used_skills: dict[str, str] = field(default_factory=dict)
    memory_text: str = ""
    user_text: str = ""
    memory_limits: tuple[int, int] = (2_200, 1_400)
    reason: str = "end_of_turn"
    earlier: str = ""                                   # what an earlier review of the same task did
    already_done: list[str] = field(default_factory=list)  # writes of an interrupted run of this review
    speakers: dict[str, tuple[Speaker, str]] = field(default_factory=dict)  # user id -> (speaker, USER.md)
    proposals: str = ""
    """The team's pending and rejected proposals (gateway/learning/proposals.py render_remembered)."""


@dataclass(frozen=True)
class Refusal:
    """A write the review tried that was refused or failed, and why."""

    kind: str
    tool: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "tool": self.tool, "message": self.message}


@dataclass
class CheckpointOutcome:
    decisions: str
    skills: list[SkillChange]
    memory: list[Change]
    refused: list[Refusal]
    prompt_tokens: int
    completion_tokens: int
    status: str

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# -- the prompt ------------------------------------------------------------------------------------
def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def _shorten_middle(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit * 2 // 3] + " [...] " + text[-limit // 3:]


def render_transcript(messages: list[dict[str, Any]], redactor: Redactor,
                      max_chars: int = MAX_TRANSCRIPT_CHARS) -> str:
    """The slice as plain text: secrets redacted, failed steps marked FAILED (and retries RETRY),
    successful tool output cut to its gist, the middle of a long slice cut."""
    names: dict[str, str] = {}
    failed_before: set[str] = set()
    lines: list[str] = []
    for message in messages:
        role = str(message.get("role", ""))
        text = _text_of(message.get("content"))
        if role == "tool":
            name = names.get(str(message.get("tool_call_id")), "tool")
            if FAILED_RESULT.match(text.lstrip()):
                failed_before.add(name)
                lines.append(f"  [{name} FAILED] {_shorten_middle(text, MAX_FAILED_RESULT_CHARS)}")
            else:
                lines.append(f"  [{name} ok] {_shorten_middle(text, MAX_TOOL_RESULT_CHARS)}")
            continue
        calls = message.get("tool_calls") or []
        rendered = []
        for call in calls:
            function = call.get("function", {})
            name = str(function.get("name", ""))
            names[str(call.get("id"))] = name
            retry = " RETRY" if name in failed_before else ""
            rendered.append(f"[calls{retry} {name}({str(function.get('arguments', ''))[:300]})]")
        label = {"user": "USER", "assistant": "ASSISTANT"}.get(role, role.upper())
        lines.append(f"{label}: {text} {' '.join(rendered)}".rstrip())
    joined = redactor.redact("\n".join(lines))
    if len(joined) > max_chars:
        joined = joined[: max_chars // 3] + "\n[... middle of the transcript omitted ...]\n" + joined[-2 * max_chars // 3:]
    return joined


# A skill command (`/code-review ...`) reaches the model as "Follow the skill NAME below." and the
# skill's body in <skill name="NAME"> tags, then "Request: ...": only the request is the user's words.
INVOKED_SKILL = re.compile(r'Follow the skill [a-z0-9-]+ below\.\s*|<skill name="[a-z0-9-]+">.*?</skill>\s*', re.S)


def users_own_words(text: str) -> str:
    """A user message without the text of any skill it invoked (a skill's "always" and "instead"
    are not the user correcting the agent)."""
    return INVOKED_SKILL.sub("", text or "").strip()


def is_correction(text: str) -> bool:
    """Whether a user message reads as a correction or a stated preference (in the user's own words)."""
    return bool(CORRECTION.search(users_own_words(text)))


def possible_corrections(messages: list[dict[str, Any]], redactor: Redactor) -> list[str]:
    """User messages that look like corrections or stated preferences (the checkpoint must act on them)."""
    found = []
    for message in messages:
        if message.get("role") != "user":
            continue
        text = users_own_words(_text_of(message.get("content")))
        if text and is_correction(text):
            found.append(redactor.redact(text[:400]))
    return found


def build_request(data: CheckpointInput, redactor: Redactor, mode: AutoSkills) -> str:
    scope = SCOPES.get(data.reason, SCOPES["end_of_turn"])
    sections = [f"## What you review\n{scope}", "## Transcript", render_transcript(data.transcript, redactor)]
    corrections = possible_corrections(data.transcript, redactor)
    if corrections:
        sections += ["## Possible corrections or preferences stated by the user (write each one down)",
                     "\n".join(f"- {c}" for c in corrections)]
    if data.earlier:
        sections += ["## An earlier review of this same task already did (do not repeat it)", data.earlier]
    if data.already_done:
        sections += ["## Already written by an interrupted run of this review (do not write these again)",
                     "\n".join(f"- {w}" for w in data.already_done)]
    for name, body in data.used_skills.items():
        sections += [f"## Skill used: {name} (current SKILL.md)", redactor.redact(body[:MAX_SKILL_BODY_CHARS])]
    if data.similar:
        sections += [("## Similar existing skills (if one covers this procedure, improve it with a patch that "
                      "rewrites the step concerned; a create that duplicates one is refused)"),
                     "\n".join(f"- {s.name}: {s.description}" for s in data.similar)]
    if data.proposals:
        sections += ["## Proposals of this team (pending or rejected): do not propose any of these again",
                     data.proposals]
    sections += ["## Current skill index", data.skill_index.strip() or "(the library is empty)"]
    memory_limit, user_limit = data.memory_limits
    sections += [f"## MEMORY.md ({len(data.memory_text)}/{memory_limit} chars)", data.memory_text.strip() or "(empty)"]
    if data.speakers:
        sections.append("## The people in this conversation (memory target=user needs user=ID)")
        for user_id, (speaker, text) in data.speakers.items():
            sections += [f"### USER.md of {speaker.name}, user={user_id} ({len(text)}/{user_limit} chars)",
                         text.strip() or "(empty)"]
    else:
        sections += [f"## USER.md ({len(data.user_text)}/{user_limit} chars)", data.user_text.strip() or "(empty)"]
    if mode == "off":
        sections.append("Skill writes are turned off here: do not try to create or patch skills; memory only.")
    elif mode == "ask":
        sections.append("Skill writes become proposals a user approves later; make them as you would otherwise.")
    sections.append("Now answer the four questions, acting with your tools, then write the report.")
    return "\n\n".join(sections)


ANNOUNCE = re.compile(r"^\s*Announce:\s*`?([a-z0-9-]+)`?\s*:\s*(.+?)\s*$", re.MULTILINE)


def announced(decisions: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in ANNOUNCE.finditer(decisions or "")}


# -- memory for the people of a shared conversation ---------------------------------------------------
def speaker_memory_tool(speakers: dict[str, Speaker]) -> Tool:
    """`memory` with a `user` argument: whose USER.md a target=user write goes to (a speaker of the slice)."""
    listing = ", ".join(f"{uid} ({s.name})" for uid, s in speakers.items())

    @tool(name="memory", description=memory_tool.description + f" In this shared conversation, target=user "
          f"needs user=ID of the person the entry is about: one of {listing}.")
    async def memory(ctx: ToolContext, action: Literal["add", "replace", "remove"],
                     target: Literal["memory", "user"] = "memory", text: str = "", old_text: str = "",
                     new_text: str = "", user: str = "") -> str:
        """(described above)"""
        arguments = {"action": action, "target": target, "text": text, "old_text": old_text, "new_text": new_text}
        if target == "user":
            if not user and len(speakers) == 1:
                user = next(iter(speakers))
            if user not in speakers:
                raise ToolError(f"say whose USER.md this is: user must be one of {listing}"
                                + (f" (not {user!r})" if user else ""))
            ctx = dataclasses.replace(ctx, user_id=user, platform=speakers[user].platform)
        return str(await memory_tool(ctx, arguments))

    return memory


# -- running ---------------------------------------------------------------------------------------
UsageCallback = Callable[[int, int], Awaitable[None]]
WriteCallback = Callable[[dict[str, Any]], Awaitable[None]]


def _refusal_kind(tool_name: str, text: str) -> str:
    lowered = text.lower()
    if "there is no tool named" in lowered:
        return "unknown tool"
    if "invalid arguments" in lowered or "not a json object" in lowered:
        return "invalid arguments"
    if "secret" in lowered:
        return "secret"
    if "too large" in lowered or "too long" in lowered or "is full" in lowered or "characters" in lowered:
        return "size"
    if "already remembered" in lowered or "duplicate" in lowered:
        return "duplicate"
    if "invalid skill.md" in lowered or "front matter" in lowered:
        return "invalid skill"
    return "refused" if tool_name in ("skill_manage", "memory") else "failed"


class Checkpointer:
    """Runs checkpoints with one model client (the checkpoint model) and the agent loop's settings."""

    def __init__(self, llm: Any, settings: AgentConfig, redactor: Redactor, *, max_iterations: int = 10) -> None:
        self.llm = llm
        self.settings = settings
        self.redactor = redactor
        self.max_iterations = max_iterations

    async def run(self, data: CheckpointInput, ctx: ToolContext, *, mode: AutoSkills,
                  propose: Proposer | None = None, on_usage: UsageCallback | None = None,
                  on_write: WriteCallback | None = None, max_tokens: int = 0) -> CheckpointOutcome:
        guarded = GuardedSkillManage(mode, self.redactor, propose)
        speakers = {uid: speaker for uid, (speaker, _text) in data.speakers.items()}
        registry = ToolRegistry([speaker_memory_tool(speakers) if speakers else memory_tool, skill_view,
                                 skill_search])
        if mode != "off":
            registry.register(guarded)
        memory_changes: list[Change] = []
        refusals: list[Refusal] = []
        previous_listener = ctx.services.get("memory_listener")
        totals = {"prompt": 0, "completion": 0, "skills_seen": 0}
        interrupt = asyncio.Event()
        calls: dict[str, str] = {}

        async def on_memory(session_id: str, change: Change) -> None:
            memory_changes.append(change)
            if on_write is not None:
                await on_write({"kind": "memory", "target": change.target, "action": change.action,
                                "file": change.file, "diff": unified_diff(change.before, change.after, "memory")})
            if previous_listener is not None:
                await previous_listener(session_id, change)

        async def on_event(event: Event) -> None:
            if isinstance(event, ModelUsage):
                totals["prompt"] += event.prompt_tokens
                totals["completion"] += event.completion_tokens
                if on_usage is not None:
                    await on_usage(event.prompt_tokens, event.completion_tokens)
                if max_tokens and totals["prompt"] + totals["completion"] >= max_tokens:
                    interrupt.set()
            elif isinstance(event, ToolStarted):
                calls[event.call_id] = event.name
            elif isinstance(event, ToolFinished):
                if not event.ok:
                    message = self.redactor.redact(event.result.removeprefix("Error: "))[:600]
                    refusals.append(Refusal(_guard_kind(guarded, message) or _refusal_kind(event.name, event.result),
                                            event.name, message))
                if len(guarded.changes) > totals["skills_seen"]:
                    for change in guarded.changes[totals["skills_seen"]:]:
                        if on_write is not None:
                            await on_write({"kind": "skill", **change.as_dict()})
                    totals["skills_seen"] = len(guarded.changes)

        services = {**ctx.services, "memory_listener": on_memory}
        run_ctx = dataclasses.replace(ctx, services=services, depth=ctx.depth + 1)
        agent = Agent(self.llm, registry, self.settings)
        conversation = Conversation(system=CHECKPOINT_SYSTEM)
        with purpose("checkpoint"):
            result = await agent.run_turn(conversation, build_request(data, self.redactor, mode), run_ctx,
                                          on_event=on_event, interrupt=interrupt, stream=False,
                                          max_iterations=self.max_iterations)
        status = result.status
        if interrupt.is_set():
            status = "capped"
            refusals.append(Refusal("budget", "review", f"stopped after {totals['prompt'] + totals['completion']} "
                                    f"tokens: one review may use {max_tokens} (learning.review_max_tokens)"))
        decisions = self.redactor.redact(result.text)
        summaries = announced(decisions)
        changes = [c for c in guarded.changes if c.proposal_id is not None or c.diff.strip()
                   or c.action not in ("create", "patch", "edit")]  # a write that changed nothing is no change
        for change in changes:
            change.summary = summaries.get(change.name) or default_summary(change)
        return CheckpointOutcome(decisions, changes, memory_changes, refusals,
                                 totals["prompt"], totals["completion"], status)


def _guard_kind(guarded: GuardedSkillManage, message: str) -> str:
    """The kind the skill-write guard gave a refusal, when this message is one of its refusals."""
    for item in guarded.refused:
        text = str(getattr(item, "message", item))
        if text and (text in message or message in text):
            return str(getattr(item, "kind", "refused"))
    return ""


def default_summary(change: SkillChange) -> str:
    """A one-line summary when the model gave none: the description, or the first line a patch added."""
    if change.action == "patch":
        added = [line[1:].strip(" -*#") for line in change.diff.splitlines()
                 if line.startswith("+") and not line.startswith("+++") and line[1:].strip(" -*#")
                 and not re.match(r"^\s*(version|updated|use_count|last_used):", line[1:])]
        if added:
            return _shorten(added[0])
    return _shorten(change.description.split(". ")[0]) if change.description else change.action


def json_safe(changes: list[Change]) -> list[dict[str, Any]]:
    """Memory changes for the log: the diff taken from the file before and after, not the whole file."""
    return [{"target": c.target, "action": c.action, "file": c.file,
             "diff": unified_diff(c.before, c.after, c.file.rsplit("/", 1)[-1])} for c in changes]


__all__ = [
    "CheckpointInput",
    "CheckpointOutcome",
    "Checkpointer",
    "GuardedSkillManage",
    "Refusal",
    "SkillChange",
    "announcement",
    "is_correction",
    "users_own_words",
    "json_safe",
    "near_duplicates",
    "render_transcript",
    "speaker_memory_tool",
]
