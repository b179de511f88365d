"""What a provider error means, and what the user should do about it.

A LiteLLM exception is often a wrapper: a refused connection arrives as `InternalServerError`
(status 500) around `openai.APIConnectionError` around `httpx.ConnectError` around
`ConnectionRefusedError`, and a missing key as `InternalServerError: Missing credentials`. So the
whole `__cause__`/`__context__` chain is read, not the outer type. The rules:

- retried: 429, timeouts, 5xx answered by the server, and connections dropped mid-call;
- not retried: authentication (401, or no key at all), permission (403), bad request (400/422),
  not found (404), and a connection that cannot be opened (refused, unknown host) — retrying those
  only makes the user wait for the same answer.

Every message names the provider and the setting to fix, e.g.
`OPENAI_API_KEY is not set: export it or set [model] api_key`.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

Verdict = Literal["context_overflow", "retryable", "fatal"]

MAX_DETAIL = 300
DROPPED_NAMES = {"ServerDisconnectedError", "RemoteProtocolError", "ReadError", "WriteError",
                 "ClientPayloadError", "IncompleteRead", "ClientOSError"}
CONNECT_NAMES = {"ConnectError", "ClientConnectorError", "ClientConnectorDNSError", "ClientConnectorCertificateError"}
TIMEOUT_NAMES = {"TimeoutException", "ReadTimeout", "ConnectTimeout", "WriteTimeout", "PoolTimeout",
                 "ServerTimeoutError", "APITimeoutError", "Timeout"}
WRAPPER_PREFIX = re.compile(r"^(?:(?:litellm\.)?[A-Za-z]*(?:Error|Exception|Timeout)(?::| -) )+")
MISSING_KEY_PHRASES = ("missing credentials", "api key is missing", "missing api key", "no api key",
                       "api_key client option must be set", "missing anthropic api key", "missing gemini api key")


@dataclass(frozen=True)
class Diagnosis:
    """The verdict for one failed call and the sentence to show the user."""

    verdict: Verdict
    error_type: str
    message: str
    status: int | None = None


def exception_chain(exc: BaseException, limit: int = 12) -> list[BaseException]:
    """`exc` and what caused it, outermost first (cycles and very deep chains cut)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < limit and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def provider_of(model: str, litellm: Any) -> str:
    try:
        return str(litellm.get_llm_provider(model)[1])
    except Exception:  # noqa: BLE001 - unknown providers are reported by LiteLLM's own error
        return model.split("/", 1)[0] if "/" in model else "the provider"


def key_variables(model: str, litellm: Any) -> list[str]:
    """The environment variables LiteLLM reads the provider's key from (e.g. OPENAI_API_KEY)."""
    try:
        missing = litellm.validate_environment(model).get("missing_keys") or []
    except Exception:  # noqa: BLE001
        return []
    return [name for name in missing if name.endswith(("_KEY", "_TOKEN"))]


def _endpoint(chain: list[BaseException], api_base: str) -> str:
    """host:port of the connection that failed, from the lowest exception that knows it."""
    for exc in reversed(chain):
        host, port = getattr(exc, "host", None), getattr(exc, "port", None)
        if isinstance(host, str) and host and isinstance(port, int):
            return f"{host}:{port}"
    for exc in reversed(chain):
        request = getattr(exc, "request", None)
        url = getattr(request, "url", None)
        if url is not None and getattr(url, "host", None):
            port = url.port or (443 if url.scheme == "https" else 80)
            return f"{url.host}:{port}"
    if api_base:
        parts = urlsplit(api_base)
        if parts.hostname:
            return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    return "the provider's endpoint"


def _status(chain: list[BaseException]) -> int | None:
    """The HTTP status the provider answered, from the innermost exception that carries one."""
    for exc in reversed(chain):
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and status:
            return status
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int) and status and type(response).__name__ == "Response":
            return status
    return None


def _detail(chain: list[BaseException]) -> str:
    """The provider's own words, without LiteLLM's prefixes and tracebacks."""
    text = str(chain[0]).split("\nTraceback", 1)[0].strip()
    text = WRAPPER_PREFIX.sub("", text).strip()
    return text[:MAX_DETAIL] + ("…" if len(text) > MAX_DETAIL else "")


def _names(chain: list[BaseException]) -> set[str]:
    return {type(exc).__name__ for exc in chain}


def no_provider_message(model: str, api_base: str = "") -> str:
    """`gpt4o-mini` alone: LiteLLM refuses before sending anything; say what the name needs."""
    bare = model.split("/", 1)[-1]
    server = f" (the OpenAI-compatible server at {api_base})" if api_base else ""
    return (f"[model] name {model!r} names no provider, so no request was sent: LiteLLM needs PROVIDER/MODEL, "
            f"e.g. \"openai/{bare}\"{server}, \"anthropic/...\", or \"ollama_chat/...\" for Ollama")


