"""The model client: retries, fallbacks and context windows around one model call at a time.

LiteLLM is imported lazily (it takes seconds): nothing here imports it until it is needed. The
call itself is made by a `ModelCaller` (`agent.model_call`): LiteLLM in this process by default,
or a pool of worker processes. Rate limits (429, honouring `retry-after`), timeouts, connection
errors and 5xx are retried with exponential backoff and jitter; authentication, permission,
bad-request and not-found errors and unreachable hosts are not (`agent.provider_errors` says
which is which and words the message). When a model keeps failing, or fails in a way retrying
cannot fix, the next model of `[model].fallbacks` takes over. A
context-window overflow is raised as `ContextWindowExceeded` so the loop can compress and try again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.model_call import (
    CallFailure,
    CallRequest,
    DeltaCallback,
    LiteLLMCaller,
    LLMResponse,
    ModelCaller,
    current_purpose,
    import_litellm,
)
from agent.settings import FallbackModel, ModelConfig

__all__ = ["CallOptions", "ContextWindowExceeded", "LLMClient", "LLMError", "LLMResponse",
           "ModelNotConfiguredError",
           "import_litellm"]

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 32_768

FallbackCallback = Callable[[str, str, str], Awaitable[None]]


class ModelNotConfiguredError(RuntimeError):
    """No model name is set."""


class LLMError(RuntimeError):
    """Every model in the chain failed.

    `permanent` is True when every failure was one that waiting does not fix (a refused key, no
    access, an unknown model, a bad request, an unreachable endpoint): a configuration problem the
    chat user should hear about as such, and an admin must fix."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ContextWindowExceeded(LLMError):
    """The request is larger than the model's context window."""


@dataclass(frozen=True)
class CallOptions:
    """What one turn's caller chose for every model call of the turn (the OpenAI-compatible API).

    `model` names the model to call first (the configured chain follows it as fallbacks);
    `params` are sampling parameters (`agent.model_call.CALL_PARAMS`) passed to the call.
    """

    model: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)


class LLMClient:
    """Calls the configured model chain; safe to share between sessions."""

    def __init__(self, config: ModelConfig, *, concurrency: asyncio.Semaphore | None = None,
                 caller: ModelCaller | None = None) -> None:
        self.config = config
        self.concurrency = concurrency
        self.caller: ModelCaller = caller or LiteLLMCaller()
        self._windows: dict[str, int] = {}

    def with_model(self, config: ModelConfig) -> LLMClient:
        """A client for another model sharing this one's call limit and caller (worker pool)."""
        return LLMClient(config, concurrency=self.concurrency, caller=self.caller)

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

    async def context_window_async(self) -> int:
        """`context_window()` without stalling the event loop on LiteLLM's first import (seconds)."""
        if self.config.context_window or self.config.name in self._windows:
            return self.context_window()
        return await asyncio.to_thread(self.context_window)

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
        options: CallOptions | None = None,
    ) -> LLMResponse:
        """One completion through the model chain; raises LLMError when every model failed."""
        self.require_model()
        chain = self.config.chain()
        params: Mapping[str, Any] = {}
        if options is not None:
            params = options.params
            if options.model:
                named = [m for m in chain if m.name == options.model] or [FallbackModel(
                    name=options.model, api_base=self.config.api_base, api_key=self.config.api_key)]
                chain = named[:1] + [m for m in chain if m.name != options.model]
        use_stream = self.config.stream if stream is None else stream
        errors: list[str] = []
        kinds: list[str] = []
        for index, model in enumerate(chain):
            try:
                return await self._with_retries(model, messages, tools, on_delta if use_stream else None, params)
            except CallFailure as exc:  # a context overflow and a cancellation are not CallFailures: they go up
                errors.append(f"{model.name}: {exc.describe()}")
                kinds.append(exc.kind)
                last = exc
                if index + 1 < len(chain):
                    nxt = chain[index + 1].name
                    log.warning("model %s failed (%s); falling back to %s", model.name, exc.error_type, nxt)
                    if on_fallback is not None:
                        await on_fallback(model.name, nxt, exc.describe())
        if len(errors) == 1:  # one model: its own message names the provider and the setting to fix
            raise LLMError(last.describe(), permanent=kinds == ["fatal"])
        raise LLMError("every model failed:\n  " + "\n  ".join(errors), permanent=set(kinds) == {"fatal"})

    async def _with_retries(self, model: FallbackModel, messages: list[dict[str, Any]],
                            tools: list[dict[str, Any]] | None, on_delta: DeltaCallback | None,
                            params: Mapping[str, Any] | None = None) -> LLMResponse:
        request = CallRequest(model=model.name, messages=messages, tools=tools or None, api_base=model.api_base,
                              api_key=model.api_key, timeout=self.config.timeout,
                              temperature=self.config.temperature, stream=on_delta is not None,
                              purpose=current_purpose(),
                              params=dict(params or {}))
        attempt = 0
        while True:
            try:
                return await self._call(request, on_delta)
            except CallFailure as exc:
                if exc.kind == "context_overflow":
                    raise ContextWindowExceeded(str(exc)) from exc
                if not exc.retryable or attempt >= self.config.max_retries:
                    raise
                delay = exc.retry_after
                if delay is None:
                    delay = self.config.retry_base_delay * (2 ** attempt)
                    delay = delay * (0.5 + random.random())  # full jitter around the backoff
                attempt += 1
                log.info("model %s: %s; retry %d/%d in %.2fs", model.name, exc.error_type,
                         attempt, self.config.max_retries, delay)
                await asyncio.sleep(delay)

    async def _call(self, request: CallRequest, on_delta: DeltaCallback | None) -> LLMResponse:
        if self.concurrency is None:
            return await self.caller.call(request, on_delta)
        async with self.concurrency:
            return await self.caller.call(request, on_delta)
