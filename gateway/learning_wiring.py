"""Wiring the learning loop into a Runtime: the memory tool, the frozen memory snapshot in the
prompt, and the turn observer that runs self-evaluation checkpoints in the background.

    await install_learning(runtime)     # from Runtime.open, after install_skills(runtime)

The observer counts tool calls per session. Every `learning.checkpoint_every` tool calls, and at
the end of a turn that used at least `learning.end_of_turn_min_tool_calls`, it hands the
transcript slice since the last checkpoint to `agent.checkpoint.Checkpointer` through
`runtime.spawn`, so the user's turn never waits and `runtime.drain()` (one-shot chat, cron,
shutdown) waits for it. Checkpoints of one session run one after the other. Each is recorded in
the learning log; skills created or patched are announced to the originating session through
`runtime.services["announce"]` (an `async (session, text) -> None` the gateway provides).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from agent.checkpoint import (AutoSkills, Checkpointer, CheckpointInput, CheckpointOutcome, SkillChange,
                              announcement, json_safe)
from agent.events import Event, MessageAdded, ToolFinished, ToolStarted
from agent.llm import LLMClient
from agent.loop import Conversation, TurnResult
from agent.memory import MemoryStore, Scope
from agent.prompt import PromptContext
from agent.redact import Redactor
from agent.tools.memory_tool import memory as memory_tool
from agent.tools.registry import ToolContext, ToolError
from gateway.learning_log import (AppliedProposal, LearningLog, Proposal, apply_memory_proposal, apply_proposal,
                                  day_start, reject_proposal, team_skills_root)
from gateway.proposals import Decider, remembered, render_remembered
from gateway.store import SessionRecord
from skills.dedup import Deduplicator
from skills.index_prompt import HEADER as INDEX_HEADER
from skills.index_prompt import render as render_index
from skills.index_prompt import select as select_index
from skills.library import SkillError, SkillLibrary, SkillRefused

log = logging.getLogger(__name__)

MAX_TRACKED_SESSIONS = 2_000
CHECKPOINT_CONCURRENCY = 2
SIMILAR_SKILLS = 5
SKILL_TAG = re.compile(r'<skill name="([a-z0-9-]+)">')


@dataclass
class _SessionState:
    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: int = 0
    used: dict[str, None] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class MemorySnapshotSection:
    """The prompt section with MEMORY.md and USER.md, frozen when the session's prompt is first built.

    Frozen so the prompt's prefix stays byte-identical for the whole session (prompt caches keep
    working); changes made during the session show through the memory tool at once and in the
    prompt of the next session.
    """

    def __init__(self, memory: MemoryStore, max_sessions: int = MAX_TRACKED_SESSIONS) -> None:
        self.memory = memory
        self.max_sessions = max_sessions
        self._frozen: OrderedDict[str, str] = OrderedDict()

    async def __call__(self, ctx: PromptContext) -> str:
        key = ctx.session_id or f"{ctx.team}:{ctx.platform}:{ctx.chat_id}:{ctx.user_id}"
        text = self._frozen.get(key)
        if text is None:
            try:
                text = await self.memory.snapshot(Scope(ctx.team, ctx.platform, ctx.user_id))
            except (OSError, ValueError) as exc:
                log.warning("memory snapshot unavailable: %s", exc)
                text = ""
            self._frozen[key] = text
            while len(self._frozen) > self.max_sessions:
                self._frozen.popitem(last=False)
        self._frozen.move_to_end(key)
        return text


class LearningLoop:
    """The TurnObserver that runs checkpoints, and the service behind /approve and `hermes learning`."""

    def __init__(self, runtime: Any, memory: MemoryStore, log_: LearningLog, redactor: Redactor) -> None:
        self.runtime = runtime
        self.settings = runtime.config.learning
        self.memory = memory
        self.log = log_
        self.redactor = redactor
        self._sessions: OrderedDict[str, _SessionState] = OrderedDict()
        self._own_libraries: dict[str, SkillLibrary] = {}
        model = self.settings.model or runtime.config.model.name
        update: dict[str, Any] = {"name": model, "stream": False}
        if self.settings.model:
            update["fallbacks"] = []
        self.model = model
        self.llm = LLMClient(runtime.config.model.model_copy(update=update),
                             concurrency=asyncio.Semaphore(CHECKPOINT_CONCURRENCY), caller=runtime.llm.caller)
        self.checkpointer = Checkpointer(self.llm, runtime.config.agent, redactor)

    # -- libraries --------------------------------------------------------------------------------
    async def library_for(self, team: str) -> SkillLibrary:
        libraries = self.runtime.services.get("skill_libraries")
        if libraries is not None:
            return await libraries.get(team)
        library = self._own_libraries.get(team)
        if library is None:
            library = self._own_libraries[team] = SkillLibrary(team_skills_root(self.runtime.home.root, team))
        return library

    # -- observing turns --------------------------------------------------------------------------
    def _state(self, session_id: str) -> _SessionState:
        state = self._sessions.get(session_id)
        if state is None:
            state = self._sessions[session_id] = _SessionState()
            while len(self._sessions) > MAX_TRACKED_SESSIONS:
                oldest, old_state = next(iter(self._sessions.items()))
                if old_state.lock.locked():
                    break
                self._sessions.pop(oldest)
        self._sessions.move_to_end(session_id)
        return state

    async def on_event(self, session: SessionRecord, event: Event) -> None:
        state = self._state(session.id)
        if isinstance(event, MessageAdded):
            message = event.message
            state.messages.append(message)
            if message.get("role") == "user" and isinstance(message.get("content"), str):
                for name in SKILL_TAG.findall(message["content"]):
                    state.used[name] = None
            if message.get("role") == "tool" and state.tool_calls >= self.settings.checkpoint_every:
                self.trigger(session, "every_n_tool_calls")
        elif isinstance(event, ToolStarted):
            name = event.arguments.get("name")
            if event.name in ("skill_view", "skill_manage") and isinstance(name, str) and name:
                state.used[name] = None
        elif isinstance(event, ToolFinished):
            state.tool_calls += 1

    async def on_turn_end(self, session: SessionRecord, conversation: Conversation, result: TurnResult) -> None:
        state = self._state(session.id)
        if result.tool_calls >= self.settings.end_of_turn_min_tool_calls and state.tool_calls > 0:
            self.trigger(session, "end_of_turn")

    def trigger(self, session: SessionRecord, cause: str) -> asyncio.Task[Any] | None:
        """Start a checkpoint on the slice since the last one (in the background)."""
        state = self._state(session.id)
        if not state.messages:
            return None
        messages, used = state.messages, list(state.used)
        state.messages, state.tool_calls, state.used = [], 0, {}
        return self.runtime.spawn(self._run(session, cause, messages, used, state.lock),
                                  name=f"checkpoint:{session.id}")

    # -- running a checkpoint ---------------------------------------------------------------------
    async def _run(self, session: SessionRecord, cause: str, messages: list[dict[str, Any]], used: list[str],
                   lock: asyncio.Lock) -> int | None:
        async with lock:
            budget = self.settings.daily_token_budget
            spent = await self.log.tokens_since(day_start())
            if budget and spent >= budget:
                message = (f"paused: the daily checkpoint budget of {budget} tokens is spent ({spent} used "
                           "today, UTC); checkpoints resume tomorrow or when learning.daily_token_budget grows")
                log.warning("learning checkpoint for session %s %s", session.id, message)
                return await self.log.record(session.id, session.team, cause, self.model, status="paused",
                                             error=message)
            checkpoint_id = await self.log.start(session.id, session.team, cause, self.model)
            try:
                outcome = await self._evaluate(session, checkpoint_id, messages, used)
            except asyncio.CancelledError:
                await self.log.finish(checkpoint_id, status="cancelled", error="cancelled at shutdown")
                raise
            except Exception as exc:  # noqa: BLE001 - a failed checkpoint must not hurt the gateway
                log.exception("learning checkpoint %d for session %s failed", checkpoint_id, session.id)
                await self.log.finish(checkpoint_id, status="failed", error=f"{type(exc).__name__}: {exc}")
                return checkpoint_id
            await self.log.finish(
                checkpoint_id, status="done" if outcome.status == "done" else outcome.status,
                decisions=outcome.decisions, skills=[c.as_dict() for c in outcome.skills],
                memory=json_safe(outcome.memory), prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                error="; ".join(str(r) for r in outcome.refused))
            if outcome.tokens:
                await self.runtime.store.record_usage(session.id, model=self.model,
                                                      prompt_tokens=outcome.prompt_tokens,
                                                      completion_tokens=outcome.completion_tokens, cost=0.0,
                                                      purpose="checkpoint")
            await self.announce(session, outcome.skills)
            return checkpoint_id

    async def _evaluate(self, session: SessionRecord, checkpoint_id: int, messages: list[dict[str, Any]],
                        used: list[str]) -> CheckpointOutcome:
        library = await self.library_for(session.team)
        snapshot = await library.snapshot()
        query = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")[:2_000]
        selection = select_index(snapshot, query, self.runtime.config.skills.prompt_budget_tokens)
        index_text = render_index([s for s in (snapshot.get(n) for n in selection) if s is not None],
                                  len(snapshot.skills)).replace(INDEX_HEADER, "").strip()
        similar = [s for s in (snapshot.get(n) for n, _ in await self._dedup().relevant(library, query, SIMILAR_SKILLS))
                   if s is not None]  # only skills relevant to the work: none is a fine answer
        bodies: dict[str, str] = {}
        for name in used:
            try:
                bodies[name] = await library.read(name)
            except SkillError:
                continue
        scope = Scope(session.team, session.platform, session.user_id)
        memory_text = await self.memory.read("memory", scope)
        user_text = await self.memory.read("user", scope) if session.user_id else ""
        data = CheckpointInput(messages, index_text, similar, bodies, memory_text, user_text,
                               (self.memory.memory_chars, self.memory.user_chars))
        data.proposals = render_remembered(*await remembered(self.log.store, session.team))
        ctx = ToolContext(workspace=self.runtime.workspace_for(session.key), session_id=session.id,
                          user_id=session.user_id, team=session.team, platform=session.platform,
                          services={**self.runtime.services, "skills": library,
                                    **self.memory_gate(session, checkpoint_id)})
        mode: AutoSkills = self.settings.auto_skills

        async def propose(action: str, name: str, arguments: dict[str, Any], summary: str) -> int:
            return await self.log.propose(checkpoint_id=checkpoint_id, session_id=session.id, team=session.team,
                                          skill=name, action=action, arguments=arguments, summary=summary)

        return await self.checkpointer.run(data, ctx, mode=mode, propose=propose)

    # -- announcements ----------------------------------------------------------------------------
    async def announce(self, session: SessionRecord, changes: list[SkillChange]) -> None:
        if not changes:
            return
        seen: dict[tuple[str, str, int | None], SkillChange] = {}
        for change in changes:  # one line per skill and kind of change
            if change.action in ("create", "patch", "edit"):
                kind = "create" if change.action == "create" else "update"
                seen.setdefault((change.name, kind, change.proposal_id), change)
        text = "\n".join(announcement(c) for c in seen.values())
        if not text:
            return
        hook = self.runtime.services.get("announce")
        if not self.settings.announce or hook is None:
            log.info("learning (session %s): %s", session.id, text)
            return
        try:
            await hook(session, text)
        except Exception:  # noqa: BLE001 - a failed post must not lose the checkpoint
            log.exception("could not announce what session %s learned", session.id)

    def memory_gate(self, session: SessionRecord, checkpoint_id: int) -> dict[str, Any]:
        """Services that turn a review's memory writes into proposals (`[learning] auto_memory = "ask"`)."""
        if getattr(self.settings, "auto_memory", "on") != "ask":
            return {}

        async def propose(ctx: ToolContext, action: str, target: str, text: str, old_text: str,
                          new_text: str) -> str:
            arguments = {"target": target, "text": text, "old_text": old_text, "new_text": new_text,
                         "user_id": ctx.user_id if target == "user" else ""}
            summary = " ".join((new_text or text or old_text).split())[:200]
            try:
                proposal_id = await self.log.propose(
                    checkpoint_id=checkpoint_id, session_id=session.id, team=session.team, skill=target,
                    action=action, arguments=arguments, summary=summary, kind="memory")
            except SkillRefused as exc:
                raise ToolError(str(exc)) from exc
            return (f"recorded as proposal #{proposal_id} (memory {action}); it is written only when an admin "
                    "approves it ([learning] auto_memory = \"ask\").")

        return {"memory_proposer": propose}

    def _dedup(self) -> Deduplicator:
        dedup = self.runtime.services.get("skill_dedup")
        return dedup if isinstance(dedup, Deduplicator) else Deduplicator()

    # -- proposals --------------------------------------------------------------------------------
    async def pending(self, team: str | None = None) -> list[Proposal]:
        """Proposals waiting for a decision (of one team, or all)."""
        return await self.log.proposals("pending", team=team)

    async def approve(self, proposal_id: int, by: str | Decider) -> AppliedProposal:
        """Write a pending proposal (from `/approve ID`, the dashboard or the CLI) and announce it.

        A plain `by` name is a trusted caller (dashboard, CLI); a chat passes a `Decider` and only
        an admin of the proposal's platform, in a chat of its team, may approve. The guard and the
        duplicate check run again on the final text. The "Learned" message goes to the chat the
        proposal came from.
        """
        decider = by if isinstance(by, Decider) else Decider("dashboard", name=by)
        proposal = await self.log.proposal(proposal_id)
        if proposal is not None and proposal.kind == "memory":
            return await apply_memory_proposal(self.log, self.memory, proposal_id, decider)
        library = await self.library_for(proposal.team) if proposal is not None else None
        applied = await apply_proposal(self.log, lambda _team: library,  # type: ignore[arg-type,return-value]
                                       proposal_id, decider, dedup=self.runtime.services.get("skill_dedup"),
                                       max_skill_chars=self.runtime.services.get("max_skill_chars"),
                                       announce="pending")
        await self.announce_approved(applied.proposal.id)
        return applied

    async def reject(self, proposal_id: int, by: str | Decider, reason: str = "") -> Proposal:
        decider = by if isinstance(by, Decider) else Decider("dashboard", name=by)
        return await reject_proposal(self.log, proposal_id, decider, reason)

    async def announce_approved(self, proposal_id: int | None = None) -> int:
        """Post the "Learned" message of approved proposals still to be announced (one, or all of
        them: approvals made from the CLI while the gateway ran elsewhere). Returns how many."""
        waiting = await self.log.to_announce()
        if proposal_id is not None:
            waiting = [p for p in waiting if p.id == proposal_id]
        posted = 0
        for p in waiting:
            await self.log.mark_announced(p.id)  # at most once: a failed post is logged, not repeated
            session = await self.runtime.store.get_session(p.session_id) if p.session_id else None
            if session is None:
                continue
            change = SkillChange(p.skill, p.action, p.summary, "", summary=p.summary if p.action == "create"
                                 else f"#{p.id} approved by {p.decided_by}: {p.summary}")
            await self.announce(session, [change])
            posted += 1
        return posted

