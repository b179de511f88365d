"""The runtime: config, home, store, model client, tools and agent, opened and closed together.

Every command that talks to the agent (`hermes chat`, the gateway, cron runs) opens one
Runtime and asks its `SessionService` to run turns.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.builtin import builtin_tools
from agent.events import Event
from agent.llm import LLMClient
from agent.loop import Agent, Conversation, TurnResult
from agent.model_pool import ModelWorkerPool
from agent.prompt import PromptBuilder
from agent.secret_fields import redactor_for_config
from agent.tools.registry import Tool, ToolContext, ToolRegistry
from agent.tools.web_search import web_search_tools
from agent.workspace import Workspace
from gateway.config import Config
from gateway.home import Home
from gateway.learning.install import install_learning
from gateway.mcp_wiring import close_mcp, install_mcp
from gateway.skills_wiring import install_skills
from gateway.store import SessionRecord, StateStore, open_configured_store

log = logging.getLogger(__name__)


class TurnObserver(Protocol):
    """Something that watches turns (the learning checkpoint, metrics): called by SessionService."""

    async def on_event(self, session: SessionRecord, event: Event) -> None: ...

    async def on_turn_end(self, session: SessionRecord, conversation: Conversation, result: TurnResult) -> None: ...


WORKSPACES_ENV = "HERMES_WORKSPACES_DIR"


def workspaces_root(config: Config, home: Home) -> Path:
    """`[tools] workspaces_dir`, else $HERMES_WORKSPACES_DIR, else HERMES_HOME/workspaces (a
    relative path is taken from the home)."""
    chosen = config.tools.workspaces_dir.strip() or os.environ.get(WORKSPACES_ENV, "").strip()
    if not chosen:
        return home.workspaces_dir
    path = Path(chosen).expanduser()
    return path if path.is_absolute() else home.root / path


@dataclass
class Runtime:
    config: Config
    home: Home
    store: StateStore
    llm: LLMClient
    tools: ToolRegistry
    agent: Agent
    prompt: PromptBuilder
    services: dict[str, Any] = field(default_factory=dict)
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    observers: list[TurnObserver] = field(default_factory=list)
    model_pool: ModelWorkerPool | None = None
    _workspaces: dict[str, Workspace] = field(default_factory=dict)

    @classmethod
    async def open(cls, config: Config, home: Home, *, extra_tools: list[Tool] | None = None,
                   model_workers: int = 0, learning: bool = True) -> Runtime:
        """Open everything; `model_workers` > 0 runs model calls in that many worker processes.
        `learning=False` (the control run of `hermes eval learning`): no reviews, no memory tool,
        and the agent cannot write skills (it can still read the library)."""
        home.ensure()
        store = await open_configured_store(config, home, redactor_for_config(config.model_dump(mode="json")))
        pool: ModelWorkerPool | None = None
        try:
            if model_workers:
                pool = ModelWorkerPool(model_workers)
                await pool.start()
            llm = LLMClient(config.model, concurrency=asyncio.Semaphore(config.agent.max_concurrent_model_calls),
                            caller=pool)
            registry = ToolRegistry()
            agent = Agent(llm, registry, config.agent)
            for t in builtin_tools(config.tools, agent.run_sub_agent):
                registry.register(t)
            for t in web_search_tools(config.web_search):
                registry.register(t)
            for t in extra_tools or []:
                registry.register(t)
            prompt = PromptBuilder(extra=config.agent.system_prompt)
            runtime = cls(config, home, store, llm, registry, agent, prompt, model_pool=pool)
            await install_skills(runtime)
            if learning:
                await install_learning(runtime)
            else:
                registry.remove("skill_manage")
            await install_mcp(runtime)
        except BaseException:
            if pool is not None:
                await pool.close()
            await store.close()
            raise
        return runtime

    @property
    def workspaces_root(self) -> Path:
        """Where the sessions' workspaces live (see `workspaces_root`)."""
        return workspaces_root(self.config, self.home)

    def workspace_for(self, session_key: str) -> Workspace:
        """The session's workspace folder: a readable name plus a hash, so keys never collide."""
        workspace = self._workspaces.get(session_key)
        if workspace is None:  # name and mkdir once per session, not on every turn
            readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in session_key)[:80].strip(".") \
                or "default"
            digest = hashlib.sha256(session_key.encode()).hexdigest()[:10]
            workspace = Workspace(self.workspaces_root / f"{readable}-{digest}").ensure()
            self._workspaces[session_key] = workspace
        return workspace

    def pin_workspace(self, session_key: str, folder: Path) -> Workspace:
        """Use `folder` (which must exist) as the session's workspace instead of one under the home:
        `hermes chat` works in the current folder."""
        workspace = Workspace(folder.resolve())
        self._workspaces[session_key] = workspace
        return workspace

    def tool_context(self, session: SessionRecord, **kwargs: Any) -> ToolContext:
        return ToolContext(workspace=self.workspace_for(session.key), session_id=session.id,
                           user_id=session.user_id, team=session.team, platform=session.platform,
                           services=self.services, **kwargs)

    def spawn(self, coroutine: Any, *, name: str = "") -> asyncio.Task[Any]:
        """Run background work (e.g. a learning checkpoint) that `drain` waits for before exit."""
        task = asyncio.create_task(coroutine, name=name or None)
        self.background.add(task)

        def finished(t: asyncio.Task[Any]) -> None:
            self.background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task %s failed", t.get_name(), exc_info=t.exception())

        task.add_done_callback(finished)
        return task

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for background work to finish (a one-shot chat must not lose what it learned)."""
        while self.background:
            done, pending = await asyncio.wait(set(self.background), timeout=timeout)
            if pending and timeout is not None:
                log.warning("%d background tasks still running after %.0fs", len(pending), timeout)
                return

    async def close(self) -> None:
        await self.drain()
        learning = self.services.get("learning")
        if learning is not None:
            await learning.close()  # its idle sweeper and next-day timer
        await close_mcp(self)
        if self.model_pool is not None:
            await self.model_pool.close()
        await self.store.close()
