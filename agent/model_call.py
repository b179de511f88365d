"""One model call, without retries or fallbacks: the seam between the LLM client and LiteLLM.

`LLMClient` decides what to call and what to do when a call fails; a `ModelCaller` makes one
call. `LiteLLMCaller` runs LiteLLM in this process. `agent.model_workers.ModelWorkerPool` runs
the same `LiteLLMCaller` in worker processes, so a busy gateway can spend more than one core on
LiteLLM's per-call work. Both report a failure as a `CallFailure` that says whether retrying
can help, so retries and fallbacks behave the same wherever the call ran.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol

from agent.provider_errors import diagnose

DeltaCallback = Callable[[str], Awaitable[None]]
FailureKind = Literal["context_overflow", "retryable", "fatal"]
Purpose = Literal["chat", "checkpoint", "compress", "cron", "batch", "delegate", "probe"]
PURPOSES: tuple[str, ...] = ("chat", "checkpoint", "compress", "cron", "batch", "delegate", "probe")
PURPOSE_HEADER = "X-Hermes-Purpose"
MAX_RETRY_AFTER = 60.0
# sampling parameters a caller (the OpenAI-compatible API) may set for a turn; nothing else of
# LiteLLM's keyword arguments (model, api_base, api_key, ...) can be reached through `params`
CALL_PARAMS = frozenset({"temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
                         "response_format"})

# Why the gateway is calling the model: set around a piece of work (a cron run, a checkpoint, a
# compression), read when a request is built, sent as the `X-Hermes-Purpose` header so a proxy
# can attribute cost. A context variable, so it follows the work into the tasks it starts.
_PURPOSE: ContextVar[str] = ContextVar("hermes_purpose", default="chat")


def current_purpose() -> str:
    return _PURPOSE.get()


@contextmanager
def purpose(name: Purpose) -> Iterator[None]:
    """Model calls made inside this block (and tasks it starts) carry `X-Hermes-Purpose: name`."""
    if name not in PURPOSES:
        raise ValueError(f"unknown model-call purpose {name!r}; one of {', '.join(PURPOSES)}")
    token = _PURPOSE.set(name)
    try:
        yield
    finally:
        _PURPOSE.reset(token)


LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
# LiteLLM's transport: the openai SDK logs whole request options (the prompt) at DEBUG.
CHATTY_TRANSPORT_LOGGERS = ("openai",)


class _DropChatter(logging.Filter):
    """On LiteLLM's own loggers: records below WARNING are dropped (at DEBUG they carry whole
    prompts and request headers); the rest go on to this process's (redacting) handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def quiet_litellm_loggers() -> None:
    """LiteLLM's loggers never print on their own: its stream handler (stdout/stderr, unredacted
    prompts at DEBUG) is removed from `LiteLLM`, `LiteLLM Router` and `LiteLLM Proxy`; their debug
    and info records (and the openai SDK's underneath, which log request bodies) are dropped, and
    warnings propagate to the root handlers the process set up (the gateway's redacting file and
    console handlers). Idempotent, and cheap when nothing changed: it runs before every model call
    (LiteLLM makes loggers as it imports a provider's module), and the walk over every logger is
    redone only when loggers were added since the last one (their count is kept on the logging
    manager, whose state it describes)."""
    for name in LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    manager = logging.root.manager
    if getattr(manager, "hermes_quieted_loggers", -1) == len(manager.loggerDict):
        return
    known = list(manager.loggerDict)
    for name in LITELLM_LOGGERS + CHATTY_TRANSPORT_LOGGERS:
        # a logger's filters do not apply to records of its children: filter each one
        for child in [name] + [k for k in known if k.startswith(name + ".")]:
            logger = logging.getLogger(child)
            if not any(isinstance(f, _DropChatter) for f in logger.filters):
                logger.addFilter(_DropChatter())
    manager.hermes_quieted_loggers = len(manager.loggerDict)  # type: ignore[attr-defined]


def import_litellm() -> Any:
    """Import LiteLLM with settings safe for a long-running service."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price map
    os.environ.setdefault("LITELLM_MODE", "PRODUCTION")             # no .env loading on import
    quiet_litellm_loggers()   # before the import too: importing LiteLLM already logs at DEBUG
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.drop_params = True
    litellm.set_verbose = False
    quiet_litellm_loggers()
    return litellm


@dataclass(frozen=True)
class CallRequest:
    """Everything one call needs; plain data, so it can travel to a worker process as JSON."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    api_base: str = ""
    api_key: str = field(default="", repr=False)
    timeout: float = 120.0
    temperature: float | None = None
    stream: bool = False
    purpose: str = "chat"
    params: dict[str, Any] = field(default_factory=dict)  # CALL_PARAMS chosen for this turn

    def to_json(self) -> dict[str, Any]:
        # shallow on purpose: `asdict` would deep-copy every message and tool schema (~1 ms a call)
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallRequest:
        return cls(**data)


@dataclass(frozen=True)
class LLMResponse:
    message: dict[str, Any]
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    finish_reason: str

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LLMResponse:
        return cls(**data)