async def install_learning(runtime: Any) -> LearningLoop:
    """Give `runtime` memory and the learning loop (idempotent)."""
    existing = runtime.services.get("learning")
    if isinstance(existing, LearningLoop):
        return existing
    redactor = Redactor.from_environ()
    memory = MemoryStore(runtime.home.root, runtime.config.memory.memory_chars, runtime.config.memory.user_chars,
                         redactor)
    learning_log = LearningLog(runtime.store, redactor)
    loop = LearningLoop(runtime, memory, learning_log, redactor)

    async def memory_show(team: str = "", platform: str = "", user_id: str = "") -> str:
        scope = Scope(team, platform, user_id)
        parts = []
        memory_text = (await memory.read("memory", scope)).strip()
        if memory_text:
            parts.append(f"Notes ({len(memory_text)}/{memory.memory_chars} chars):\n{memory_text}")
        if user_id:
            user_text = (await memory.read("user", scope)).strip()
            if user_text:
                parts.append(f"About you ({len(user_text)}/{memory.user_chars} chars):\n{user_text}")
        return "\n\n".join(parts)

    if runtime.tools.get(memory_tool.name) is None:
        runtime.tools.register(memory_tool)
    runtime.services["memory"] = memory
    runtime.services["memory_show"] = memory_show
    runtime.services["learning"] = loop
    # first after the base prompt: the frozen snapshot keeps the prefix stable for the session
    runtime.prompt.sections.insert(0, MemorySnapshotSection(memory))
    runtime.observers.append(loop)
    return loop
