"""Events an agent turn emits, so callers (gateway, CLI, batch) observe without coupling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class TextDelta:
    """A piece of the assistant's reply as it streams."""

    text: str


@dataclass(frozen=True)
class MessageAdded:
    """A message became part of the conversation (assistant, tool result, or summary)."""

    message: dict[str, Any]


@dataclass(frozen=True)
class ToolStarted:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolFinished:
    call_id: str
    name: str
    arguments: str
    ok: bool
    result: str
    duration_ms: float


@dataclass(frozen=True)
class ModelUsage:
    """One model call's token usage and cost."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    purpose: str = "chat"


@dataclass(frozen=True)
class ModelFallback:
    """The agent moved from one model to the next after `error`."""

    failed_model: str
    next_model: str
    error: str


@dataclass(frozen=True)
class Compressed:
    """Older turns were summarised to fit the context window."""

    first_index: int
    last_index: int
    tokens_before: int
    tokens_after: int
    summary: dict[str, Any] = field(default_factory=dict)


Event = Union[TextDelta, MessageAdded, ToolStarted, ToolFinished, ModelUsage, ModelFallback, Compressed]
EventSink = Callable[[Event], Awaitable[None]]


async def ignore_event(_event: Event) -> None:
    """An EventSink that drops everything."""
