"""The trajectory record: everything one agent run did, ready to be written as one JSON line.

A `Trajectory` holds the system prompt, every message (OpenAI chat format: user, assistant
with `tool_calls`, tool results), the tools offered, each tool call with its timing and
outcome, token usage and cost, the model, and whether the run succeeded (or the error that
ended it). `TrajectoryRecorder` is an `EventSink` that fills one in while `Agent.run_turn`
runs. `redact_trajectory` masks secrets in every string (tool-call arguments included) and
must run before a trajectory is written anywhere.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.events import Compressed, Event, MessageAdded, ModelUsage, ToolFinished
from agent.redact import Redactor, redact_json_text, redact_message, redact_value

SCHEMA_VERSION = 1


class Record(BaseModel):
    """Base of the records: unknown keys are kept out, so a typo in a file is an error."""

    model_config = ConfigDict(extra="forbid")


class ToolCallRecord(Record):
    call_id: str
    name: str
    arguments: str
    ok: bool
    result: str
    duration_ms: float


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, prompt_tokens: int, completion_tokens: int, cost: float) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost += cost
        self.calls += 1


class Timings(Record):
    started_at: float = 0.0       # unix time
    finished_at: float = 0.0
    duration_s: float = 0.0
    model_calls: int = 0


class CompressionInfo(Record):
    tokens_before: int
    tokens_after: int
    target_tokens: int
    fits: bool
    summarised_tool_outputs: int = 0
    summarised_span: bool = False


class Trajectory(Record):
    """One prompt's run, as written to a checkpoint shard (one JSON object a line)."""

    id: str
    prompt: str
    model: str = ""
    system: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list, description="without the system message")
    tools: list[dict[str, Any]] = Field(default_factory=list, description="OpenAI tool schemas offered")
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)
    success: bool = False
    status: str = ""              # done | max_iterations | error
    error: str | None = None
    final: str = ""               # the last assistant answer
    toolsets: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: str = "batch"         # batch | session
    compression: CompressionInfo | None = None
    schema_version: int = SCHEMA_VERSION

    def model_turns(self) -> int:
        """How many replies the model gave (assistant messages)."""
        return sum(1 for m in self.messages if m.get("role") == "assistant")

    def chat_messages(self) -> list[dict[str, Any]]:
        """The messages with the system prompt first, as a model saw them."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [dict(m) for m in self.messages]

    def to_line(self) -> str:
        """One JSON line (no newline inside, newline at the end)."""
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> Trajectory:
        return cls.model_validate_json(line)


class TrajectoryRecorder:
    """An EventSink recording messages, tool calls and usage of one run."""

    def __init__(self, trajectory: Trajectory) -> None:
        self.trajectory = trajectory

    async def __call__(self, event: Event) -> None:
        t = self.trajectory
        if isinstance(event, MessageAdded):
            pass  # the conversation object is the source of the messages; see `finish`
        elif isinstance(event, ToolFinished):
            t.tool_calls.append(ToolCallRecord(call_id=event.call_id, name=event.name, arguments=event.arguments,
                                               ok=event.ok, result=event.result,
                                               duration_ms=round(event.duration_ms, 3)))
        elif isinstance(event, ModelUsage):
            t.usage.add(event.prompt_tokens, event.completion_tokens, event.cost)
            t.timings.model_calls += 1
            if event.purpose != "compress" and event.model:
                t.model = event.model  # the model that answered (a fallback, perhaps)
        elif isinstance(event, Compressed):
            t.metadata.setdefault("context_compressions", 0)
            t.metadata["context_compressions"] += 1

    def start(self) -> None:
        self.trajectory.timings.started_at = time.time()

    def finish(self, messages: list[dict[str, Any]], *, status: str, error: str | None = None) -> Trajectory:
        t = self.trajectory
        t.messages = [dict(m) for m in messages]
        t.timings.finished_at = time.time()
        t.timings.duration_s = round(t.timings.finished_at - t.timings.started_at, 4)
        t.status = status
        t.error = error
        t.success = status == "done" and error is None
        finals = [m for m in t.messages if m.get("role") == "assistant" and not m.get("tool_calls")]
        t.final = str(finals[-1].get("content") or "") if finals else ""
        return t


def redact_trajectory(trajectory: Trajectory, redactor: Redactor) -> Trajectory:
    """A copy with every secret masked: prompt, system, messages, tool calls, results, error, metadata."""
    data = trajectory.model_dump(mode="python")
    messages = [redact_message(m, redactor) for m in data.pop("messages")]
    calls = data.pop("tool_calls")
    for call in calls:
        call["arguments"] = redact_json_text(call["arguments"], redactor)
        call["result"] = redactor.redact(call["result"])
        call["name"] = redactor.redact(call["name"])
    tools = data.pop("tools")  # tool schemas come from our code, not from users
    cleaned = redact_value(data, redactor)
    cleaned.update(messages=messages, tool_calls=calls, tools=tools)
    return Trajectory.model_validate(cleaned)
