"""The dispatcher: one turn at a time per session, queued in order, stoppable, cheap when idle.

Every message for a session goes into that session's queue; a worker task runs the queue's
turns one after another and goes away when the queue is empty, so an idle session costs nothing
here. Messages that arrive while a turn runs are answered next, in order, never dropped.
`/stop` sets the running turn's interrupt event and says nothing itself: the stopped turn's answer
ends with "Stopped.", the one word the user sees about it ("Nothing is running." when idle). The
global limit on concurrent model calls is the LLMClient's semaphore; since a session never has
more than one turn (hence one model call) in flight, a busy session cannot take more than one
slot, and the semaphore's FIFO wake-up order keeps sessions fair.

A session without a title is named after its first message as the user typed it (the first
line, at most `TITLE_CHARS` characters, secrets masked), so the dashboard and the web chat's list
show "Why does the deploy fail?" rather than a key.

A message may carry `done`, called once its turn's answer was delivered (or it was answered
without a turn, or the turn failed and said so): the gateway's inbox forgets the message then.
A turn cut short by shutdown, or a queued message dropped at shutdown, is not done: the next
process answers it. It may also carry `begin`, called with the session id when its turn starts
(before the user's message is stored): the inbox counts the attempt there and, for a re-run
after a crash, rewinds the conversation to where the interrupted run began; when it did, the
cached conversation is dropped so the turn reloads it.

Conversations are cached by `SessionService` while they are in use; the dispatcher keeps an LRU
of the cached ones and `forget`s the least recently used beyond `cache_size`, and any idle for
`idle_seconds`, so thousands of idle sessions stay cheap in memory (they reload from the store).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agent.events import Event, ModelUsage
from agent.llm import LLMError
from agent.loop import TurnResult
from agent.speakers import attribute
from agent.tools.registry import deny_all
from gateway.commands import IMMEDIATE, CommandContext, Commands, parse_command
from gateway.metrics import Metrics
from gateway.runtime import Runtime
from gateway.sessions import SessionService, TurnInput

log = logging.getLogger(__name__)

NO_MODEL_TEXT = (
    "I'm running, but no model is configured yet, so I can't answer.\n"
    "Set one in `$HERMES_HOME/config.toml`:\n\n"
    "```toml\n[model]\nname = \"openai/gpt-4o-mini\"   # any LiteLLM model string\n```\n\n"
    "export the provider's key (e.g. `OPENAI_API_KEY`, or put it in `$HERMES_HOME/secrets.env`), "
    "then restart `hermes gateway`."
)
MODEL_UNAVAILABLE = "The model could not answer right now; please try again in a moment."
MODEL_MISCONFIGURED = (
    "I can't answer: my model refused the request because of a configuration problem (its key, its "
    "name or its address), so trying again will not help. An admin needs to fix `[model]` in the "
    "config; `hermes doctor` and the gateway's log say exactly what to set."
)
TITLE_CHARS = 60


def title_of(text: str, redact: Callable[[str], str]) -> str:
    """A session's title from its first message: the first non-blank line with its secrets masked
    (before it is cut, so no secret is cut into a piece the masking would not know), spaces
    collapsed, cut short."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(redact(line[:20 * TITLE_CHARS]).split())
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS - 1].rstrip() + "…"


class Reply(Protocol):
    """Where a turn's output goes (a platform chat, an API response)."""

    def begin(self) -> None: ...

    async def on_event(self, event: Event) -> None: ...

    async def finish(self, text: str, result: TurnResult | None = None) -> None: ...

    async def say(self, text: str) -> None: ...

    async def fail(self, text: str) -> None: ...


Done = Callable[[], Awaitable[None]]
Begin = Callable[[str], Awaitable[bool]]   # session id -> True when the conversation was rewound


class ShuttingDown(RuntimeError):
    """The gateway is stopping and takes no new work."""


@dataclass(slots=True)
class Work:
    """One queued message of a session."""

    ctx: CommandContext
    content: str | dict[str, Any]
    reply: Reply
    stream: bool | None = None
    new_session: bool = False
    enqueued_at: float = 0.0
    done: Done | None = None
    turn: TurnInput | None = None  # the API client's history, instructions and model options
    begin: Begin | None = None
    title: str = ""  # what the user typed (before a skill command is expanded): names a new session


class _Slot:
    __slots__ = ("queue", "worker", "interrupt")

    def __init__(self) -> None:
        self.queue: deque[Work] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.interrupt: asyncio.Event | None = None


