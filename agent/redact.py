"""Recognising secrets so they never reach memory, skills, logs or trajectories.

A secret is recognised by its shape (API keys, bot tokens, private keys, `password=...`, the
password in `scheme://user:PASS@host`, secret query values like `?key=` or `&sig=`, Slack and
Discord webhook paths), by being the value of an environment variable of this process whose name
says it is secret (`*_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD*`), or by being a literal secret
of the configuration (`Redactor.for_config`, found by `agent.secret_fields`). A shape with a
group named `s` masks only that group (`password=[REDACTED]`), so a line stays readable.
Build one `Redactor` and share it; it holds no global state.

`redact_value` masks every string inside nested data; `redact_json_text` does so inside a JSON
document and keeps it valid JSON.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MASK = "[REDACTED]"

SECRET_SHAPES: tuple[tuple[str, str], ...] = (
    ("openai-style key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"),
    ("slack token", r"\bxox[abprse]-[A-Za-z0-9\-]{10,}"),
    ("slack app token", r"\bxapp-[A-Za-z0-9\-]{10,}"),
    ("github token", r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"),
    ("aws access key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    ("google api key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    ("telegram bot token", r"\b\d{8,10}:[A-Za-z0-9_\-]{35}\b"),
    ("discord bot token", r"\b[MNO][A-Za-z\d_\-]{23,25}\.[A-Za-z\d_\-]{6}\.[A-Za-z\d_\-]{27,38}\b"),
    ("private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    ("bearer token", r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9_\-\.=]{20,})"),
    ("assigned secret", (r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)"
                        r"\s*[:=]\s*['\"]?(?P<s>[^\s'\"&]{6,})")),
    ("url password", r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:@/'\"]*:(?P<s>[^\s@/'\"]{3,})@"),
    ("secret query value", (r"(?i)[?&](?:key|api[_-]?key|token|access_token|auth_token|refresh_token|sig|signature"
                           r"|secret|client_secret|password|pwd|auth)=(?P<s>[^\s&#'\"]{4,})")),
    ("slack webhook", r"hooks\.slack\.com/services/(?P<s>[A-Za-z0-9_\-]+/[A-Za-z0-9_\-]+/[A-Za-z0-9_\-]{8,})"),
    ("discord webhook", r"discord(?:app)?\.com/api/webhooks/\d+/(?P<s>[A-Za-z0-9_\-]{20,})"),
)

SECRET_ENV_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE)", re.IGNORECASE)
MIN_ENV_SECRET_LENGTH = 8
MIN_CONFIG_SECRET_LENGTH = 6


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int


@dataclass
class Redactor:
    env_values: tuple[str, ...] = ()
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = field(
        default_factory=lambda: tuple((name, re.compile(rx)) for name, rx in SECRET_SHAPES))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        values = sorted({v for k, v in env.items()
                         if SECRET_ENV_NAME.search(k) and len(v) >= MIN_ENV_SECRET_LENGTH}, key=len, reverse=True)
        return cls(env_values=tuple(values))

    def with_values(self, values: set[str] | tuple[str, ...] | list[str]) -> Redactor:
        """A Redactor that also masks these exact values."""
        merged = sorted(set(self.env_values) | {v for v in values if v}, key=len, reverse=True)
        return Redactor(env_values=tuple(merged), patterns=self.patterns)

    def find(self, text: str) -> list[Finding]:
        found = [Finding("environment secret", m.start(), m.end())
                 for value in self.env_values for m in re.finditer(re.escape(value), text)]
        for name, pattern in self.patterns:
            found.extend(Finding(name, *_secret_range(m)) for m in pattern.finditer(text))
        return sorted(found, key=lambda f: f.start)

    def contains_secret(self, text: str) -> bool:
        return bool(self.find(text))

    def redact_known(self, text: str) -> str:
        """Only the known secret values (environment, config) masked; shapes left alone."""
        for value in self.env_values:
            text = text.replace(value, MASK)
        return text

    def redact(self, text: str) -> str:
        if not text:
            return text
        for value in self.env_values:
            text = text.replace(value, MASK)
        for _name, pattern in self.patterns:
            text = pattern.sub(_mask_match, text)
        return text


def _secret_range(match: re.Match[str]) -> tuple[int, int]:
    if "s" in match.re.groupindex and match.group("s") is not None:
        return match.start("s"), match.end("s")
    return match.start(), match.end()


def _mask_match(match: re.Match[str]) -> str:
    start, end = _secret_range(match)
    whole = match.group(0)
    return whole[:start - match.start()] + MASK + whole[end - match.start():]


def redact_value(value: Any, redactor: Redactor) -> Any:
    """`value` with every string inside it (dict values and list items, nested) redacted."""
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, list):
        return [redact_value(v, redactor) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v, redactor) for k, v in value.items()}
    return value


def redact_json_text(raw: str, redactor: Redactor) -> str:
    """A JSON document with its strings redacted (still valid JSON); other text redacted as text."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return redactor.redact(raw)
    cleaned = redact_value(parsed, redactor)
    return raw if cleaned == parsed else json.dumps(cleaned, ensure_ascii=False)


def redact_message(message: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    out = redact_value({k: v for k, v in message.items() if k != "tool_calls"}, redactor)
    if message.get("tool_calls"):
        calls = []
        for call in message["tool_calls"]:
            call = dict(call)
            function = dict(call.get("function") or {})
            function["name"] = redactor.redact(str(function.get("name", "")))
            function["arguments"] = redact_json_text(str(function.get("arguments") or "{}"), redactor)
            call["function"] = function
            calls.append(call)
        out["tool_calls"] = calls
    return out