class CallFailure(Exception):
    """A model call failed. `kind` says what may help: compressing, retrying, or neither."""

    def __init__(self, kind: FailureKind, error_type: str, message: str, *,
                 retry_after: float | None = None, worded: bool = False) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.error_type = error_type
        self.retry_after = retry_after
        self.worded = worded  # the message is a sentence for the user (agent.provider_errors)

    @property
    def retryable(self) -> bool:
        return self.kind == "retryable"

    def describe(self) -> str:
        """The message for the user: a worded one names the provider and the setting to fix."""
        return str(self) if self.worded else f"{self.error_type}: {self}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "error_type": self.error_type, "message": str(self),
                "retry_after": self.retry_after, "worded": self.worded}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallFailure:
        return cls(data["kind"], data["error_type"], data["message"], retry_after=data.get("retry_after"),
                   worded=bool(data.get("worded")))


class ModelCaller(Protocol):
    """Makes one model call; raises `CallFailure`."""

    async def call(self, request: CallRequest, on_delta: DeltaCallback | None = None) -> LLMResponse: ...


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        return min(float(value), MAX_RETRY_AFTER) if value is not None else None
    except (TypeError, ValueError):
        return None


def classify(exc: BaseException, litellm: Any, request: CallRequest | None = None) -> CallFailure:
    """What a LiteLLM exception means for the caller: compress, retry, or give up on this model
    (see `agent.provider_errors`: auth, permission, bad request, not found and unreachable hosts
    are not retried; 429, timeouts, 5xx and dropped connections are)."""
    diagnosis = diagnose(exc, litellm, model=request.model if request else "",
                         api_base=request.api_base if request else "", api_key=request.api_key if request else "")
    retry_after = _retry_after(exc) if diagnosis.verdict == "retryable" else None
    return CallFailure(diagnosis.verdict, diagnosis.error_type, diagnosis.message, retry_after=retry_after,
                       worded=True)


def _cost_of(litellm: Any, response: Any, model: str) -> float:
    """The call's cost in USD: LiteLLM's own figure (`_hidden_params["response_cost"]`, None for
    models without a price), computed only when a response does not carry it (~2 ms a call)."""
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict) and "response_cost" in hidden:
        try:
            return float(hidden["response_cost"] or 0.0)
        except (TypeError, ValueError):
            return 0.0
    try:
        return float(litellm.completion_cost(completion_response=response, model=model) or 0.0)
    except Exception:  # noqa: BLE001 - local and unknown models have no price
        return 0.0


def message_to_dict(message: Any) -> dict[str, Any]:
    """An OpenAI-style assistant message dict from LiteLLM's Message object."""
    result: dict[str, Any] = {"role": "assistant", "content": getattr(message, "content", None)}
    tool_calls = getattr(message, "tool_calls", None) or []
    if tool_calls:
        result["tool_calls"] = [
            {"id": call.id, "type": "function",
             "function": {"name": call.function.name, "arguments": call.function.arguments or "{}"}}
            for call in tool_calls
        ]
    return result


class LiteLLMCaller:
    """Calls LiteLLM `acompletion` in this process (imported on the first call)."""

    async def call(self, request: CallRequest, on_delta: DeltaCallback | None = None) -> LLMResponse:
        litellm = import_litellm()
        kwargs: dict[str, Any] = {
            "model": request.model, "messages": request.messages, "timeout": request.timeout,
            "num_retries": 0, "max_retries": 0, "extra_headers": {PURPOSE_HEADER: request.purpose},
            # our tools are plain functions (MCP tools arrive as functions too): skip LiteLLM's MCP
            # gateway check, whose import (the proxy's types) is about a quarter of LiteLLM's cost
            "_skip_mcp_handler": True,
        }
        if request.api_base:
            kwargs["api_base"] = request.api_base
        if request.api_key:
            kwargs["api_key"] = request.api_key
        if request.tools:
            kwargs["tools"] = request.tools
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        kwargs.update({k: v for k, v in request.params.items() if k in CALL_PARAMS})
        try:
            if request.stream and on_delta is not None:
                response = await self._stream(litellm, kwargs, request.messages, on_delta)
            else:
                response = await litellm.acompletion(**kwargs)
            choice = response.choices[0]
            usage = getattr(response, "usage", None)
            return LLMResponse(
                message=message_to_dict(choice.message), model=request.model,
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                cost=_cost_of(litellm, response, request.model), finish_reason=str(choice.finish_reason or ""),
            )
        except (asyncio.CancelledError, CallFailure):
            raise
        except Exception as exc:  # every provider error (and a malformed answer) becomes a CallFailure
            raise classify(exc, litellm, request) from exc

    @staticmethod
    async def _stream(litellm: Any, kwargs: dict[str, Any], messages: list[dict[str, Any]],
                      on_delta: DeltaCallback) -> Any:
        chunks = []
        stream = await litellm.acompletion(**kwargs, stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            chunks.append(chunk)
            if chunk.choices:
                text = getattr(chunk.choices[0].delta, "content", None)
                if text:
                    await on_delta(text)
        built = litellm.stream_chunk_builder(chunks, messages=messages)
        if built is None:
            raise CallFailure("fatal", "EmptyStream", f"{kwargs['model']}: the stream ended without any content")
        return built
