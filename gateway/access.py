"""Who may talk to the bot: deny by default.

- Our own API and web chat (`api`) are behind the bearer token: allowed.
- A DM is answered for admins, users in `allow_users` and users approved by pairing; anyone
  else gets a pairing code and nothing else.
- In a group the bot answers only in allowed channels (`allow_channels`, or a `channels` entry
  with `allowed = true`; `allowed = false` closes a channel) and only when mentioned or replied
  to, unless the channel (or platform) sets `require_mention = false`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapters.base import InboundMessage
from gateway.pairing import Pairing
from gateway.routing import Router

Verdict = Literal["allow", "pair", "ignore"]


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    code: str = ""


PAIRING_TEXT = (
    "Hi! I don't know you yet. Your pairing code is **{code}**.\n"
    "Ask the bot's admin to run `hermes pairing approve {code}`; then message me again."
)


class AccessControl:
    def __init__(self, router: Router, pairing: Pairing) -> None:
        self.router = router
        self.pairing = pairing

    def is_admin(self, platform: str, user_id: str) -> bool:
        settings = self.router.platform_config(platform)
        return settings is not None and user_id in settings.admins

    async def user_allowed(self, platform: str, user_id: str) -> bool:
        if platform == "api":
            return True
        settings = self.router.platform_config(platform)
        if settings is None:
            return False
        if user_id in settings.admins or user_id in settings.allow_users:
            return True
        return await self.pairing.is_approved(platform, user_id)

    def channel_allowed(self, platform: str, chat_id: str) -> bool:
        settings = self.router.platform_config(platform)
        if settings is None:
            return False
        channel = settings.channels.get(chat_id)
        if channel is not None:
            return channel.allowed
        return chat_id in settings.allow_channels

    def mention_required(self, platform: str, chat_id: str) -> bool:
        settings = self.router.platform_config(platform)
        channel = settings.channels.get(chat_id) if settings else None
        if channel is not None and channel.require_mention is not None:
            return channel.require_mention
        return settings.require_mention if settings else True

    async def check(self, message: InboundMessage) -> Decision:
        if message.platform == "api":
            return Decision("allow")
        if message.is_dm:
            if await self.user_allowed(message.platform, message.user_id):
                return Decision("allow")
            code = await self.pairing.request(message.platform, message.user_id, message.display_name,
                                              message.chat_id)
            return Decision("pair", "unknown user", code)
        if not self.channel_allowed(message.platform, message.chat_id):
            return Decision("ignore", "channel not allowed")
        if self.mention_required(message.platform, message.chat_id) and not (
                message.mentioned or message.reply_to_bot):
            return Decision("ignore", "not mentioned")
        return Decision("allow")
