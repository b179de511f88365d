"""Does the configured model answer? One real, tiny call, made at gateway start and by `hermes doctor`.

A refused key or an unknown model should be found when the gateway starts, not by the first
person who writes to it: the result is printed under the start banner and reported in
`/healthz` (`"model_check"`), and the call carries `X-Hermes-Purpose: probe` so a proxy (and
the tests' fake model) can tell it from chat traffic.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

CheckState = Literal["unchecked", "ok", "failed"]
PROBE_MESSAGES = [{"role": "user", "content": "Reply with: ok"}]
NO_MODEL_FIX = 'set [model] name = "openai/gpt-4o-mini" (any LiteLLM model string) in config.toml'
KEY_FIX = "check [model] name, api_base and api_key (or the provider's environment variable, e.g. OPENAI_API_KEY)"


@dataclass(frozen=True)
class ModelCheck:
    """The outcome of one probe: what was asked, whether it answered, and what to set if not."""

    state: CheckState
    model: str
    detail: str = ""
    fix: str = ""
    permanent: bool = False
    checked_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def summary(self) -> str:
        if self.state == "unchecked":
            return f"{self.model or 'no model'}: not checked yet"
        if self.ok:
            return f"{self.model} answered ({self.detail})"
        if not self.model:
            return self.detail
        return f"{self.model} did not answer: {self.detail}"

    def line(self) -> str:
        """One line for the banner and the log: the summary, and what to set when it failed."""
        return self.summary + (f"; {self.fix}" if self.fix and not self.ok else "")


async def check_model(model: Any, timeout: float = 20.0, client: Any = None) -> ModelCheck:
    """Send one short request to `model` (a ModelConfig) with no retries and no fallbacks, or
    through `client` (an LLMClient the caller already has, e.g. one whose calls run in worker
    processes)."""
    from agent.llm import LLMClient, LLMError
    from agent.model_call import purpose

    if not model.name:
        return ModelCheck("failed", "", "no model configured", NO_MODEL_FIX, permanent=True, checked_at=time.time())
    if client is None:
        client = LLMClient(model.model_copy(update={"max_retries": 0, "timeout": timeout, "fallbacks": [],
                                                    "stream": False}))
    try:
        with purpose("probe"):
            response = await client.complete(PROBE_MESSAGES, None)
    except LLMError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = (lines[-1] if lines else type(exc).__name__)[:300]
        return ModelCheck("failed", model.name, detail, KEY_FIX,
                          permanent=exc.permanent, checked_at=time.time())
    tokens = response.prompt_tokens + response.completion_tokens
    return ModelCheck("ok", model.name, f"{tokens} tokens", checked_at=time.time())
