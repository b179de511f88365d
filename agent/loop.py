"""The agent loop: call the model, run the tools it asks for, repeat until it answers.

One `run_turn` takes a user message through as many model calls as the model needs (capped by
`[agent].max_iterations`). Tool errors go back to the model as results; a turn can be
interrupted at any point (`interrupt` event), leaving the conversation consistent; when the
conversation nears the context window, older turns are summarised (the first user turn and
the most recent messages are kept verbatim). Everything that happens is reported as events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Literal, TypeVar

from agent.events import (Compressed, EventSink, MessageAdded, ModelFallback, ModelUsage, TextDelta,
                          ToolFinished, ToolStarted, ignore_event)
from agent.llm import CallOptions, ContextWindowExceeded, LLMClient, LLMResponse
from agent.model_call import current_purpose, purpose
from agent.settings import AgentConfig
from agent.text import repair, repair_text
from agent.tools.registry import ToolContext, ToolRegistry

log = logging.getLogger(__name__)

T = TypeVar("T")

TurnStatus = Literal["done", "interrupted", "max_iterations"]

INTERRUPTED_RESULT = "Interrupted by the user before this tool finished."
SUMMARY_PREFIX = "[Summary of earlier conversation]\n"
SUMMARISE_INSTRUCTIONS = (
    "Summarise the conversation below for your own later use. Keep every fact, decision, file "
    "name, command, error and open question that later turns may need; drop chit-chat. Write "
    "plain prose and bullet points, at most 400 words."
)
SUB_AGENT_PROMPT = (
    "You are a sub-agent. Complete the task you are given using your tools, then reply with "
    "the result only: it is passed back verbatim to the agent that delegated the task."
)


class Interrupted(Exception):
    """The turn was stopped by the user."""


@dataclass
class Conversation:
    """The system prompt and the messages of one session (without the system message)."""

    system: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    # (system, tools, messages snapshot, token count) of the last exact count: recounted only
    # when the conversation changed (the snapshot compares by identity first, so it is cheap)
    _token_count: tuple[str, Any, tuple[Any, ...], int] | None = field(
        default=None, init=False, repr=False, compare=False)

    def for_model(self) -> list[dict[str, Any]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.messages


@dataclass(frozen=True)
class TurnResult:
    text: str
    status: TurnStatus
    tool_calls: int
    iterations: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


class Agent:
    """Runs turns with one model client and one tool registry."""

    def __init__(self, llm: LLMClient, tools: ToolRegistry, settings: AgentConfig) -> None:
        self.llm = llm
        self.tools = tools
        self.settings = settings
        # UTF-8 size of the tool schemas, by (name, description, parameters object) of each tool;
        # the parameters objects are kept so their ids stay theirs
        self._schema_sizes: dict[tuple[tuple[str, str, int], ...], tuple[list[Any], int]] = {}

    async def run_turn(
        self,
        conversation: Conversation,
        user_message: dict[str, Any] | str | None,
        ctx: ToolContext,
        *,
        on_event: EventSink = ignore_event,
        interrupt: asyncio.Event | None = None,
        max_iterations: int | None = None,
        stream: bool | None = None,
        tools: ToolRegistry | None = None,
        options: CallOptions | None = None,
    ) -> TurnResult:
        """Add `user_message` (if any) and run until the model answers without tool calls.

        `tools` narrows the agent's registry for this turn (toolsets per platform, team, channel);
        `options` (model, sampling parameters) apply to every model call of the turn.
        """
        registry = self.tools if tools is None else tools
        interrupt = interrupt or asyncio.Event()
        limit = max_iterations or self.settings.max_iterations
        totals = {"prompt": 0, "completion": 0, "cost": 0.0}
        tool_calls = 0

        async def add(message: dict[str, Any]) -> dict[str, Any]:
            message = repair(message)      # a lone surrogate (user text, tool result, model reply) must not end the turn
            conversation.messages.append(message)
            await on_event(MessageAdded(message))
            return message

        if user_message is not None:
            await add({"role": "user", "content": user_message} if isinstance(user_message, str) else user_message)

        async def on_delta(text: str) -> None:
            await on_event(TextDelta(repair_text(text)))

        async def on_fallback(failed: str, nxt: str, error: str) -> None:
            await on_event(ModelFallback(failed, nxt, error))

        schemas = registry.schemas() or None
        iterations = 0
        try:
            while True:
                final_round = iterations >= limit
                await self._compress_if_needed(conversation, on_event, schemas)
                extra = [{
                    "role": "system",
                    "content": f"You have used all {limit} steps allowed for this turn. Do not call tools. "
                               "Tell the user what you did, what is left, and how to continue.",
                }] if final_round else []
                response = await self._interruptible(interrupt, self._complete(
                    conversation, extra, None if final_round else schemas, on_delta, on_fallback, on_event,
                    stream, options))
                iterations += 1
                totals["prompt"] += response.prompt_tokens
                totals["completion"] += response.completion_tokens
                totals["cost"] += response.cost
                await on_event(ModelUsage(response.model, response.prompt_tokens, response.completion_tokens,
                                          response.cost, purpose=current_purpose()))
                message = response.message
                calls = message.get("tool_calls") or []
                if final_round and calls:
                    message = {"role": "assistant", "content": message.get("content") or ""}
                    calls = []
                message = await add(message)
                calls = message.get("tool_calls") or []
                if not calls:
                    return TurnResult(str(message.get("content") or ""), "max_iterations" if final_round else "done",
                                      tool_calls, iterations, totals["prompt"], totals["completion"],
                                      totals["cost"])
                for index, call in enumerate(calls):
                    if interrupt.is_set():
                        for pending in calls[index:]:
                            await add(_tool_message(pending["id"], INTERRUPTED_RESULT))
                        raise Interrupted
                    tool_calls += 1
                    result_text = await self._run_tool(registry, call, ctx, on_event, interrupt)
                    await add(_tool_message(call["id"], result_text))
                    if result_text == INTERRUPTED_RESULT:
                        for pending in calls[index + 1:]:
                            await add(_tool_message(pending["id"], INTERRUPTED_RESULT))
                        raise Interrupted
        except Interrupted:
            return TurnResult("", "interrupted", tool_calls, iterations, totals["prompt"], totals["completion"],
                              totals["cost"])

    async def _complete(self, conversation: Conversation, extra: list[dict[str, Any]],
                        schemas: list[dict[str, Any]] | None, on_delta: Any, on_fallback: Any,
                        on_event: EventSink, stream: bool | None, options: CallOptions | None = None) -> LLMResponse:
        try:
            return await self.llm.complete(conversation.for_model() + extra, schemas, on_delta=on_delta,
                                           on_fallback=on_fallback, stream=stream, options=options)
        except ContextWindowExceeded:
            log.warning("context window exceeded; compressing and retrying once")
            if not await self._compress(conversation, on_event):
                raise
            return await self.llm.complete(conversation.for_model() + extra, schemas, on_delta=on_delta,
                                           on_fallback=on_fallback, stream=stream, options=options)

    async def _run_tool(self, registry: ToolRegistry, call: dict[str, Any], ctx: ToolContext,
                        on_event: EventSink, interrupt: asyncio.Event) -> str:
        function = call.get("function", {})
        name = function.get("name", "")
        raw = function.get("arguments") or "{}"
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {}
        await on_event(ToolStarted(call["id"], name, parsed if isinstance(parsed, dict) else {}))
        try:
            result = await self._interruptible(interrupt, registry.execute(ctx, name, raw))
        except Interrupted:
            await on_event(ToolFinished(call["id"], name, raw, False, INTERRUPTED_RESULT, 0.0))
            return INTERRUPTED_RESULT
        await on_event(ToolFinished(call["id"], name, raw, result.ok, result.content, result.duration_ms))
        return result.content

    @staticmethod
    async def _interruptible(interrupt: asyncio.Event, work: Awaitable[T]) -> T:
        """Await `work`, cancelling it and raising Interrupted as soon as `interrupt` is set."""
        task = asyncio.ensure_future(work)
        if interrupt.is_set():
            task.cancel()
            raise Interrupted
        waiter = asyncio.ensure_future(interrupt.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task in done:
            return task.result()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
        raise Interrupted

    # -- context compression --------------------------------------------------------------------
    async def _compress_if_needed(self, conversation: Conversation, on_event: EventSink,
                                  schemas: list[dict[str, Any]] | None) -> None:
        limit = await self.llm.context_window_async() * self.settings.compress_at
        if _token_upper_bound(conversation, self._schemas_size(schemas)) <= limit:
            return  # far below the window: the exact count (about 1 ms of tokenizing) cannot exceed it
        if self._count_tokens(conversation, schemas) > limit:
            await self._compress(conversation, on_event)

    def _schemas_size(self, schemas: list[dict[str, Any]] | None) -> int:
        if not schemas:
            return 0
        functions = [s.get("function") or {} for s in schemas]
        key = tuple((str(f.get("name")), str(f.get("description")), id(f.get("parameters"))) for f in functions)
        cached = self._schema_sizes.get(key)
        if cached is None:
            if len(self._schema_sizes) >= 64:
                self._schema_sizes.clear()
            size = len(json.dumps(schemas, ensure_ascii=False).encode())
            cached = self._schema_sizes[key] = ([f.get("parameters") for f in functions], size)
        return cached[1]

    def _count_tokens(self, conversation: Conversation, schemas: list[dict[str, Any]] | None) -> int:
        """The exact count, cached until the conversation, its system prompt or the tools change."""
        snapshot = tuple(conversation.messages)
        cached = conversation._token_count
        if cached is not None and cached[0] == conversation.system and cached[1] is schemas \
                and cached[2] == snapshot:
            return cached[3]
        used = self.llm.count_tokens(conversation.for_model(), schemas)
        conversation._token_count = (conversation.system, schemas, snapshot, used)
        return used

    def _compressible_range(self, messages: list[dict[str, Any]]) -> tuple[int, int] | None:
        """Indices [first, last] to summarise: after the first user turn, before the recent tail."""
        if len(messages) < 4:
            return None
        first = 1  # keep messages[0], the first user turn
        tail_start = max(first + 1, len(messages) - self.settings.keep_recent_messages)
        # never start the kept tail with tool results cut off from their assistant call
        while tail_start > first and messages[tail_start].get("role") == "tool":
            tail_start -= 1
        last = tail_start - 1
        if last - first < 1:
            return None
        return first, last

    async def _compress(self, conversation: Conversation, on_event: EventSink) -> bool:
        span = self._compressible_range(conversation.messages)
        if span is None:
            return False
        first, last = span
        before = self.llm.count_tokens(conversation.for_model())
        middle = conversation.messages[first:last + 1]
        transcript = "\n\n".join(_render_for_summary(m) for m in middle)
        with purpose("compress"):
            response = await self.llm.complete(
                [{"role": "system", "content": SUMMARISE_INSTRUCTIONS}, {"role": "user", "content": transcript}],
                None, stream=False,
            )
        await on_event(ModelUsage(response.model, response.prompt_tokens, response.completion_tokens,
                                  response.cost, purpose="compress"))
        summary = {"role": "user", "content": SUMMARY_PREFIX + str(response.message.get("content") or "")}
        conversation.messages[first:last + 1] = [summary]
        after = self.llm.count_tokens(conversation.for_model())
        log.info("compressed messages %d..%d: %d -> %d tokens", first, last, before, after)
        await on_event(Compressed(first, last, before, after, summary))
        return True

    # -- delegation -----------------------------------------------------------------------------
    async def run_sub_agent(self, ctx: ToolContext, task: str, context: str = "") -> str:
        """Run a sub-task in a fresh conversation and return the sub-agent's final answer."""
        sub_ctx = dataclasses.replace(ctx, depth=ctx.depth + 1)
        conversation = Conversation(system=SUB_AGENT_PROMPT)
        request = task if not context else f"{task}\n\nContext:\n{context}"
        with purpose("delegate"):
            result = await self.run_turn(conversation, request, sub_ctx, stream=False)
        return result.text or f"(the sub-agent ended with status {result.status} and no answer)"


