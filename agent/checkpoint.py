"""The self-evaluation checkpoint: a separate agent turn that turns recent work into skills and memory.

It sees the transcript since the last checkpoint (secrets redacted), the current skill index,
the skills most similar to the work (with the instruction to patch one of them rather than
create a near duplicate), the bodies of the skills used, and both memory files. It answers four
questions (what was accomplished, what worked and failed, is there a reusable procedure, what is
worth remembering) and acts through `skill_manage` and `memory` (plus `skill_view` and
`skill_search` to look things up), exactly the tools the agent itself uses.

`skill_manage` is wrapped by `GuardedSkillManage`, which enforces in code what the prompt asks:
a `create` whose name or description nearly duplicates an existing skill is refused with an
instruction to patch that skill; checkpoints never delete skills; text that looks like a secret
is redacted before it reaches a skill; with `auto_skills = "ask"` a write is recorded as a
proposal (written only when a user approves); with `"off"` no skill tool is offered at all.
This module knows nothing of the gateway: the caller supplies the model client, the tool
services, and a `propose` callback for ask mode.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from agent.loop import Agent, Conversation
from agent.memory import Change
from agent.redact import Redactor
from agent.settings import AgentConfig
from agent.skill_writes import (AutoSkills, GuardedSkillManage, Proposer, Refusal, SkillChange, _shorten,
                                announcement, near_duplicates)
from agent.tools.memory_tool import memory as memory_tool
from agent.tools.registry import ToolContext, ToolRegistry
from agent.tools.skills import skill_search, skill_view
from skills.history import unified_diff
from skills.library import Skill

log = logging.getLogger(__name__)

MAX_TRANSCRIPT_CHARS = 24_000
MAX_TOOL_RESULT_CHARS = 1_200
MAX_SKILL_BODY_CHARS = 6_000
SIMILAR_LIMIT = 5
CORRECTION = re.compile(
    r"\b(no|nope|don'?t|do not|never|always|instead|actually|wrong|should(?:n'?t)?|must(?:n'?t)?|"
    r"stop|prefer|please use|not like that)\b", re.IGNORECASE)

CHECKPOINT_SYSTEM = """You are the learning checkpoint of Hermes, an agent that gets better at its team's \
work over time. You review a slice of a conversation that just happened (you are not talking to the \
user) and decide what is worth keeping. Answer four questions, acting on them with your tools:

1. What was accomplished?
2. What worked, and what failed or needed retries?
3. Is there a reusable procedure worth a skill? A skill is worth it when the task is likely to recur \
and took several steps, trial and error, or knowledge that is not obvious. If a skill was used and a \
step was missing or wrong, PATCH that skill (skill_manage action=patch, exact old_text). If one of the \
"similar existing skills" already covers the task, patch or extend it: never create a near duplicate. \
Only create a new skill for a genuinely new procedure: full SKILL.md text with front matter (name = \
lowercase-hyphenated, description = what it does and when to use it), then sections When to use, \
Procedure (numbered steps with exact commands), Pitfalls, Verification.
4. Are there facts or preferences worth remembering? Environment facts, conventions and team-wide \
corrections go to memory target=memory; what you learned about this user (preferences, role, how they \
like answers) goes to target=user. Entries are one short line. A user's correction ("no, always do X", \
"don't ...", "use Y instead") MUST be written down: into the skill concerned if it is about a \
procedure, otherwise into memory. If a memory file is full, consolidate (replace/remove) first.

