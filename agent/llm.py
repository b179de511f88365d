"""The model client: LiteLLM `acompletion` with retries, fallbacks, streaming and cost accounting.

LiteLLM is imported lazily (it takes seconds): nothing here imports it until the first call.
Rate limits (429, honouring `retry-after`), timeouts, connection errors and 5xx are retried
with exponential backoff and jitter; when a model keeps failing, or fails in a way retrying
cannot fix, the next model of `[model].fallbacks` takes over. A context-window overflow is
raised as `ContextWindowExceeded` so the loop can compress and try again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from agent.settings import FallbackModel, ModelConfig

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 32_768
MAX_RETRY_AFTER = 60.0

DeltaCallback = Callable[[str], Awaitable[None]]
FallbackCallback = Callable[[str, str, str], Awaitable[None]]


class ModelNotConfiguredError(RuntimeError):
    """No model name is set."""


class LLMError(RuntimeError):
    """Every model in the chain failed."""


class ContextWindowExceeded(LLMError):
    """The request is larger than the model's context window."""


@dataclass(frozen=True)
class LLMResponse:
    message: dict[str, Any]
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    finish_reason: str


def import_litellm() -> Any:
    """Import LiteLLM with settings safe for a long-running service."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price map
    os.environ.setdefault("LITELLM_MODE", "PRODUCTION")             # no .env loading on import
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.drop_params = True
    return litellm


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return int(status) if isinstance(status, int) else None


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


def is_context_overflow(exc: BaseException, litellm: Any) -> bool:
    if isinstance(exc, litellm.ContextWindowExceededError):
        return True
    text = str(exc).lower()
    return "context_length_exceeded" in text or "maximum context length" in text


def is_retryable(exc: BaseException, litellm: Any) -> bool:
    retryable = (litellm.RateLimitError, litellm.Timeout, litellm.APIConnectionError,
                 litellm.InternalServerError, litellm.ServiceUnavailableError, litellm.BadGatewayError,
                 asyncio.TimeoutError)
    if isinstance(exc, retryable):
        return True
    status = _status_of(exc)
    return status is not None and (status == 429 or status >= 500)


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


class LLMClient:
    """Calls the configured model chain; safe to share between sessions."""

    def __init__(self, config: ModelConfig, *, concurrency: asyncio.Semaphore | None = None) -> None:
        self.config = config
        self._concurrency = concurrency
        self._windows: dict[str, int] = {}

    @property
    def model(self) -> str:
        return self.config.name

    def require_model(self) -> None:
        if not self.config.name:
            raise ModelNotConfiguredError(
                "No model is configured. Set [model] name in config.toml (any LiteLLM model string,"
                ' e.g. "openai/gpt-4o-mini") or pass --model, and export the provider key (OPENAI_API_KEY, ...).'
            )

    def context_window(self) -> int:
        if self.config.context_window:
            return self.config.context_window
        name = self.config.name
        window = self._windows.get(name)
        if window is None:  # LiteLLM's model table does not change while we run: look up once per model
            litellm = import_litellm()
            try:
                info = litellm.get_model_info(name)
                window = int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_CONTEXT_WINDOW)
            except Exception:  # noqa: BLE001 - unknown models are common (local servers)
                window = DEFAULT_CONTEXT_WINDOW
            self._windows[name] = window
        return window

    def count_tokens(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
        litellm = import_litellm()
        try:
            return int(litellm.token_counter(model=self.config.name, messages=messages, tools=tools))
        except Exception:  # noqa: BLE001
            return len(json.dumps(messages)) // 4 + len(json.dumps(tools or [])) // 4

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        on_delta: DeltaCallback | None = None,
        on_fallback: FallbackCallback | None = None,
        stream: bool | None = None,
        model_override: str | None = None,
    ) -> LLMResponse:
        """One completion through the model chain; raises LLMError when every model failed."""
        self.require_model()
        litellm = import_litellm()
        chain = self.config.chain()
        if model_override:
            chain = [FallbackModel(name=model_override, api_base=self.config.api_base,
                                   api_key=self.config.api_key), *chain]
        use_stream = self.config.stream if stream is None else stream
        errors: list[str] = []
        for index, model in enumerate(chain):
            try:
                return await self._with_retries(litellm, model, messages, tools, on_delta if use_stream else None)
            except ContextWindowExceeded:
                raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{model.name}: {type(exc).__name__}: {exc}")
                if index + 1 < len(chain):
                    nxt = chain[index + 1].name
                    log.warning("model %s failed (%s); falling back to %s", model.name, type(exc).__name__, nxt)
                    if on_fallback is not None:
                        await on_fallback(model.name, nxt, f"{type(exc).__name__}: {exc}")
        raise LLMError("every model failed:\n  " + "\n  ".join(errors))

    async def _with_retries(self, litellm: Any, model: FallbackModel, messages: list[dict[str, Any]],
                            tools: list[dict[str, Any]] | None, on_delta: DeltaCallback | None) -> LLMResponse:
        attempt = 0
        while True:
            try:
                return await self._call(litellm, model, messages, tools, on_delta)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                if is_context_overflow(exc, litellm):
                    raise ContextWindowExceeded(str(exc)) from exc
                if not is_retryable(exc, litellm) or attempt >= self.config.max_retries:
                    raise
                delay = _retry_after(exc)
                if delay is None:
                    delay = self.config.retry_base_delay * (2 ** attempt)
                    delay = delay * (0.5 + random.random())  # full jitter around the backoff
                attempt += 1
                log.info("model %s: %s; retry %d/%d in %.2fs", model.name, type(exc).__name__,
                         attempt, self.config.max_retries, delay)
                await asyncio.sleep(delay)

    async def _call(self, litellm: Any, model: FallbackModel, messages: list[dict[str, Any]],
                    tools: list[dict[str, Any]] | None, on_delta: DeltaCallback | None) -> LLMResponse:
        kwargs: dict[str, Any] = {
            "model": model.name, "messages": messages, "timeout": self.config.timeout,
            "num_retries": 0, "max_retries": 0,
        }
        if model.api_base:
            kwargs["api_base"] = model.api_base
        if model.api_key:
            kwargs["api_key"] = model.api_key
        if tools:
            kwargs["tools"] = tools
        if self.config.temperature is not None:
            kwargs["temperature"] = self.config.temperature
        if self._concurrency is None:
            response = await self._request(litellm, kwargs, messages, on_delta)
        else:
            async with self._concurrency:
                response = await self._request(litellm, kwargs, messages, on_delta)
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        return LLMResponse(
            message=message_to_dict(choice.message), model=model.name, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, cost=_cost_of(litellm, response, model.name),
            finish_reason=str(choice.finish_reason or ""),
        )

    async def _request(self, litellm: Any, kwargs: dict[str, Any], messages: list[dict[str, Any]],
                       on_delta: DeltaCallback | None) -> Any:
        if on_delta is None:
            return await litellm.acompletion(**kwargs)
        return await self._stream(litellm, kwargs, messages, on_delta)

    async def _stream(self, litellm: Any, kwargs: dict[str, Any], messages: list[dict[str, Any]],
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
            raise LLMError(f"{kwargs['model']}: the stream ended without any content")
        return built
