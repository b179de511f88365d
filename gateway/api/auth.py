"""Bearer-token authentication for the HTTP surface, and the token's safety checks.

These endpoints reach the agent and its tools (the terminal tool among them): a guessable token
is remote code execution. So the API refuses to start with a token shorter than 24 characters or
a known placeholder. When no token is configured at all, one is generated on first start and
kept in `HERMES_HOME/secrets.env` (mode 0600) as HERMES_API_TOKEN; the token itself is never
logged.

A browser logs in once with the token and gets a random server-side session (`WebSessions`):
the cookie holds 32 random bytes, the store holds only their SHA-256 and when the session ends
(`[api] session_hours`, default 12); logout deletes it. The cookie is HttpOnly and
SameSite=Strict, and `Secure` when the request came over HTTPS: directly, or through a proxy
listed in `[api] trusted_proxies` that says `X-Forwarded-Proto: https` (the header is ignored
from anyone else, and so is `X-Forwarded-For`, which names the client only behind such a proxy).
`LoginLimiter` refuses an address's 11th failed login within a minute (429 with Retry-After).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """Checks `Authorization: Bearer` headers and the token typed into the login form, in constant time."""

    def __init__(self, token: str) -> None:
        self._token = check_token(token).encode()
        # what API sessions and stored responses are owned by: stable for a token, not the token
        self.token_id = hmac.new(self._token, b"hermes api token id v1", hashlib.sha256).hexdigest()[:24]

    def bearer_ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self._token)

    def token_ok(self, value: str) -> bool:
        return hmac.compare_digest(value.strip().encode(), self._token)


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def csrf_for(cookie: str) -> str:
    """The CSRF token of a login session: an HMAC of its cookie value (as secret, no state)."""
    return hmac.new(cookie.encode(), b"hermes dashboard csrf v2", hashlib.sha256).hexdigest()


class WebSessions:
    """Browser logins kept in the store (`gateway/store/web_logins.py`): only the cookie's hash."""

    def __init__(self, store: Any, hours: float, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.seconds = hours * 3600.0
        self._clock = clock

    async def create(self, address: str) -> str:
        """A new session; returns the cookie value (never stored)."""
        cookie = secrets.token_urlsafe(32)
        now = self._clock()
        await self.store.web_login_add(_digest(cookie), address=address, created_at=now,
                                       expires_at=now + self.seconds)
        return cookie

    async def valid(self, cookie: str) -> bool:
        if not cookie or len(cookie) > 200:
            return False
        expires_at = await self.store.web_login_expiry(_digest(cookie))
        return expires_at is not None and expires_at > self._clock()

    async def revoke(self, cookie: str) -> None:
        if cookie:
            await self.store.web_login_remove(_digest(cookie))

    async def prune(self) -> int:
        return await self.store.web_logins_prune(self._clock())


class LoginLimiter:
    """At most `limit` failed logins per address in `window` seconds; bounded memory."""

    def __init__(self, limit: int = 10, window: float = 60.0, addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.addresses = limit, window, addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float]:
        found = self._failures.get(address)
        if found is None:
            return deque()
        cutoff = self._clock() - self.window
        while found and found[0] <= cutoff:
            found.popleft()
        if not found:
            self._failures.pop(address, None)
        return found

    def retry_after(self, address: str) -> float | None:
        """Seconds until `address` may try again, or None when it may try now."""
        recent = self._recent(address)
        if len(recent) < self.limit:
            return None
        return max(1.0, recent[0] + self.window - self._clock())

    def failed(self, address: str) -> None:
        recent = self._failures.setdefault(address, deque())
        recent.append(self._clock())
        self._failures.move_to_end(address)
        while len(recent) > self.limit:
            recent.popleft()
        while len(self._failures) > self.addresses:
            self._failures.popitem(last=False)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(entries: Iterable[str]) -> list[Network]:
    """`[api] trusted_proxies` entries (addresses or CIDR networks); ValueError names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"[api] trusted_proxies: {entry!r} is not an IP address or network") from None
    return networks


@dataclass(frozen=True)
class ClientView:
    """Who sent a request and how, believing forwarded headers only from trusted proxies."""

    proxies: tuple[Network, ...] = ()

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.proxies)

    def address(self, remote: str, forwarded_for: str) -> str:
        """The client address: the remote peer, or behind trusted proxies the nearest untrusted hop."""
        if not self._trusted(remote) or not forwarded_for:
            return remote
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
            if not self._trusted(hop):
                return hop
        return remote

    def https(self, remote: str, direct_tls: bool, forwarded_proto: str) -> bool:
        if direct_tls:
            return True
        if not self._trusted(remote):
            return False
        return forwarded_proto.split(",")[0].strip().lower() == "https"
