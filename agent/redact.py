"""Recognising secrets so they never reach memory, skills, logs or trajectories.

A secret is recognised by its shape (API keys, bot tokens, private keys, `password=...`) or by
being the value of an environment variable of this process whose name says it is secret
(`*_KEY`, `*_TOKEN`, `*_SECRET`, `*PASSWORD*`). Build one `Redactor` from the environment and
share it; it holds no global state.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

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
    ("bearer token", r"(?i)\bbearer\s+[A-Za-z0-9_\-\.=]{20,}"),
    ("assigned secret", r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)"
                        r"\s*[:=]\s*['\"]?[^\s'\"]{6,}"),
)

SECRET_ENV_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE)", re.IGNORECASE)
MIN_ENV_SECRET_LENGTH = 8


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

    def find(self, text: str) -> list[Finding]:
        found = [Finding("environment secret", m.start(), m.end())
                 for value in self.env_values for m in re.finditer(re.escape(value), text)]
        for name, pattern in self.patterns:
            found.extend(Finding(name, m.start(), m.end()) for m in pattern.finditer(text))
        return sorted(found, key=lambda f: f.start)

    def contains_secret(self, text: str) -> bool:
        return bool(self.find(text))

    def redact(self, text: str) -> str:
        if not text:
            return text
        for value in self.env_values:
            text = text.replace(value, MASK)
        for _name, pattern in self.patterns:
            text = pattern.sub(MASK, text)
        return text
