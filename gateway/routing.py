"""Which session an inbound message belongs to, and which team's library it uses.

Session keys (stable strings, stored with the session so it resumes after a restart):
- a DM is one session per user: `telegram:dm:<user>`;
- in a group the scope comes from the channel's config, else the platform's `session_scope`:
  `user` (default) `telegram:<chat>:user:<user>`, `channel` `telegram:<chat>`, or
  `thread` `telegram:<chat>:thread:<thread>` (a message outside any thread falls back to the
  channel's conversation);
- our own API/web chat: `gateway.api.turns` (a fresh session per request, or the client's
  `X-Hermes-Session-Id` scoped to the API token).

Teams: `[[teams]]` entries list channels as `platform:chat_id` (or `platform:*`); a session in
such a channel belongs to that team. With no teams every session has team "" (one library).
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.base import InboundMessage
from gateway.config import ChannelConfig, Config, PlatformConfig

PLATFORMS = ("telegram", "discord", "slack")


@dataclass(frozen=True)
class Route:
    key: str
    team: str
    scope: str


class Router:
    """Session keys and teams from the configuration (immutable after construction)."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._teams: dict[str, str] = {}
        for team in config.teams:
            for channel in team.channels:
                platform, sep, chat = channel.partition(":")
                if not sep or not platform or not chat:
                    raise ValueError(f"teams: {team.name}: channel {channel!r} must look like 'slack:C123'")
                self._teams.setdefault(f"{platform}:{chat}", team.name)

    def platform_config(self, platform: str) -> PlatformConfig | None:
        if platform not in PLATFORMS:
            return None
        return getattr(self._config, platform)

    def channel_config(self, platform: str, chat_id: str) -> ChannelConfig | None:
        settings = self.platform_config(platform)
        return settings.channels.get(chat_id) if settings else None

    def team_for(self, platform: str, chat_id: str) -> str:
        return self._teams.get(f"{platform}:{chat_id}") or self._teams.get(f"{platform}:*", "")

    def scope_for(self, platform: str, chat_id: str) -> str:
        channel = self.channel_config(platform, chat_id)
        if channel is not None and channel.session_scope:
            return channel.session_scope
        settings = self.platform_config(platform)
        return settings.session_scope if settings else "user"

    def route(self, message: InboundMessage) -> Route:
        team = self.team_for(message.platform, message.chat_id)
        if message.is_dm:
            return Route(f"{message.platform}:dm:{message.user_id}", team, "dm")
        scope = self.scope_for(message.platform, message.chat_id)
        base = f"{message.platform}:{message.chat_id}"
        if scope == "channel":
            return Route(base, team, scope)
        if scope == "thread":
            if message.thread_id:
                return Route(f"{base}:thread:{message.thread_id}", team, scope)
            return Route(base, team, "channel")
        return Route(f"{base}:user:{message.user_id}", team, "user")
