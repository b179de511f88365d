"""The batch runner: many prompts, each a fresh agent session, run concurrently into a checkpoint.

Input is JSONL, one prompt a line: `{"id": ..., "prompt": ..., "toolsets": [...], "system": ...,
"metadata": {...}}` (the last three optional). A bad line is reported with its number and
skipped. Each prompt gets its own `Agent`, tool registry and workspace (under the checkpoint
directory) and shares one `LLMClient` whose calls pass a `ModelGate`: a semaphore bounding
concurrent model calls plus an optional requests-per-minute limit. Workers are asyncio tasks
(the built-in tools are async: the terminal runs commands as subprocesses). A failing prompt
becomes a failed trajectory with its error; it never stops the batch. Every trajectory is
redacted, then appended durably to the checkpoint, so a killed batch resumes where it was.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from agent.builtin import builtin_tools
from agent.checkpoint_store import CheckpointStore
from agent.llm import LLMClient
from agent.model_call import purpose
from agent.loop import Agent, Conversation
from agent.redact import Redactor
from agent.settings import AgentConfig, ToolsConfig
from agent.tools.registry import Tool, ToolContext, ToolRegistry
from agent.trajectory import Trajectory, TrajectoryRecorder, redact_trajectory
from agent.workspace import Workspace

TOOLSETS: dict[str, str] = {
    "files": "read_file, write_file, list_files in the prompt's workspace",
    "terminal": "shell commands in the prompt's workspace",
    "web": "web_fetch",
    "delegate": "hand sub-tasks to a sub-agent",
    "mcp": "the tools of the configured MCP servers (server__tool)",
}


class InputError(ValueError):
    """The input file cannot be used at all (missing, unreadable)."""


class PromptItem(BaseModel):
    """One line of the input file."""

    model_config = ConfigDict(extra="forbid")

    id: str
    prompt: str
    toolsets: list[str] | None = None
    system: str | None = None
    metadata: dict[str, Any] = {}

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a string or an integer")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("toolsets")
    @classmethod
    def _known_toolsets(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = [v for v in value if v not in TOOLSETS]
            if unknown:
                raise ValueError(f"unknown toolset(s) {', '.join(unknown)}; known: {', '.join(TOOLSETS)}")
        return value


def parse_prompts(path: Path) -> tuple[list[PromptItem], list[str]]:
    """The valid prompts of a JSONL file and one message per bad line ("FILE:LINE: why")."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the input file: {exc.strerror or exc}") from exc
    items: list[PromptItem] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                problems.append(f"{path}:{number}: not valid JSON ({exc})")
                continue
            if not isinstance(data, dict):
                problems.append(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
                continue
            try:
                item = PromptItem.model_validate(data)
            except ValidationError as exc:
                why = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: "
                                f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
                                for e in exc.errors())
                problems.append(f"{path}:{number}: {why}")
                continue
            if item.id in first_line:
                problems.append(f"{path}:{number}: duplicate id {item.id!r} (first on line {first_line[item.id]})")
                continue
            first_line[item.id] = number
            items.append(item)
    return items, problems