TOKENS_PER_MESSAGE_BOUND = 16   # role, separators and name: a few tokens in every tokenizer
TOKENS_FIXED_BOUND = 64


def _token_upper_bound(conversation: Conversation, schemas_size: int) -> float:
    """More tokens than the conversation (with tool schemas of `schemas_size` UTF-8 bytes) can
    possibly take, computed without a tokenizer.

    A byte-level BPE token covers at least one UTF-8 byte, so text never has more tokens than
    bytes. Content that is not plain text (images, audio) has no such bound: infinity then.
    """
    total = len(conversation.system.encode()) + TOKENS_FIXED_BOUND + schemas_size
    for message in conversation.messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content.encode())
        elif content is not None:
            return float("inf")
        calls = message.get("tool_calls")
        if calls:
            total += len(json.dumps(calls, ensure_ascii=False).encode())
        total += TOKENS_PER_MESSAGE_BOUND + len(str(message.get("name") or message.get("tool_call_id") or ""))
    return float(total)


def _tool_message(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _render_for_summary(message: dict[str, Any]) -> str:
    role = message.get("role", "")
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    text = str(content or "")
    if role == "tool" and len(text) > 2000:
        text = text[:1000] + " [...] " + text[-500:]
    calls = message.get("tool_calls") or []
    if calls:
        text += " " + " ".join(f"[called {c['function']['name']}({c['function'].get('arguments', '')[:300]})]"
                               for c in calls)
    return f"{role}: {text}"
