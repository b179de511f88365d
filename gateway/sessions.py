"""Running turns for persisted sessions: load the conversation, run the agent, store what happens.

The user's message is committed to the store before the model is called, and every message
the turn adds is committed as it is added, so a crash loses nothing already received. The
session's `updated_at` is written once, when the turn ends (one store round trip per message,
not two).

A caller that owns the conversation (the OpenAI-compatible API) passes a `TurnInput`: the
messages its client sent before the new one (stored and added to the conversation, except those
the conversation already ends with), the client's own instructions (appended to the system
prompt for this turn only, marked as the client's), and the turn's model and sampling options.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from agent.events import Compressed, Event, EventSink, MessageAdded, ModelUsage, ToolFinished, ignore_event
from agent.llm import CallOptions
from agent.loop import SUMMARY_PREFIX, Conversation, TurnResult
from agent.prompt import PromptContext
from agent.tools.registry import Approver, ToolRegistry, deny_all
from gateway.runtime import Runtime
from gateway.store import SessionRecord
from gateway.toolsets import tools_for

log = logging.getLogger(__name__)

CLIENT_INSTRUCTIONS = (
    "\n\n## Instructions from the API client\n"
    "The application that sends this conversation through the API added the instructions below. "
    "Follow them where they do not conflict with everything above.\n\n"
)


@dataclass(frozen=True)
class TurnInput:
    """What a caller that owns the conversation adds to a turn (see the module docstring)."""

    history: tuple[dict[str, Any], ...] = ()
    instructions: str = ""
    options: CallOptions | None = None


def _visible(message: dict[str, Any]) -> tuple[str, str] | None:
    """(role, text) of a user message or an assistant answer; None for tool traffic."""
    role = message.get("role")
    if role not in ("user", "assistant") or message.get("tool_calls"):
        return None
    content = message.get("content")
    if isinstance(content, list):
        content = "\n".join(str(p.get("text") or (p.get("image_url") or {}).get("url") or "")
                            for p in content if isinstance(p, dict))
    return str(role), str(content or "")


def unseen(stored: list[dict[str, Any]], sent: tuple[dict[str, Any], ...] | list[dict[str, Any]]) \
        -> list[dict[str, Any]]:
    """The messages of `sent` that are not already the end of `stored`.

    A client that keeps its own copy of the conversation sends it again with every request: its
    longest leading run that equals the stored conversation's latest visible messages (after the
    last summary, if older turns were compressed) is dropped; the rest is new.
    """
    visible = [v for v in map(_visible, stored) if v is not None]
    for index in range(len(stored) - 1, -1, -1):
        if str(stored[index].get("content") or "").startswith(SUMMARY_PREFIX):
            visible = [v for v in map(_visible, stored[index + 1:]) if v is not None]
            break
    keys = [_visible(m) for m in sent]
    for cut in range(len(sent), 0, -1):
        size = min(cut, len(visible))
        if size and keys[cut - 1] == visible[-1] and keys[cut - size:cut] == visible[len(visible) - size:]:
            return list(sent[cut:])
    return list(sent)


class SessionService:
    """Turns for sessions, with their conversations loaded on demand from the store."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._conversations: dict[str, Conversation] = {}

    async def conversation(self, session: SessionRecord, query: str = "") -> Conversation:
        conversation = self._conversations.get(session.id)
        if conversation is None:
            messages = await self.runtime.store.load_messages(session.id)
            conversation = Conversation(system="", messages=messages)
            self._conversations[session.id] = conversation
        conversation.system = await self.runtime.prompt.build(PromptContext(
            session_id=session.id, user_id=session.user_id, platform=session.platform,
            chat_id=session.chat_id, team=session.team, query=query))
        return conversation

    def forget(self, session_id: str) -> None:
        """Drop a cached conversation (it is reloaded from the store when needed)."""
        self._conversations.pop(session_id, None)

    def tools_for(self, session: SessionRecord) -> ToolRegistry | None:
        """The session's toolset ([toolsets] by channel, admin, team, platform), None for all tools."""
        config = self.runtime.config
        section = getattr(config, session.platform, None)
        is_admin = session.user_id in getattr(section, "admins", [])
        allowed = tools_for(config.toolsets, session.platform, session.team, session.chat_id, is_admin,
                            self.runtime.tools.names())
        return None if allowed is None else self.runtime.tools.only(sorted(allowed))

    async def run_turn(
        self,
        session: SessionRecord,
        user_message: str | dict[str, Any],
        *,
        on_event: EventSink = ignore_event,
        interrupt: asyncio.Event | None = None,
        approve: Approver = deny_all,
        stream: bool | None = None,
        max_iterations: int | None = None,
        turn: TurnInput | None = None,
    ) -> TurnResult:
        query = user_message if isinstance(user_message, str) else str(user_message.get("content", ""))
        conversation = await self.conversation(session, query)
        store = self.runtime.store
        turn = turn or TurnInput()
        if turn.instructions:
            conversation.system += CLIENT_INSTRUCTIONS + turn.instructions
        for message in unseen(conversation.messages, turn.history):
            await store.add_message(session.id, message, touch=False)
            conversation.messages.append(message)

        async def persist(event: Event) -> None:
            if isinstance(event, MessageAdded):
                await store.add_message(session.id, event.message, touch=False)
            elif isinstance(event, ToolFinished):
                await store.record_tool_call(session.id, call_id=event.call_id, name=event.name,
                                             arguments=event.arguments, ok=event.ok, result=event.result,
                                             duration_ms=event.duration_ms)
            elif isinstance(event, ModelUsage):
                await store.record_usage(session.id, model=event.model, prompt_tokens=event.prompt_tokens,
                                         completion_tokens=event.completion_tokens, cost=event.cost,
                                         purpose=event.purpose)
            elif isinstance(event, Compressed):
                seqs = await store.message_seqs(session.id)
                await store.compact_messages(session.id, seqs[event.first_index], seqs[event.last_index],
                                             event.summary)
            for observer in self.runtime.observers:
                await observer.on_event(session, event)
            await on_event(event)

        ctx = self.runtime.tool_context(session, approve=approve)
        try:
            result = await self.runtime.agent.run_turn(conversation, user_message, ctx, on_event=persist,
                                                       interrupt=interrupt, stream=stream,
                                                       max_iterations=max_iterations, tools=self.tools_for(session),
                                                       options=turn.options)
        except BaseException:
            # the in-memory copy may be ahead of or behind the store: reload it next time
            self.forget(session.id)
            try:
                await asyncio.shield(store.touch_session(session.id))
            except Exception:  # noqa: BLE001 - best effort: the turn's own error is the one to raise
                log.debug("could not update session %s after a failed turn", session.id, exc_info=True)
            raise
        await store.touch_session(session.id)
        for observer in self.runtime.observers:
            await observer.on_turn_end(session, conversation, result)
        return result