def _v1_hint(api_base: str) -> str:
    """An OpenAI-compatible server (vLLM, LM Studio, llama.cpp) serves under /v1: say so when it is missing."""
    if not api_base:
        return ""
    path = urlsplit(api_base).path.rstrip("/")
    if path.endswith("/v1") or "/v1/" in path or "/api" in path:
        return ""
    suggestion = api_base.rstrip("/") + "/v1"
    return f" OpenAI-compatible servers answer under /v1: try api_base = \"{suggestion}\"."


def diagnose(exc: BaseException, litellm: Any, *, model: str, api_base: str = "", api_key: str = "") -> Diagnosis:
    """Classify one LiteLLM failure of `model` and word it for the user."""
    chain = exception_chain(exc)
    names = _names(chain)
    text = " ".join(str(e) for e in chain).lower()
    error_type = type(exc).__name__
    provider = provider_of(model, litellm)
    detail = _detail(chain)
    if isinstance(exc, litellm.ContextWindowExceededError) or "context_length_exceeded" in text \
            or "maximum context length" in text:
        return Diagnosis("context_overflow", error_type, str(exc))
    if "llm provider not provided" in text or "provider not provided" in text:
        return Diagnosis("fatal", "NoProviderPrefix", no_provider_message(model, api_base))
    status = _status(chain)
    if any(phrase in text for phrase in MISSING_KEY_PHRASES) and not api_key:
        variables = key_variables(model, litellm)
        if variables:
            return Diagnosis("fatal", "MissingApiKey",
                             f"{' or '.join(variables)} is not set: export it or set [model] api_key "
                             f"(provider {provider}, model {model})")
        return Diagnosis("fatal", "MissingApiKey",
                         f"{provider} needs an API key and none is set: set [model] api_key "
                         f"or the provider's environment variable (model {model})")
    if names & CONNECT_NAMES or any(isinstance(e, (ConnectionRefusedError, socket.gaierror)) for e in chain):
        where = _endpoint(chain, api_base)
        reason = "unknown host" if any(isinstance(e, socket.gaierror) for e in chain) \
            or "ClientConnectorDNSError" in names else "connection refused" \
            if any(isinstance(e, ConnectionRefusedError) for e in chain) else "cannot connect"
        setting = "[model] api_base" if api_base else "[model] api_base (or the provider's network access)"
        return Diagnosis("fatal", "ConnectionFailed",
                         f"cannot reach {provider} at {where} ({reason}) for model {model}: "
                         f"check {setting}, then run `hermes doctor`")
    if isinstance(exc, (litellm.Timeout, asyncio.TimeoutError, TimeoutError)) or names & TIMEOUT_NAMES:
        return Diagnosis("retryable", error_type, f"{provider} did not answer in time (model {model}): {detail}")
    if names & DROPPED_NAMES or any(isinstance(e, (ConnectionResetError, BrokenPipeError)) for e in chain):
        return Diagnosis("retryable", error_type,
                         f"{provider} dropped the connection at {_endpoint(chain, api_base)} (model {model})")
    if status == 429 or isinstance(exc, litellm.RateLimitError):
        return Diagnosis("retryable", error_type, f"{provider} is rate limiting (429, model {model}): {detail}", 429)
    if status == 401 or isinstance(exc, litellm.AuthenticationError):
        variables = key_variables(model, litellm) if not api_key else []
        setting = " or ".join([*variables, "[model] api_key"]) if variables else "[model] api_key (or the " \
            "provider's key variable)"
        return Diagnosis("fatal", error_type, f"{provider} refused the API key (401, model {model}): check "
                         f"{setting}. {provider} said: {detail}", 401)
    if status == 403 or isinstance(exc, litellm.PermissionDeniedError):
        return Diagnosis("fatal", error_type, f"{provider} denied access (403) to model {model}: check the key's "
                         f"permissions or [model] name. {provider} said: {detail}", 403)
    if status == 404 or isinstance(exc, litellm.NotFoundError):
        return Diagnosis("fatal", error_type, f"{provider} has no model {model} (404): check [model] name"
                         f"{' and [model] api_base' if api_base else ''}.{_v1_hint(api_base)} "
                         f"{provider} said: {detail}", 404)
    if status in (400, 422) or isinstance(exc, (litellm.BadRequestError, litellm.UnprocessableEntityError)):
        return Diagnosis("fatal", error_type, f"{provider} rejected the request ({status or 400}, model {model}): "
                         f"check [model] name and its settings. {provider} said: {detail}", status or 400)
    if status is not None and status >= 500:
        return Diagnosis("retryable", error_type, f"{provider} failed ({status} {error_type}, model {model}): {detail}", status)
    if isinstance(exc, (litellm.InternalServerError, litellm.ServiceUnavailableError, litellm.BadGatewayError)):
        return Diagnosis("retryable", error_type, f"{provider} failed ({error_type}, model {model}): {detail}", status)
    return Diagnosis("fatal", error_type, f"{provider} call failed ({error_type}, model {model}): {detail}", status)
