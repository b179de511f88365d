"""Bearer-token authentication for the HTTP surface, and the token's safety checks.

These endpoints reach the agent and its tools (the terminal tool among them): a guessable token
is remote code execution. So the API refuses to start with a token shorter than 24 characters or
a known placeholder. When no token is configured at all, one is generated on first start and
kept in `HERMES_HOME/secrets.env` (mode 0600) as HERMES_API_TOKEN; the token itself is never
logged. A browser logs in once with the token and keeps an HttpOnly, SameSite=Strict cookie
holding an HMAC of the token (not the token).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

MIN_TOKEN_LENGTH = 24
TOKEN_ENV = "HERMES_API_TOKEN"
COOKIE_NAME = "hermes_session"
GENERATE_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
PLACEHOLDERS = {"changeme", "change-me", "change_me", "token", "secret", "password", "apitoken", "api-token",
                "api_token", "your-token", "your_token", "yourtoken", "example", "test", "admin", "hermes",
                "placeholder", "replaceme", "replace-me", "none", "null", "default"}
PLACEHOLDER_PARTS = ("changeme", "change-me", "change_me", "replace-me", "replace_me", "replaceme",
                     "your-token", "your_token", "your-api", "your_api", "placeholder", "example", "xxxxxx")


class WeakTokenError(ValueError):
    """The configured API token must not be used."""


def token_problem(token: str) -> str | None:
    """Why `token` is unsafe, or None when it is acceptable."""
    value = token.strip()
    lowered = value.lower()
    if not value:
        return "no API token is set"
    if "${" in value or (value.startswith("<") and value.endswith(">")):
        return "the API token is an unexpanded placeholder"
    if lowered in PLACEHOLDERS or any(part in lowered for part in PLACEHOLDER_PARTS):
        return "the API token is a known placeholder"
    if len(value) < MIN_TOKEN_LENGTH:
        return f"the API token is {len(value)} characters long; at least {MIN_TOKEN_LENGTH} are required"
    if len(set(value)) < 8:
        return "the API token repeats too few characters to be random"
    return None


def check_token(token: str) -> str:
    problem = token_problem(token)
    if problem is not None:
        raise WeakTokenError(
            f"{problem}. The API, web chat and dashboard can run tools on this machine, so they need a "
            f"strong token. Generate one with:\n  {GENERATE_HINT}\n"
            f"and set it as {TOKEN_ENV} (environment or HERMES_HOME/secrets.env), or [api] token in config.toml."
        )
    return token.strip()


@dataclass(frozen=True)
class TokenSource:
    token: str
    generated: bool
    where: str


def resolve_token(configured: str, secrets_file: Path, environ: dict[str, str] | os._Environ[str] | None = None) \
        -> TokenSource:
    """The token to use: `[api] token`, else $HERMES_API_TOKEN, else a new one saved to secrets.env."""
    env = os.environ if environ is None else environ
    if configured.strip():
        return TokenSource(configured.strip(), False, "[api] token")
    if env.get(TOKEN_ENV, "").strip():
        return TokenSource(env[TOKEN_ENV].strip(), False, TOKEN_ENV)
    token = secrets.token_urlsafe(32)
    save_secret(secrets_file, TOKEN_ENV, token)
    env[TOKEN_ENV] = token
    return TokenSource(token, True, str(secrets_file))


def save_secret(path: Path, name: str, value: str) -> None:
    """Append NAME=value to a secrets file readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
        existing = path.stat().st_size
        prefix = ""
        if existing:
            with open(path, "rb") as reader:
                reader.seek(existing - 1)
                prefix = "" if reader.read(1) == b"\n" else "\n"
        os.write(fd, f"{prefix}{name}={value}\n".encode())
    finally:
        os.close(fd)


class TokenAuth:
    """Checks `Authorization: Bearer` headers and login cookies in constant time."""

    def __init__(self, token: str) -> None:
        self._token = check_token(token).encode()
        self._cookie = hmac.new(self._token, b"hermes web login v1", hashlib.sha256).hexdigest()
        # what API sessions and stored responses are owned by: stable for a token, not the token
        self.token_id = hmac.new(self._token, b"hermes api token id v1", hashlib.sha256).hexdigest()[:24]

    def bearer_ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self._token)

    def token_ok(self, value: str) -> bool:
        return hmac.compare_digest(value.strip().encode(), self._token)

    @property
    def cookie_value(self) -> str:
        return self._cookie

    def cookie_ok(self, value: str) -> bool:
        return hmac.compare_digest(value.encode(), self._cookie.encode())
