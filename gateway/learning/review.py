"""One review: what it sees (the slice, the skills index, similar skills, memory, earlier work)
and what it may write (skills through the guarded `skill_manage`, memory, or proposals of both).

`Reviewer.evaluate` builds the review's input and tool context and runs the checkpoint model;
the loop (`gateway.learning.loop`) decides when, claims the row and records the outcome. Every
write a review makes is journalled on its queue row (`on_write`), so a re-run after a restart is
told what is already done (`describe_write`) and announces it (`journalled_skills`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agent.checkpoint import AutoSkills, Checkpointer, CheckpointInput, CheckpointOutcome, SkillChange
from agent.memory import MemoryStore, Scope
from agent.speakers import speakers_in
from agent.tools.registry import ToolContext, ToolError
from gateway.learning.log import LearningLog
from gateway.learning.proposals import remembered, render_remembered
from gateway.learning.review_queue import Review, ReviewQueue
from gateway.store import SessionRecord
from skills.index_prompt import HEADER as INDEX_HEADER
from skills.index_prompt import render as render_index
from skills.index_prompt import select as select_index
from skills.library import SkillError, SkillLibrary, SkillRefused
from skills.similar import SkillDeduplicator

SIMILAR_SKILLS = 5

LibraryFor = Callable[[str], Awaitable[SkillLibrary]]


class Reviewer:
    """Runs the checkpoint model over one queued review, with the team's library and memory."""

    def __init__(self, runtime: Any, memory: MemoryStore, log_: LearningLog, queue: ReviewQueue,
                 checkpointer: Checkpointer, model: str, library_for: LibraryFor) -> None:
        self.runtime = runtime
        self.settings = runtime.config.learning
        self.memory = memory
        self.log = log_
        self.queue = queue
        self.checkpointer = checkpointer
        self.model = model
        self.library_for = library_for

    async def evaluate(self, session: SessionRecord, review: Review, checkpoint_id: int) -> CheckpointOutcome:
        messages = review.messages
        used = [str(n) for n in review.context.get("used", [])]
        library = await self.library_for(session.team)
        snapshot = await library.snapshot()
        query = " ".join(message_text(m.get("content")) for m in messages if m.get("role") == "user")[:2_000]
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
        user_id = str(review.context.get("user_id") or session.user_id)
        scope = Scope(session.team, session.platform, user_id)
        memory_text = await self.memory.read("memory", scope)
        user_text = await self.memory.read("user", scope) if user_id else ""
        speakers = {}
        for uid, speaker in speakers_in(messages).items():
            text = await self.memory.read("user", Scope(session.team, speaker.platform, uid))
            speakers[uid] = (speaker, text)
        data = CheckpointInput(messages, index_text, similar, bodies, memory_text, user_text,
                               (self.memory.memory_chars, self.memory.user_chars), reason=review.reason,
                               earlier=await self._earlier(int(review.context.get("earlier") or 0)),
                               already_done=[describe_write(w) for w in review.writes], speakers=speakers)
        data.proposals = render_remembered(*await remembered(self.log.store, session.team))
        ctx = ToolContext(workspace=self.runtime.workspace_for(session.key), session_id=session.id,
                          user_id=user_id, team=session.team, platform=session.platform,
                          services={**self.runtime.services, "skills": library,
                                    **self.memory_gate(session, checkpoint_id)})
        mode: AutoSkills = self.settings.auto_skills

        async def propose(action: str, name: str, arguments: dict[str, Any], summary: str) -> int:
            return await self.log.propose(checkpoint_id=checkpoint_id, session_id=session.id, team=session.team,
                                          skill=name, action=action, arguments=arguments, summary=summary)

        async def on_usage(prompt_tokens: int, completion_tokens: int) -> None:
            await self.log.add_tokens(checkpoint_id, prompt_tokens, completion_tokens)
            await self.runtime.store.record_usage(session.id, model=self.model, prompt_tokens=prompt_tokens,
                                                  completion_tokens=completion_tokens, cost=0.0,
                                                  purpose="checkpoint")
            hook = self.runtime.services.get("usage_hook")
            if hook is not None:
                hook("checkpoint", self.model, prompt_tokens, completion_tokens)

        async def on_write(write: dict[str, Any]) -> None:
            await self.queue.record_write(review.id, write)

        return await self.checkpointer.run(data, ctx, mode=mode, propose=propose, on_usage=on_usage,
                                           on_write=on_write, max_tokens=self.settings.review_max_tokens)

    async def _earlier(self, review_id: int) -> str:
        """What the mid-task review of this task did (it ran first: reviews of a session take turns)."""
        if not review_id:
            return ""
        review = await self.queue.get(review_id)
        if review is None:
            return ""
        done = [describe_write(w) for w in review.writes]
        return (f"(review #{review_id}, of the first steps, status {review.status})\n"
                + ("\n".join(f"- {d}" for d in done) if done else "- nothing was written"))

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

    def _dedup(self) -> SkillDeduplicator:
        dedup = self.runtime.services.get("skill_dedup")
        return dedup if isinstance(dedup, SkillDeduplicator) else SkillDeduplicator()


def message_text(content: Any) -> str:
    """The text of a message's content (a string, or a list of parts)."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def describe_write(write: dict[str, Any]) -> str:
    """One line for a journalled write (what an interrupted run or an earlier review already did)."""
    if write.get("kind") == "skill":
        proposal = f" (proposal #{write['proposal']})" if write.get("proposal") else ""
        return f"skill {write.get('action')} {write.get('name')}{proposal}"
    added = [line[1:].strip() for line in str(write.get("diff") or "").splitlines()
             if line.startswith("+") and not line.startswith("+++")]
    what = "; ".join(added)[:200] or str(write.get("action"))
    return f"memory {write.get('action')} in {str(write.get('file', '')).rsplit('/', 1)[-1]}: {what}"


def journalled_skills(review: Review) -> list[SkillChange]:
    """Skill writes an interrupted run of this review made (announced with the re-run's)."""
    changes = []
    for write in review.writes:
        if write.get("kind") == "skill":
            changes.append(SkillChange(str(write.get("name")), str(write.get("action")),
                                       str(write.get("description") or ""), str(write.get("diff") or ""),
                                       str(write.get("summary") or ""), write.get("proposal")))
    return changes
