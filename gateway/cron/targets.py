"""Delivery targets of scheduled jobs: where a run's result goes.

A target is `scheme:value`:
- `origin`: the channel where the job was created; resolved at creation to the concrete
  `telegram:<chat>` / `slack:<channel>` / `discord:<channel>` of that session;
- `telegram:<chat>`, `slack:<channel>`, `discord:<channel>`: delivered through the gateway's
  chunking and retrying send path: `runtime.services["deliver"]` (`async (target, text) -> None`)
  when set, else the gateway's `runtime.services["send_message"]` (`async (platform, chat_id,
  text, key=...) -> bool`, idempotent per key); refused at creation when that platform is not
  enabled in config;
- `webhook:<url>`: an HTTP(S) POST of a JSON object (aiohttp), retried on 5xx and connection errors;
- `file:<path>`: appended to a file. A relative path is taken inside HERMES_HOME; an absolute
  path must be inside HERMES_HOME too, unless the job was created from the command line by the
  operator (`allow_outside_home`): the `cron` tool is driven by a model, and a model must not
  be able to make the gateway append to e.g. `~/.bashrc`;
- `none`: the result is only recorded in the run history (`hermes cron runs ID`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.outbox import OutboxUndelivered
from gateway.config import Config
from gateway.home import Home
from gateway.store import SessionRecord
from skills.paths import safe_join

log = logging.getLogger(__name__)

PLATFORMS = ("telegram", "slack", "discord")
SCHEMES = ("origin", *PLATFORMS, "webhook", "file", "none")
CHAT_ID = re.compile(r"^[A-Za-z0-9@_\-.]{1,128}$")
WEBHOOK_TIMEOUT = 15.0
WEBHOOK_ATTEMPTS = 3

Deliver = Callable[[str, str], Awaitable[None]]


class TargetError(ValueError):
    """A delivery target that cannot be used; the message says why and what would work."""


class DeliveryFailed(RuntimeError):
    """A result could not be delivered to its target."""


@dataclass(frozen=True)
class Target:
    scheme: str
    value: str = ""

    def __str__(self) -> str:
        return self.scheme if not self.value else f"{self.scheme}:{self.value}"

    @property
    def is_platform(self) -> bool:
        return self.scheme in PLATFORMS

    def display(self) -> str:
        """The target without secrets a webhook URL may carry in its path or query."""
        if self.scheme == "webhook":
            parts = urlsplit(self.value)
            return f"webhook:{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"
        return str(self)


def team_for(config: Config, platform: str, chat_id: str) -> str:
    """The `[[teams]]` entry a channel belongs to ('' when none): its library and memory."""
    for team in config.teams:
        if f"{platform}:{chat_id}" in team.channels:
            return team.name
    for team in config.teams:
        if f"{platform}:*" in team.channels:
            return team.name
    return ""


def parse_target(text: str, config: Config, home: Home, *, origin: SessionRecord | None = None,
                 allow_outside_home: bool = False) -> Target:
    """Validate a target when a job is created; TargetError says what is wrong and what works."""
    raw = (text or "").strip()
    scheme, sep, value = raw.partition(":")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise TargetError(f"deliver: unknown target {raw!r} (use origin, telegram:<chat>, slack:<channel>, "
                          "discord:<channel>, webhook:<url>, file:<path> or none)")
    if scheme in ("origin", "none"):
        if sep and value:
            raise TargetError(f"deliver: {scheme!r} takes no value (got {raw!r})")
        if scheme == "none":
            return Target("none")
        if origin is None or origin.platform not in PLATFORMS or not origin.chat_id:
            where = origin.platform if origin is not None and origin.platform else "the command line"
            raise TargetError(f"deliver: 'origin' needs a Telegram, Slack or Discord channel, but this job is "
                              f"created from {where}; name a target such as slack:C123, file:reports/daily.md "
                              "or none")
        scheme, value = origin.platform, origin.chat_id
    if not value:
        raise TargetError(f"deliver: {scheme!r} needs a value, e.g. {_example(scheme)}")
    if scheme in PLATFORMS:
        if not CHAT_ID.match(value):
            raise TargetError(f"deliver: {value!r} is not a {scheme} chat or channel id")
        if not getattr(config, scheme).enabled:
            raise TargetError(f"deliver: {scheme} is not enabled in the configuration "
                              f"(set [{scheme}] enabled = true, or choose another target)")
        return Target(scheme, value)
    if scheme == "webhook":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetError(f"deliver: webhook needs an http(s) URL, e.g. {_example('webhook')} (got {value!r})")
        return Target("webhook", value)
    path = resolve_file(value, home, allow_outside_home=allow_outside_home)
    if path.is_dir():
        raise TargetError(f"deliver: {path} is a folder; name a file in it, e.g. file:{value.rstrip('/')}/results.md")
    return Target("file", str(path))


def resolve_file(value: str, home: Home, *, allow_outside_home: bool) -> Path:
    """The absolute file a `file:` target appends to (see the module docstring for the rule)."""
    root = home.root.resolve()
    path = Path(value).expanduser()
    if not path.is_absolute():
        try:
            return safe_join(root, *path.parts).resolve()
        except ValueError as exc:
            raise TargetError(f"deliver: file path {value!r} leaves HERMES_HOME ({exc})") from None
    resolved = path.resolve()
    if resolved.is_relative_to(root):
        return resolved
    if not allow_outside_home:
        raise TargetError(f"deliver: file path {value!r} is outside HERMES_HOME ({root}); use a relative path "
                          "(it is kept inside HERMES_HOME) or create the job with `hermes cron add`")
    if not resolved.parent.is_dir():
        raise TargetError(f"deliver: the folder {resolved.parent} does not exist")
    return resolved


def _example(scheme: str) -> str:
    return {"telegram": "telegram:-100123456", "slack": "slack:C0123ABCD", "discord": "discord:123456789012",
            "webhook": "webhook:https://example.com/hooks/hermes", "file": "file:reports/daily.md"}.get(scheme, scheme)


def _expand_references(value: str) -> str:
    """`${NAME}` in a webhook URL (a job imported from a profile keeps its secret there) from the
    environment (secrets.env is loaded into it with the config)."""
    def substitute(match: re.Match[str]) -> str:
        found = os.environ.get(match.group(1))
        if not found:
            raise DeliveryFailed(f"webhook: the secret {match.group(1)} its URL refers to is not set "
                                 "(export it, or put it in HERMES_HOME/secrets.env)")
        return found

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", substitute, value)


async def _post_webhook(url: str, payload: dict[str, Any]) -> None:
    import aiohttp

    last = ""
    timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for attempt in range(WEBHOOK_ATTEMPTS):
            try:
                async with http.post(url, json=payload) as response:
                    if response.status < 300:
                        return
                    last = f"HTTP {response.status}"
                    if response.status < 500 and response.status != 429:
                        break
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(0.5 * 2 ** attempt)
    raise DeliveryFailed(f"webhook {urlsplit(url).hostname}: {last}")


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


async def _deliver_platform(target: Target, text: str, services: dict[str, Any], key: str) -> None:
    """Through the gateway's send path: `services["deliver"]` (target, text), else the gateway's
    `services["send_message"]` (platform, chat_id, text, key=...) -> bool (False: kept undelivered)."""
    send: Deliver | None = services.get("deliver")
    send_message = services.get("send_message")
    if send is None and send_message is None:
        raise DeliveryFailed(f"{target}: no gateway connection in this process to deliver to {target.scheme}")
    try:
        if send is not None:
            await send(str(target), text)
            return
        delivered = await send_message(target.scheme, target.value, text, key=key)
    except OutboxUndelivered as exc:  # `hermes cron run`: the running gateway said why (or none runs)
        raise DeliveryFailed(f"{target}: {exc}") from exc
    except Exception as exc:
        raise DeliveryFailed(f"{target}: {type(exc).__name__}: {exc}") from exc
    if not delivered:
        raise DeliveryFailed(f"{target}: not delivered (kept in the gateway's undelivered list; if the platform timed "
                             "out after the request was sent it may have arrived, and it is not sent twice)")


async def deliver(target: Target, text: str, *, services: dict[str, Any], header: str = "",
                  payload: dict[str, Any] | None = None, key: str = "") -> None:
    """Send `text` to `target`; raises DeliveryFailed when it could not be delivered."""
    if target.scheme == "none":
        return
    if target.is_platform:
        await _deliver_platform(target, text, services, key)
        return
    if target.scheme == "webhook":
        await _post_webhook(_expand_references(target.value), {**(payload or {}), "text": text})
        return
    block = f"## {header}\n\n{text.rstrip()}\n\n" if header else f"{text.rstrip()}\n\n"
    try:
        await asyncio.to_thread(_append, Path(target.value), block)
    except OSError as exc:
        raise DeliveryFailed(f"file {target.value}: {exc}") from exc
