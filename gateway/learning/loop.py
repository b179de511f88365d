"""When a review runs: the turn observer that decides a review is due, queues it and runs it in
the background, and the service behind /approve and `hermes learning` (`LearningLoop`).

`gateway.learning.install` puts it into a Runtime; what one review sees and writes is
`gateway.learning.review`, what is posted to a chat afterwards `gateway.learning.announce`.

When a review is due (every key is in `[learning]`):
- at the end of a turn, once the answer has been delivered, when the turn used at least
  `end_of_turn_min_tool_calls`, hit a failed step and still answered, used a skill, or when the
  user corrected the agent or stated a preference (with or without tools);
- every `review_every_user_turns` unreviewed user turns, and when a session with unreviewed turns
  has been quiet for `review_idle_seconds`;
- at `checkpoint_every` tool calls inside a long turn: a mid-task review; the turn's final review
  then covers the whole task again, request to answer, told what the first one did.

A due review is a row of the durable queue (`gateway.learning.review_queue`) before it starts, holding
the slice it sees (taken from the stored messages, so counters and slices survive a restart).
Reviews run through `runtime.spawn`, never in the user's turn; one at a time per session, two at
a time in all. Each team (the default library is team "") has its own `daily_token_budget`: when
it is spent the team's reviews wait (`deferred`, oldest first) for the next UTC day and the chat
hears so once a day. A review stops at `review_max_tokens`. Tokens are counted per model call, so
a review killed half-way keeps its cost; its writes are journalled, so the re-run after a restart
never repeats them. What was learned is announced to the session's chat after the turn's answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.checkpoint import FAILED_RESULT, Checkpointer, SkillChange, is_correction, json_safe
from agent.events import Event, MessageAdded, ToolFinished, ToolStarted
from agent.llm import LLMClient
from agent.loop import Conversation, TurnResult
from agent.memory import MemoryStore
from agent.redact import Redactor
from gateway.learning.announce import PAUSED_NOTICE, Announcer
from gateway.learning.log import (
    AppliedProposal,
    LearningLog,
    Proposal,
    apply_memory_proposal,
    apply_proposal,
    day_start,
    reject_proposal,
    team_skills_root,
)
from gateway.learning.proposals import Decider
from gateway.learning.review import Reviewer, journalled_skills, message_text
from gateway.learning.review_queue import Review, ReviewQueue
from gateway.store import SessionRecord
from skills.library import SkillLibrary

log = logging.getLogger(__name__)

MAX_TRACKED_SESSIONS = 2_000
CHECKPOINT_CONCURRENCY = 2
ANSWER_WAIT = 600.0          # seconds a review waits for the turn's answer to be delivered
MID_TASK_GRACE = 2.0         # a mid-task review waits this long: a task that ends by then gets one review
SKILL_TAG = re.compile(r'<skill name="([a-z0-9-]+)">')
DAY = 86_400


@dataclass
class _Turn:
    """What the running turn of a session did so far (in memory: a turn dies with its process)."""

    tool_calls: int = 0
    failed: bool = False
    correction: bool = False
    used: dict[str, None] = field(default_factory=dict)
    mid_review: int = 0
    mid_due: bool = False
    user_turns: int | None = None     # the session's unreviewed user turns, counted with this turn's
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class LearningLoop:
    """The TurnObserver that queues and runs reviews, and the service behind /approve and `hermes learning`."""

    def __init__(self, runtime: Any, memory: MemoryStore, log_: LearningLog, redactor: Redactor) -> None:
        self.runtime = runtime
        self.settings = runtime.config.learning
        self.memory = memory
        self.log = log_
        self.redactor = redactor
        self.queue = ReviewQueue(runtime.store, redactor)
        self._turns: OrderedDict[str, _Turn] = OrderedDict()
        # per-session locks only serialise this process's reviews of one session (one at a time
        # sees the library); no state rests on them: claims and budgets are store transactions
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()
        self._answers: dict[str, asyncio.Event] = {}
        self._slots = asyncio.Semaphore(CHECKPOINT_CONCURRENCY)
        self._scheduled: set[int] = set()
        self._timers: list[asyncio.Task[Any]] = []
        self._own_libraries: dict[str, SkillLibrary] = {}
        model = self.settings.model or runtime.config.model.name
        update: dict[str, Any] = {"name": model, "stream": False}
        if self.settings.model:
            update["fallbacks"] = []
        self.model = model
        self.llm = LLMClient(runtime.config.model.model_copy(update=update),
                             concurrency=asyncio.Semaphore(CHECKPOINT_CONCURRENCY), caller=runtime.llm.caller)
        self.checkpointer = Checkpointer(self.llm, runtime.config.agent, redactor)
        self.reviewer = Reviewer(runtime, memory, log_, self.queue, self.checkpointer, model, self.library_for)
        self.announcer = Announcer(runtime, log_)

    # -- libraries --------------------------------------------------------------------------------
    async def library_for(self, team: str) -> SkillLibrary:
        libraries = self.runtime.services.get("skill_libraries")
        if libraries is not None:
            return await libraries.get(team)
        library = self._own_libraries.get(team)
        if library is None:
            store = getattr(self.runtime, "store", None)
            library = self._own_libraries[team] = SkillLibrary(
                team_skills_root(self.runtime.home.root, team),
                versions=store.skill_versions(team) if store is not None else None)
        return library

    # -- the answer of a turn (the gateway's dispatcher says when it is delivered) -----------------
    def begin_answer(self, session_id: str) -> None:
        """A turn of this session is running: its reviews and announcements wait for its answer."""
        self._answers[session_id] = asyncio.Event()

    def answer_delivered(self, session_id: str) -> None:
        """The turn's answer is out (or failed for good): what waited for it may go ahead."""
        gate = self._answers.pop(session_id, None)
        if gate is not None:
            gate.set()

    @staticmethod
    async def _after_answer(gate: asyncio.Event | None) -> None:
        if gate is not None and not gate.is_set():
            try:
                await asyncio.wait_for(gate.wait(), ANSWER_WAIT)
            except TimeoutError:
                log.warning("the answer of a turn was not delivered within %.0fs; the review goes ahead", ANSWER_WAIT)

    # -- observing turns --------------------------------------------------------------------------
    def _turn(self, session_id: str) -> _Turn:
        turn = self._turns.get(session_id)
        if turn is None:
            turn = self._turns[session_id] = _Turn()
            while len(self._turns) > MAX_TRACKED_SESSIONS:
                self._turns.popitem(last=False)
        self._turns.move_to_end(session_id)
        return turn

    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
            while len(self._locks) > MAX_TRACKED_SESSIONS:
                oldest, old = next(iter(self._locks.items()))
                if old.locked():
                    break
                self._locks.pop(oldest)
        self._locks.move_to_end(session_id)
        return lock

    async def on_event(self, session: SessionRecord, event: Event) -> None:
        if isinstance(event, MessageAdded):
            message = event.message
            role = message.get("role")
            if role == "user":
                text = message_text(message.get("content"))
                turn = self._turns[session.id] = _Turn(correction=is_correction(text))
                self._turns.move_to_end(session.id)
                for name in SKILL_TAG.findall(text):
                    turn.used[name] = None
                turn.user_turns = (await self.queue.user_turn(session.id, session.team)).user_turns
            elif role == "tool":
                turn = self._turn(session.id)
                if turn.mid_due:
                    turn.mid_due = False
                    turn.mid_review = await self.enqueue(session, "mid_task", from_turn=True, turn=turn) or 0
        elif isinstance(event, ToolStarted):
            name = event.arguments.get("name")
            if event.name in ("skill_view", "skill_manage") and isinstance(name, str) and name:
                self._turn(session.id).used[name] = None
        elif isinstance(event, ToolFinished):
            turn = self._turn(session.id)
            turn.tool_calls += 1
            if not event.ok or FAILED_RESULT.match(event.result.lstrip()):
                turn.failed = True
            count = await self.queue.tool_call(session.id, session.team)
            if count >= self.settings.checkpoint_every:
                turn.mid_due = True  # queued once the tool's result is in the conversation

    async def on_turn_end(self, session: SessionRecord, conversation: Conversation, result: TurnResult) -> None:
        turn = self._turns.pop(session.id, None) or _Turn()
        long_task = bool(turn.mid_review)
        if turn.mid_review and await self.queue.merge(turn.mid_review):
            turn.mid_review = 0  # it had not started: the review of the whole task covers it
        turn.ended.set()
        answered = result.status in ("done", "max_iterations")
        reason = ""
        if turn.correction:
            reason = "correction"
        elif long_task or turn.tool_calls >= self.settings.end_of_turn_min_tool_calls \
                or (turn.failed and answered) or turn.used:
            reason = "end_of_turn"
        if reason:
            await self.enqueue(session, reason, from_turn=True, turn=turn)
            return
        # the count this turn's message made (no other turn of the session runs meanwhile; a
        # review taken since makes it high, and enqueue then finds nothing to review); read from
        # the store only for a turn whose message this process did not see (a re-run)
        user_turns = turn.user_turns if turn.user_turns is not None else \
            (await self.queue.counters(session.id)).user_turns
        if user_turns >= self.settings.review_every_user_turns:
            await self.enqueue(session, "user_turns", from_turn=False, turn=turn)

    def trigger(self, session: SessionRecord, cause: str) -> asyncio.Task[Any]:
        """Queue a review of what is not reviewed yet in `session`, now (e.g. from a command)."""
        return self.runtime.spawn(self.enqueue(session, cause, from_turn=False, turn=_Turn()),
                                  name=f"review-queue:{session.id}")

    async def enqueue(self, session: SessionRecord, reason: str, *, from_turn: bool, turn: _Turn) -> int | None:
        """Make the due review a row (the slice, the reason, the team), then start it in the background."""
        messages, start_seq = await self.queue.take_slice(session.id, from_turn=from_turn)
        if not any(m.get("role") == "user" for m in messages):
            return None  # nothing a person asked: no review without the request
        context = {"used": list(turn.used), "earlier": turn.mid_review if reason != "mid_task" else 0,
                   "user_id": session.user_id, "platform": session.platform, "chat_id": session.chat_id,
                   "start_seq": start_seq}
        review_id = await self.queue.enqueue(session.id, session.team, reason, messages, context)
        if reason == "mid_task":
            await self.queue.set_task_review(session.id, review_id)
        mid_task = reason == "mid_task"
        self._start(review_id, session, self._answers.get(session.id), wait_to_run=not mid_task,
                    turn_end=turn.ended if mid_task else None)
        return review_id

    def _start(self, review_id: int, session: SessionRecord | None, gate: asyncio.Event | None,
               wait_to_run: bool = True, turn_end: asyncio.Event | None = None) -> None:
        if review_id in self._scheduled:
            return
        self._scheduled.add(review_id)
        self.runtime.spawn(self._run_review(review_id, session, gate, wait_to_run, turn_end),
                           name=f"checkpoint:{review_id}")

    # -- running a review -------------------------------------------------------------------------
    async def _run_review(self, review_id: int, session: SessionRecord | None, gate: asyncio.Event | None,
                          wait_to_run: bool, turn_end: asyncio.Event | None = None) -> int | None:
        try:
            if wait_to_run:
                await self._after_answer(gate)
            if turn_end is not None:  # mid-task: a task about to end gets one review of the whole of it
                try:
                    await asyncio.wait_for(turn_end.wait(), MID_TASK_GRACE)
                except TimeoutError:
                    pass
            review = await self.queue.get(review_id)
            if review is None:
                return None
            if session is None:
                session = await self.runtime.store.get_session(review.session_id)
                if session is None:
                    await self.queue.set_status(review_id, "failed")
                    return None
            async with self._lock(review.session_id), self._slots:
                checkpoint_id, changes, memory = await self._attempt(review_id, session)
            if changes or memory:
                await self._after_answer(gate)  # a mid-task review speaks after the turn's answer
                await self.announcer.announce(session, changes)
                await self.announcer.remembered(session, memory)
            return checkpoint_id
        finally:
            self._scheduled.discard(review_id)

    async def _attempt(self, review_id: int, session: SessionRecord
                       ) -> tuple[int | None, list[SkillChange], list[dict[str, Any]]]:
        """Run one review: its checkpoint id, the skill changes to announce and its memory writes
        (as the learning log holds them)."""
        # the claim and the budget check are one store transaction: two processes never run one
        # review, and a team's spent budget defers its reviews in every process
        budget = self.settings.daily_token_budget
        claim = await self.queue.claim_within(review_id, budget, day_start())
        if claim is None:
            return None, [], []
        review = claim.review
        if claim.deferred:
            await self._defer(review, session, claim.spent, budget)
            return None, [], []
        checkpoint_id = await self.log.start(review.session_id, review.team, review.reason, self.model, review.id)
        await self.queue.set_status(review.id, "running", checkpoint_id=checkpoint_id)
        try:
            outcome = await self.reviewer.evaluate(session, review, checkpoint_id)
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupted(review.id, checkpoint_id))
            raise
        except Exception as exc:
            log.exception("learning review %d for session %s failed", review.id, review.session_id)
            await self.log.finish(checkpoint_id, status="failed", error=f"{type(exc).__name__}: {exc}")
            await self.queue.set_status(review.id, "failed")
            return checkpoint_id, journalled_skills(review), []
        status = outcome.status
        memory = json_safe(outcome.memory)
        await self.log.finish(
            checkpoint_id, status=status, decisions=outcome.decisions,
            skills=[c.as_dict() for c in outcome.skills], memory=memory,
            error="; ".join(f"{r.kind}: {r.message}" for r in outcome.refused)[:4_000],
            refusals=[r.as_dict() for r in outcome.refused])
        await self.queue.set_status(review.id, "capped" if status == "capped" else "done")
        return checkpoint_id, journalled_skills(review) + outcome.skills, memory

    async def _interrupted(self, review_id: int, checkpoint_id: int) -> None:
        await self.log.finish(checkpoint_id, status="interrupted",
                              error="stopped by a shutdown; the review runs again after the restart")
        await self.queue.release(review_id)

    async def _defer(self, review: Review, session: SessionRecord, spent: int, budget: int) -> None:
        """The team's budget is spent: the review waits (`deferred` by the claim) for tomorrow; the chat
        hears once a day."""
        team = review.team or "(default library)"
        message = (f"deferred: the daily learning budget of team {team} ({budget} tokens) is spent ({spent} used "
                   "today, UTC); the review runs after 00:00 UTC or when learning.daily_token_budget grows")
        log.warning("learning review %d for session %s %s", review.id, review.session_id, message)
        await self.log.record(review.session_id, review.team, review.reason, self.model, status="deferred",
                              error=message, review_id=review.id,
                              refusals=[{"kind": "budget", "tool": "review", "message": message}])
        self._wake_tomorrow()
        day = time.strftime("%Y-%m-%d", time.gmtime())
        if await self.queue.first_notice_today(review.team, f"{session.platform}:{session.chat_id}", day):
            await self.announcer.post(session, PAUSED_NOTICE)

    # -- the queue after a restart, idle sessions, the next day --------------------------------------
    async def resume(self, *, idle_sweeper: bool = True) -> int:
        """Re-run what a dead process left (running rows whose owner is gone), the queued and, on a new
        day, the deferred reviews, oldest first; start the idle-session sweeper (unless told not to:
        the gateway runs it as a cluster duty, `start_idle_sweeper`). Returns how many."""
        dead = await self.queue.requeue_orphans()
        for checkpoint_id in dead:  # the attempt's tokens stay counted; its writes are in the review's journal
            await self.log.finish(checkpoint_id, status="interrupted",
                                  error="the process running this review died; the review ran again after the restart")
        if dead:
            log.warning("learning: %d reviews were cut off (crash or kill); running them again", len(dead))
        await self.queue.undefer()
        waiting = await self.queue.waiting(("queued",))
        for review in waiting:
            self._start(review.id, None, None, wait_to_run=False)
        if idle_sweeper:
            self.start_idle_sweeper()
        return len(waiting)

    def start_idle_sweeper(self, fence: Callable[[], Awaitable[bool]] | None = None) -> None:
        """Start the timer that reviews sessions quiet for `review_idle_seconds` (idempotent);
        `await fence()` runs before each sweep: False skips it (another process sweeps now)."""
        if any(t.get_name() == "learning-idle" and not t.done() for t in self._timers):
            return
        self._timers.append(asyncio.create_task(self._sweep_idle(fence), name="learning-idle"))

    async def stop_idle_sweeper(self) -> None:
        idle = [t for t in self._timers if t.get_name() == "learning-idle"]
        for task in idle:
            task.cancel()
        await asyncio.gather(*idle, return_exceptions=True)
        self._timers = [t for t in self._timers if t not in idle]

    def _wake_tomorrow(self) -> None:
        if any(t.get_name() == "learning-tomorrow" and not t.done() for t in self._timers):
            return
        self._timers.append(asyncio.create_task(self._tomorrow(), name="learning-tomorrow"))

    async def _tomorrow(self) -> None:
        await asyncio.sleep(max(1.0, day_start() + DAY - time.time() + 1.0))
        await self.queue.undefer()
        for review in await self.queue.waiting(("queued",)):
            self._start(review.id, None, None, wait_to_run=False)

    async def _sweep_idle(self, fence: Callable[[], Awaitable[bool]] | None = None) -> None:
        idle = float(self.settings.review_idle_seconds)
        every = max(0.2, min(60.0, idle / 3))
        while True:
            await asyncio.sleep(every)
            try:
                if fence is not None and not await fence():
                    continue
                for session_id in await self.queue.idle_sessions(idle):
                    if session_id in self._answers:
                        continue  # a turn is running
                    session = await self.runtime.store.get_session(session_id)
                    if session is not None:
                        await self.enqueue(session, "idle", from_turn=False, turn=_Turn())
            except Exception:
                log.exception("learning: the idle-session sweep failed")

    async def close(self) -> None:
        for task in self._timers:
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        self._timers.clear()

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
        """Post the "Learned" message of approved proposals still to be announced (`Announcer`)."""
        return await self.announcer.announce_approved(proposal_id)
