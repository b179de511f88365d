"""Platform-neutral message types and the adapter interface every platform implements."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Union


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message. `data` is filled when the adapter downloaded it."""

    kind: Literal["image", "document", "audio", "video"]
    filename: str
    mime_type: str = "application/octet-stream"
    size: int = 0
    url: str = ""
    data: bytes | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A message a user sent to the bot, on any platform."""

    platform: str
    chat_id: str
    user_id: str
    text: str
    message_id: str
    display_name: str = ""
    thread_id: str | None = None
    is_dm: bool = False
    mentioned: bool = False
    reply_to_bot: bool = False
    reply_to: str | None = None
    attachments: tuple[Attachment, ...] = ()
    dedup_key: str = ""  # the platform's own update/event id; empty means message_id


@dataclass(frozen=True)
class ButtonPress:
    """A user pressed a button the bot had posted (approvals, proposals)."""

    platform: str
    chat_id: str
    user_id: str
    action_id: str
    value: str
    message_id: str = ""
    thread_id: str | None = None


InboundEvent = Union[InboundMessage, ButtonPress]
InboundHandler = Callable[[InboundEvent], Awaitable[None]]


@dataclass(frozen=True)
class Button:
    label: str
    action_id: str
    value: str = ""
    style: Literal["default", "primary", "danger"] = "default"


@dataclass(frozen=True)
class OutboundMessage:
    """Something the bot says. `text` is Markdown; the adapter converts it for its platform."""

    chat_id: str
    text: str
    thread_id: str | None = None
    reply_to: str | None = None
    buttons: tuple[Button, ...] = ()
    idempotency_key: str = ""


@dataclass(frozen=True)
class SentMessage:
    platform: str
    chat_id: str
    message_id: str
    thread_id: str | None = None


@dataclass(frozen=True)
class PlatformLimits:
    max_message_chars: int
    min_edit_interval: float = 1.0   # seconds between edits of one message
    supports_edit: bool = True
    supports_buttons: bool = False
    supports_threads: bool = False
    # the platform's rate limits on new messages, held across every process (gateway/store/pacing.py):
    # at most one per `chat_send_interval` s in one chat and one per `send_interval` s in all, after
    # a burst of `send_burst` (0: no limit)
    chat_send_interval: float = 0.0
    send_interval: float = 0.0
    send_burst: int = 3


@dataclass
class AdapterStatus:
    connected: bool = False
    last_error: str = ""
    reconnects: int = 0
    details: dict[str, str] = field(default_factory=dict)


class Adapter(abc.ABC):
    """One platform connection. Subclasses call `self.on_event(...)` for everything inbound."""

    name: str = ""
    limits: PlatformLimits = PlatformLimits(max_message_chars=4000)

    def __init__(self, on_event: InboundHandler) -> None:
        self.on_event = on_event
        self.status = AdapterStatus()

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and begin receiving; returns once receiving has started."""

    async def stop_receiving(self) -> None:
        """Take no new inbound events; sending keeps working (for turns still finishing).

        The first step of a graceful shutdown, before the gateway stops accepting work. When it
        returns, every event already handed to `on_event` has been taken, and nothing more is
        handed over. Events that arrive later are left to the platform to deliver again where it
        can (not confirmed, not acknowledged, or answered with a retryable error), so the next
        process answers them. Default: nothing to do (the adapter receives nothing on its own).
        """
        return

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop receiving and close connections."""

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> SentMessage:
        """Post a message; raises on failure (the delivery layer retries)."""

    async def edit(self, sent: SentMessage, text: str) -> None:
        """Replace the text of a message the bot posted."""
        raise NotImplementedError(f"{self.name} cannot edit messages")

    async def typing(self, chat_id: str, thread_id: str | None = None) -> None:
        """Show a typing indicator, where the platform has one."""
        return


class DeliveryError(Exception):
    """A platform call failed. Adapters raise this so delivery can retry without knowing the platform.

    `retry_after` is the wait the platform asked for (HTTP 429); `permanent` marks failures that
    retrying cannot fix (chat not found, forbidden, bad request). `maybe_delivered` marks failures
    after the request may have reached the platform (a read timeout, a connection dropped before
    the answer): the message may already be posted, and retrying a send could post it twice.
    Adapters leave it False where a retry is safe (the request never left, the platform answered
    with an error, or the platform deduplicates the retry itself).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False,
                 maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.maybe_delivered = maybe_delivered


def sent_without_answer(platform: str, cause: BaseException, *, qualifier: str = "") -> DeliveryError:
    """The `maybe_delivered` error for a request that went out but got no answer (`qualifier`
    prefixes the cause's type name, e.g. "httpx.")."""
    detail = f"{qualifier}{type(cause).__name__}" + (f": {cause}" if str(cause) else "")
    return DeliveryError(f"{platform}: the request was sent but no answer came ({detail})", maybe_delivered=True)
