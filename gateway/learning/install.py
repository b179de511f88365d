"""Wiring the learning loop into a Runtime: memory, the memory tool, the frozen memory snapshot
in the prompt, and the `LearningLoop` as a turn observer and the `learning` service.

    await install_learning(runtime)     # from Runtime.open, after install_skills(runtime)
    await runtime.services["learning"].resume()   # the gateway: re-run reviews a dead process left
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from agent.memory import MemoryOpError, MemoryStore, Scope
from agent.prompt import PromptContext
from agent.redact import Redactor
from agent.tools.memory_tool import memory as memory_tool
from gateway.learning.log import LearningLog
from gateway.learning.loop import MAX_TRACKED_SESSIONS, LearningLoop

log = logging.getLogger(__name__)


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
        # per person too: in a shared session the prompt carries the USER.md of whoever is answered
        key = (f"{ctx.session_id}:{ctx.platform}:{ctx.user_id}" if ctx.session_id
               else f"{ctx.team}:{ctx.platform}:{ctx.chat_id}:{ctx.user_id}")
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


async def install_learning(runtime: Any) -> LearningLoop:
    """Give `runtime` memory and the learning loop (idempotent)."""
    existing = runtime.services.get("learning")
    if isinstance(existing, LearningLoop):
        return existing
    redactor = Redactor.from_environ()
    memory = MemoryStore(runtime.home.root, runtime.config.memory.memory_chars, runtime.config.memory.user_chars,
                         redactor, versions=runtime.store)
    try:
        if await memory.sync_store():
            log.info("memory files taken into the store")
    except (OSError, MemoryOpError) as exc:
        log.warning("could not bring the memory files in step with the store: %s", exc)
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
