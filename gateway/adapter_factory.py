"""Config → platform adapters. The only place that maps a config section to constructor arguments.

Each platform module is imported inside its builder, so importing this module (and so
`hermes --help`) never loads discord.py, python-telegram-bot or slack-bolt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.config import Config, DiscordConfig, SlackConfig, TelegramConfig

if TYPE_CHECKING:
    from adapters.base import Adapter, InboundHandler


def _telegram(section: TelegramConfig, on_event: InboundHandler) -> Adapter:
    from adapters.telegram import TelegramAdapter

    return TelegramAdapter(
        on_event,
        token=section.token,
        api_base=section.api_base,
        mode=section.mode,
        webhook_url=section.webhook_url,
        webhook_secret=section.webhook_secret,
        poll_timeout=section.poll_timeout,
        max_attachment_bytes=section.max_attachment_mb * 1024 * 1024,
    )


def _discord(section: DiscordConfig, on_event: InboundHandler) -> Adapter:
    from adapters.discord import DiscordAdapter

    return DiscordAdapter(
        on_event,
        token=section.token,
        api_base=section.api_base,
        gateway_url=section.gateway_url,
        max_attachment_bytes=section.max_attachment_mb * 1024 * 1024,
        shard_count=section.shard_count,
    )


def _slack(section: SlackConfig, on_event: InboundHandler) -> Adapter:
    from adapters.slack import SlackAdapter

    return SlackAdapter(
        on_event,
        token=section.token,
        api_base=section.api_base,
        mode=section.mode,
        app_token=section.app_token,
        signing_secret=section.signing_secret,
        events_path=section.events_path,
        max_attachment_bytes=section.max_attachment_mb * 1024 * 1024,
    )


BUILDERS: dict[str, Callable[..., Adapter]] = {"telegram": _telegram, "discord": _discord, "slack": _slack}


def build_adapters(config: Config, on_event: InboundHandler) -> list[Adapter]:
    """One adapter per enabled platform section, in a stable order (telegram, discord, slack).

    A bad section raises ValueError naming the platform and the key.
    """
    adapters: list[Adapter] = []
    for name, build in BUILDERS.items():
        section = getattr(config, name)
        if not section.enabled:
            continue
        try:
            adapters.append(build(section, on_event))
        except ValueError as exc:
            raise ValueError(f"[{name}]: {exc}") from exc
    return adapters


async def _ignore(event: Any) -> None:
    return None


async def check_credentials(name: str, config: Config) -> tuple[bool, str, str]:
    """`hermes doctor`: ask the platform whether `[name]`'s token works, without connecting for real.

    Returns (ok, detail, fix). Telegram: getMe; Discord: GET /users/@me; Slack: auth.test.
    """
    section = getattr(config, name)
    try:
        adapter = BUILDERS[name](section, _ignore)
    except ValueError as exc:
        return False, str(exc), f"fix the [{name}] section of the config"
    check = getattr(adapter, "check_credentials", None)
    if check is None:
        return True, "token set (not verified)", ""
    return await check()