def parse_toolsets(text: str) -> list[str]:
    """`files,terminal` -> ["files", "terminal"]; unknown names are a ValueError."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in TOOLSETS]
    if unknown:
        raise ValueError(f"unknown toolset(s) {', '.join(unknown)}; known: {', '.join(TOOLSETS)}")
    return names


def default_toolsets(tools: ToolsConfig) -> list[str]:
    """The toolsets `[tools]` enables."""
    enabled = {"files": tools.files, "terminal": tools.terminal.enabled, "web": tools.web_fetch.enabled,
               "delegate": tools.delegate.enabled}
    return [name for name, on in enabled.items() if on]


def tools_config_for(base: ToolsConfig, toolsets: list[str]) -> ToolsConfig:
    """`[tools]` with exactly `toolsets` switched on (their other settings kept)."""
    chosen = set(toolsets)
    return base.model_copy(update={
        "files": "files" in chosen,
        "terminal": base.terminal.model_copy(update={"enabled": "terminal" in chosen}),
        "web_fetch": base.web_fetch.model_copy(update={"enabled": "web" in chosen}),
        "delegate": base.delegate.model_copy(update={"enabled": "delegate" in chosen}),
    })


def select_prompts(items: list[PromptItem], *, seed: int | None, limit: int | None) -> list[PromptItem]:
    """Input order, or a shuffle fixed by `seed`; then the first `limit`. Same arguments, same set."""
    order = list(items)
    if seed is not None:
        random.Random(seed).shuffle(order)
    if limit is not None:
        order = order[:limit]
    return order


class ModelGate(asyncio.Semaphore):
    """At most `concurrency` model calls at once and, if `per_minute` > 0, calls spaced to that rate.

    A Semaphore, so `LLMClient(concurrency=...)` holds it around every call.
    """

    def __init__(self, concurrency: int, per_minute: float = 0.0) -> None:
        super().__init__(concurrency)
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._next_start = 0.0
        self._spacing = asyncio.Lock()

    async def acquire(self) -> bool:  # type: ignore[override]
        await super().acquire()
        if not self.interval:
            return True
        try:
            async with self._spacing:
                now = asyncio.get_running_loop().time()
                wait = self._next_start - now
                self._next_start = max(now, self._next_start) + self.interval
            if wait > 0:
                await asyncio.sleep(wait)
        except BaseException:
            self.release()
            raise
        return True


@dataclass
class BatchSettings:
    agent: AgentConfig = field(default_factory=AgentConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    toolsets: list[str] | None = None        # None: what [tools] enables
    system_prompt: str = ""
    workers: int = 4
    max_iterations: int | None = None
    keep_workspaces: bool = False
    # tools from outside the agent package: the MCP servers' (offered with the "mcp" toolset, which is
    # on by default when there are any); `tool_filter(names)` applies [toolsets] (None: every tool)
    extra_tools: list[Tool] = field(default_factory=list)
    tool_filter: Callable[[list[str]], set[str] | None] | None = None

    def default_toolsets(self) -> list[str]:
        return default_toolsets(self.tools) + (["mcp"] if self.extra_tools else [])


@dataclass
class BatchSummary:
    selected: int = 0
    already_done: int = 0
    ran: int = 0
    succeeded: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    tool_calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def add(self, trajectory: Trajectory) -> None:
        self.ran += 1
        if trajectory.success:
            self.succeeded += 1
        else:
            self.failed += 1
            self.errors[(trajectory.error or trajectory.status).splitlines()[0][:160]] += 1
        self.prompt_tokens += trajectory.usage.prompt_tokens
        self.completion_tokens += trajectory.usage.completion_tokens
        self.cost += trajectory.usage.cost
        self.tool_calls.update(call.name for call in trajectory.tool_calls)

    def as_dict(self) -> dict[str, Any]:
        return {"selected": self.selected, "already_done": self.already_done, "ran": self.ran,
                "succeeded": self.succeeded, "failed": self.failed, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost": round(self.cost, 6),
                "tool_calls": dict(self.tool_calls.most_common()), "errors": dict(self.errors.most_common(5)),
                "elapsed_s": round(self.elapsed_s, 3)}


ResultCallback = Callable[[Trajectory], Awaitable[None] | None]


class BatchRunner:
    """Runs prompts with `settings.workers` concurrent workers into one checkpoint store."""

    def __init__(self, settings: BatchSettings, llm: LLMClient, store: CheckpointStore,
                 redactor: Redactor) -> None:
        self.settings = settings
        self.llm = llm
        self.store = store
        self.redactor = redactor

    async def run(self, items: list[PromptItem], *, on_result: ResultCallback | None = None) -> BatchSummary:
        """Run every item not yet in the checkpoint; returns what this run did."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        done = self.store.completed_ids()
        summary = BatchSummary(selected=len(items))
        queue: asyncio.Queue[PromptItem] = asyncio.Queue()
        for item in items:
            if item.id in done:
                summary.already_done += 1
            else:
                queue.put_nowait(item)

        async def worker() -> None:
            while True:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                trajectory = await self.run_one(item)
                await self.store.append(trajectory)
                summary.add(trajectory)
                if on_result is not None:
                    outcome = on_result(trajectory)
                    if asyncio.iscoroutine(outcome):
                        await outcome

        count = max(1, min(self.settings.workers, queue.qsize() or 1))
        tasks = [asyncio.create_task(worker(), name=f"batch-worker-{n}") for n in range(count)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            summary.elapsed_s = loop.time() - started
        return summary

    async def run_one(self, item: PromptItem) -> Trajectory:
        """One prompt in a fresh session; always returns a (redacted) trajectory, failed or not."""
        toolsets = item.toolsets if item.toolsets is not None else (
            self.settings.toolsets if self.settings.toolsets is not None else self.settings.default_toolsets())
        system = item.system if item.system is not None else self.settings.system_prompt
        trajectory = Trajectory(id=item.id, prompt=item.prompt, model=self.llm.model, system=system,
                                toolsets=list(toolsets), metadata=dict(item.metadata))
        recorder = TrajectoryRecorder(trajectory)
        recorder.start()
        conversation = Conversation(system=system)
        root = self.store.workspace_for(item.id)
        try:
            await asyncio.to_thread(_fresh_directory, root)
            registry = ToolRegistry()
            agent = Agent(self.llm, registry, self.settings.agent)
            for t in builtin_tools(tools_config_for(self.settings.tools, toolsets), agent.run_sub_agent):
                registry.register(t)
            if "mcp" in toolsets:
                for t in self.settings.extra_tools:
                    if registry.get(t.name) is None:
                        registry.register(t)
            offered = registry
            if self.settings.tool_filter is not None:
                allowed = self.settings.tool_filter(registry.names())
                offered = registry if allowed is None else registry.only(sorted(allowed))
            trajectory.tools = offered.schemas()
            ctx = ToolContext(workspace=Workspace(root), session_id=f"batch:{item.id}", user_id="batch")
            with purpose("batch"):
                result = await agent.run_turn(conversation, item.prompt, ctx, on_event=recorder,
                                              max_iterations=self.settings.max_iterations, stream=False,
                                              tools=offered)
            recorder.finish(conversation.messages, status=result.status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one prompt's failure is recorded, never fatal
            messages = conversation.messages or [{"role": "user", "content": item.prompt}]
            recorder.finish(messages, status="error", error=f"{type(exc).__name__}: {exc}")
        finally:
            if not self.settings.keep_workspaces:
                await asyncio.to_thread(shutil.rmtree, root, True)
        return redact_trajectory(trajectory, self.redactor)


def _fresh_directory(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)  # left over from a run that was killed
    path.mkdir(parents=True, exist_ok=True)