class Dispatcher:
    def __init__(self, runtime: Runtime, metrics: Metrics, *, sessions: SessionService | None = None,
                 commands: Commands | None = None, cache_size: int = 256, idle_seconds: float = 600.0) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.sessions = sessions or SessionService(runtime)
        self.commands = commands or Commands(runtime)
        self.cache_size = cache_size
        self.idle_seconds = idle_seconds
        self.accepting = True
        self._slots: dict[str, _Slot] = {}
        self._cached: OrderedDict[str, float] = OrderedDict()
        self._session_of: dict[str, str] = {}   # session key -> id of its cached conversation
        self._key_of: dict[str, str] = {}       # and back
        # /stop for a session not running here: asks the process that runs it (gateway/turns.py)
        self.remote_stop: Callable[[str], Awaitable[bool]] | None = None

    # -- entry point -------------------------------------------------------------------------------
    async def handle(self, ctx: CommandContext, content: str | dict[str, Any], reply: Reply, *,
                     stream: bool | None = None, done: Done | None = None,
                     turn: TurnInput | None = None, begin: Begin | None = None) -> None:
        """Take one user message: answer a command, or queue a turn for its session."""
        if not self.accepting:
            raise ShuttingDown("the gateway is shutting down")
        text = content if isinstance(content, str) else _text_of(content)
        command = parse_command(text) if text.startswith("/") else None
        if command is not None:
            answer: str | None = None
            if command.name == "stop":
                stopped = self.stop(ctx.session_key) or (
                    self.remote_stop is not None and await self.remote_stop(ctx.session_key))
                if stopped:  # the stopped turn itself ends with "Stopped.": the one word about it
                    if done is not None:
                        await done()
                    return
                answer = "Nothing is running."
            elif command.name in IMMEDIATE:
                answer = await self.commands.answer(command, ctx)
            elif command.name == "new":
                self.submit(Work(ctx, "", reply, new_session=True, done=done))
                return
            else:
                expanded = await self.commands.expand_skill(text, ctx.team)
                if expanded is None:
                    answer = f"I don't know /{command.name}. /help lists what I know."
                else:
                    content = expanded
            if answer is not None:
                await reply.say(answer)
                if done is not None:
                    await done()
                return
        self.submit(Work(ctx, content, reply, stream=stream, done=done, turn=turn, begin=begin, title=text))

    def submit(self, work: Work) -> None:
        if not self.accepting:
            raise ShuttingDown("the gateway is shutting down")
        work.enqueued_at = time.monotonic()
        key = work.ctx.session_key
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
            self.metrics.active_sessions.inc()
        slot.queue.append(work)
        self.metrics.queue_depth.labels(work.ctx.platform).inc()
        if slot.worker is None:
            slot.worker = asyncio.create_task(self._drain(key, slot), name=f"session:{key}")

    def stop(self, session_key: str) -> bool:
        """Interrupt the session's running turn; True when one was running."""
        slot = self._slots.get(session_key)
        if slot is None or slot.interrupt is None:
            return False
        slot.interrupt.set()
        return True

    def busy(self, session_key: str) -> bool:
        return session_key in self._slots

    async def settled(self, session_key: str) -> None:
        """Wait until the session has nothing queued or running here."""
        slot = self._slots.get(session_key)
        if slot is not None and slot.worker is not None:
            await asyncio.wait({slot.worker})

    def forget_key(self, session_key: str) -> None:
        """Drop the session's cached conversation (another process may have added to it)."""
        session_id = self._session_of.get(session_key)
        if session_id is not None:
            self._forget(session_id)

    @property
    def pending(self) -> int:
        return sum(len(s.queue) + (1 if s.interrupt is not None else 0) for s in self._slots.values())

    # -- the per-session worker -------------------------------------------------------------------
    async def _drain(self, key: str, slot: _Slot) -> None:
        try:
            while slot.queue:
                work = slot.queue.popleft()
                self.metrics.queue_depth.labels(work.ctx.platform).dec()
                finished = True
                try:
                    finished = await self._run(work, slot)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one failed turn must not stop the session's queue
                    log.exception("turn for %s failed", key)
                    self.metrics.errors.labels("turn").inc()
                    try:
                        await work.reply.fail("Something went wrong on my side; the error is in the gateway log.")
                    except Exception:  # noqa: BLE001
                        log.exception("could not report the failure to %s", key)
                if finished and work.done is not None:
                    try:
                        await work.done()
                    except Exception:  # noqa: BLE001 - the answer is out; the next start may repeat it
                        log.exception("could not mark the message of %s answered", key)
        finally:
            for work in slot.queue:  # only reached when cancelled at shutdown
                self.metrics.queue_depth.labels(work.ctx.platform).dec()
            self._slots.pop(key, None)
            self.metrics.active_sessions.dec()

    async def _run(self, work: Work, slot: _Slot) -> bool:
        """Run one queued message; False when shutdown cut the turn short (it is not answered)."""
        ctx = work.ctx
        store = self.runtime.store
        if work.new_session:
            old = await store.active_session(ctx.session_key, platform=ctx.platform, chat_id=ctx.chat_id,
                                             user_id=ctx.user_id, team=ctx.team)
            self._forget(old.id)
            await work.reply.say(await self.commands.new_session(ctx))
            return True
        if not self.runtime.config.model.name:
            await work.reply.say(NO_MODEL_TEXT)
            return True
        title = title_of(work.title, store.redactor.redact)
        session = await store.active_session(ctx.session_key, platform=ctx.platform, chat_id=ctx.chat_id,
                                             user_id=ctx.user_id, team=ctx.team, title=title)
        self._session_of[ctx.session_key] = session.id
        self._key_of[session.id] = ctx.session_key
        if work.begin is not None and await work.begin(session.id):
            self._forget(session.id)   # an interrupted run's messages were taken back: reload
        if not session.title and title:  # a session started by /new, or before sessions had titles
            await store.set_session_title(session.id, title)
            session = dataclasses.replace(session, title=title)
        content = work.content
        if ctx.shared:  # a group conversation: say who speaks, and answer that person (their USER.md)
            content = attribute(content, ctx.platform, ctx.user_id, ctx.display_name)
            if ctx.user_id and session.user_id != ctx.user_id:
                session = dataclasses.replace(session, user_id=ctx.user_id)
        learning = self.runtime.services.get("learning")  # its reviews wait until the answer is out
        if learning is not None:
            learning.begin_answer(session.id)
        try:
            return await self._answer(work, slot, session, content)
        finally:
            if learning is not None:
                learning.answer_delivered(session.id)

    async def _answer(self, work: Work, slot: _Slot, session: Any, content: str | dict[str, Any]) -> bool:
        """Run the turn and deliver its answer; False when shutdown cut it short (not answered)."""
        ctx = work.ctx
        interrupt = slot.interrupt = asyncio.Event()
        started = time.monotonic()
        metrics = self.metrics

        async def on_event(event: Event) -> None:
            if isinstance(event, ModelUsage):
                metrics.record_usage(event.purpose, event.model, event.prompt_tokens, event.completion_tokens)
            await work.reply.on_event(event)

        approvals = self.runtime.services.get("approvals")  # gateway/approvals.py: ask in this chat
        approve = approvals.approver(ctx, session, work.reply, stream=work.stream) \
            if approvals is not None else deny_all
        work.reply.begin()
        try:
            result = await self.sessions.run_turn(session, content, on_event=on_event, interrupt=interrupt,
                                                  stream=work.stream, approve=approve, turn=work.turn)
        except LLMError as exc:
            metrics.errors.labels("model").inc()
            if exc.permanent:  # waiting will not help: the user hears it is the setup, the admin what to set
                log.error("model refused for %s (a configuration problem): %s", ctx.session_key, exc)
                await work.reply.fail(MODEL_MISCONFIGURED)
            else:
                log.warning("model failed for %s: %s", ctx.session_key, exc)
                await work.reply.fail(MODEL_UNAVAILABLE)
            return True
        finally:
            slot.interrupt = None
            self._touch(session.id)
        metrics.turn_seconds.labels(ctx.platform).observe(time.monotonic() - started)
        text = result.text if result.status == "interrupted" else (result.text or "(no answer)")
        await work.reply.finish(text, result)
        return not (result.status == "interrupted" and not self.accepting)   # cut by shutdown: not answered

    # -- memory: evict cached conversations of idle sessions ------------------------------------------
    def _touch(self, session_id: str) -> None:
        self._cached[session_id] = time.monotonic()
        self._cached.move_to_end(session_id)
        while len(self._cached) > self.cache_size:
            old, _ = self._cached.popitem(last=False)
            self._drop(old)

    def _forget(self, session_id: str) -> None:
        self._cached.pop(session_id, None)
        self._drop(session_id)

    def _drop(self, session_id: str) -> None:
        self.sessions.forget(session_id)
        key = self._key_of.pop(session_id, None)
        if key is not None and self._session_of.get(key) == session_id:
            del self._session_of[key]

    def sweep(self) -> int:
        """Forget conversations idle for longer than `idle_seconds`; returns how many."""
        cutoff = time.monotonic() - self.idle_seconds
        count = 0
        while self._cached:
            session_id, last = next(iter(self._cached.items()))
            if last > cutoff:
                break
            self._cached.popitem(last=False)
            self._drop(session_id)
            count += 1
        return count

    # -- shutdown ------------------------------------------------------------------------------------
    async def close(self, grace: float) -> None:
        """Take no new work; let running and queued turns finish within `grace`, then stop them."""
        self.accepting = False
        workers = [s.worker for s in self._slots.values() if s.worker is not None]
        if not workers:
            return
        log.info("waiting up to %.0fs for %d sessions to finish their turns", grace, len(workers))
        _, pending = await asyncio.wait(workers, timeout=grace)
        if not pending:
            return
        log.warning("%d sessions still busy after %.0fs: interrupting them", len(pending), grace)
        for slot in list(self._slots.values()):
            if slot.queue:
                log.warning("%d queued messages were not answered before shutdown", len(slot.queue))
            for work in slot.queue:
                self.metrics.queue_depth.labels(work.ctx.platform).dec()
            slot.queue.clear()
            if slot.interrupt is not None:
                slot.interrupt.set()
        _, pending = await asyncio.wait(pending, timeout=5.0)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content or "")