Never write secrets (keys, tokens, passwords) anywhere. Do nothing when nothing is worth keeping. When \
done, reply with a short report:
Accomplished: ...
Worked/failed: ...
Skill: created NAME / patched NAME / none (why)
Remember: ...
and, for every skill you created or patched, one line `Announce: NAME: <what was learned, under 100 \
characters>`."""


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
    proposals: str = ""
    """The team's pending and rejected proposals (gateway/proposals.py render_remembered)."""


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
def render_transcript(messages: list[dict[str, Any]], redactor: Redactor,
                      max_chars: int = MAX_TRANSCRIPT_CHARS) -> str:
    """The slice as plain text, secrets redacted, long tool output shortened, the middle cut if needed."""
    names: dict[str, str] = {}
    lines: list[str] = []
    for message in messages:
        role = str(message.get("role", ""))
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        text = str(content or "")
        if role == "tool":
            name = names.get(str(message.get("tool_call_id")), "tool")
            if len(text) > MAX_TOOL_RESULT_CHARS:
                text = text[: MAX_TOOL_RESULT_CHARS * 2 // 3] + " [...] " + text[-MAX_TOOL_RESULT_CHARS // 3:]
            lines.append(f"[{name} result] {text}")
            continue
        calls = message.get("tool_calls") or []
        for call in calls:
            function = call.get("function", {})
            names[str(call.get("id"))] = str(function.get("name", ""))
        rendered_calls = " ".join(f"[calls {c['function']['name']}({str(c['function'].get('arguments', ''))[:400]})]"
                                  for c in calls)
        lines.append(f"{role.upper()}: {text} {rendered_calls}".rstrip())
    joined = redactor.redact("\n".join(lines))
    if len(joined) > max_chars:
        joined = joined[: max_chars // 3] + "\n[... middle of the transcript omitted ...]\n" + joined[-2 * max_chars // 3:]
    return joined


def possible_corrections(messages: list[dict[str, Any]], redactor: Redactor) -> list[str]:
    """User messages that look like corrections or stated preferences (the checkpoint must act on them)."""
    found = []
    for message in messages:
        if message.get("role") != "user" or not isinstance(message.get("content"), str):
            continue
        text = message["content"].strip()
        if CORRECTION.search(text):
            found.append(redactor.redact(text[:400]))
    return found


def build_request(data: CheckpointInput, redactor: Redactor, mode: AutoSkills) -> str:
    sections = ["## Transcript since the last checkpoint", render_transcript(data.transcript, redactor)]
    corrections = possible_corrections(data.transcript, redactor)
    if corrections:
        sections += ["## Possible corrections or preferences stated by the user (write each one down)",
                     "\n".join(f"- {c}" for c in corrections)]
    sections += ["## Current skill index", data.skill_index.strip() or "(the library is empty)"]
    if data.similar:
        sections += [("## Similar existing skills (if one covers this procedure, improve it with a patch that "
                      "rewrites the step concerned; a create that duplicates one is refused)"),
                     "\n".join(f"- {s.name}: {s.description}" for s in data.similar)]
    if data.proposals:
        sections += ["## Proposals of this team (pending or rejected): do not propose any of these again",
                     data.proposals]
    for name, body in data.used_skills.items():
        sections += [f"## Skill used in this slice: {name} (current SKILL.md)",
                     redactor.redact(body[:MAX_SKILL_BODY_CHARS])]
    memory_limit, user_limit = data.memory_limits
    sections += [f"## MEMORY.md ({len(data.memory_text)}/{memory_limit} chars)", data.memory_text.strip() or "(empty)",
                 f"## USER.md ({len(data.user_text)}/{user_limit} chars)", data.user_text.strip() or "(empty)"]
    if mode == "off":
        sections.append("Skill writes are turned off here: do not try to create or patch skills; memory only.")
    elif mode == "ask":
        sections.append("Skill writes become proposals a user approves later; make them as you would otherwise.")
    sections.append("Now answer the four questions, acting with your tools, then write the report.")
    return "\n\n".join(sections)


ANNOUNCE = re.compile(r"^\s*Announce:\s*`?([a-z0-9-]+)`?\s*:\s*(.+?)\s*$", re.MULTILINE)


def announced(decisions: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in ANNOUNCE.finditer(decisions or "")}


# -- running ---------------------------------------------------------------------------------------
class Checkpointer:
    """Runs checkpoints with one model client (the checkpoint model) and the agent loop's settings."""

    def __init__(self, llm: Any, settings: AgentConfig, redactor: Redactor, *, max_iterations: int = 10) -> None:
        self.llm = llm
        self.settings = settings
        self.redactor = redactor
        self.max_iterations = max_iterations

    async def run(self, data: CheckpointInput, ctx: ToolContext, *, mode: AutoSkills,
                  propose: Proposer | None = None) -> CheckpointOutcome:
        guarded = GuardedSkillManage(mode, self.redactor, propose)
        registry = ToolRegistry([memory_tool, skill_view, skill_search])
        if mode != "off":
            registry.register(guarded)
        memory_changes: list[Change] = []
        previous_listener = ctx.services.get("memory_listener")

        async def on_memory(session_id: str, change: Change) -> None:
            memory_changes.append(change)
            if previous_listener is not None:
                await previous_listener(session_id, change)

        services = {**ctx.services, "memory_listener": on_memory}
        run_ctx = dataclasses.replace(ctx, services=services, depth=ctx.depth + 1)
        agent = Agent(self.llm, registry, self.settings)
        conversation = Conversation(system=CHECKPOINT_SYSTEM)
        result = await agent.run_turn(conversation, build_request(data, self.redactor, mode), run_ctx,
                                      stream=False, max_iterations=self.max_iterations)
        decisions = self.redactor.redact(result.text)
        summaries = announced(decisions)
        for change in guarded.changes:
            change.summary = summaries.get(change.name) or default_summary(change)
        return CheckpointOutcome(decisions, guarded.changes, memory_changes, guarded.refused,
                                 result.prompt_tokens, result.completion_tokens, result.status)


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
    """Memory changes for the log (the diff only, not the whole file)."""
    return [{"target": c.target, "action": c.action, "file": c.file,
             "diff": unified_diff(c.before, c.after, c.file.rsplit("/", 1)[-1])} for c in changes]


__all__ = [
    "CheckpointInput",
    "CheckpointOutcome",
    "Checkpointer",
    "GuardedSkillManage",
    "SkillChange",
    "announcement",
    "json_safe",
    "near_duplicates",
    "render_transcript",
]
