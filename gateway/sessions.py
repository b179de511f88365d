"""Running turns for persisted sessions: load the conversation, run the agent, store what happens.

The user's message is committed to the store before the model is called, and every message
the turn adds is committed as it is added, so a crash loses nothing already received. The
session's `updated_at` is written once, when the turn ends (one store round trip per message,
not two).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent.events import Compressed, Event, EventSink, MessageAdded, ModelUsage, ToolFinished, ignore_event
from agent.loop import Conversation, TurnResult
from agent.prompt import PromptContext
from agent.tools.registry import Approver, ToolRegistry, deny_all
from gateway.runtime import Runtime
from gateway.store import SessionRecord
from gateway.toolsets import tools_for

log = logging.getLogger(__name__)


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
    ) -> TurnResult:
        query = user_message if isinstance(user_message, str) else str(user_message.get("content", ""))
        conversation = await self.conversation(session, query)
        store = self.runtime.store

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
                                                       max_iterations=max_iterations, tools=self.tools_for(session))
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
