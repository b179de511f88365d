"""An in-memory Adapter for gateway tests: no platform library, everything observable.

`inject(...)` delivers an inbound message as a platform would; `sent`, `edits` and `typing_calls`
record what the gateway did; `failures` scripts exceptions for the next `send` calls (a
`DeliveryError(retry_after=...)`, a permanent one, ...). `wait_for(predicate)` polls until the
recorded state satisfies a condition.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.base import (
    Adapter,
    InboundHandler,
    InboundMessage,
    OutboundMessage,
    PlatformLimits,
    SentMessage,
)


@dataclass
class Posted:
    message: OutboundMessage
    sent: SentMessage
    text: str
    history: list[str] = field(default_factory=list)


class MemoryAdapter(Adapter):
    def __init__(self, on_event: InboundHandler, *, name: str = "telegram",
                 limits: PlatformLimits | None = None) -> None:
        super().__init__(on_event)
        self.name = name
        self.limits = limits or PlatformLimits(max_message_chars=4096, min_edit_interval=0.05)
        self.posted: list[Posted] = []
        self.send_attempts: list[OutboundMessage] = []
        self.typing_calls = 0
        self.failures: deque[Exception] = deque()
        self.edit_failures: deque[Exception] = deque()
        self.started = False
        self.commands: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)

    async def start(self) -> None:
        self.started = True
        self.status.connected = True

    async def stop(self) -> None:
        self.started = False
        self.status.connected = False

    async def send(self, message: OutboundMessage) -> SentMessage:
        self.send_attempts.append(message)
        if self.failures:
            raise self.failures.popleft()
        sent = SentMessage(self.name, message.chat_id, str(next(self._ids)), message.thread_id)
        self.posted.append(Posted(message, sent, message.text, [message.text]))
        return sent

    async def edit(self, sent: SentMessage, text: str) -> None:
        if self.edit_failures:
            raise self.edit_failures.popleft()
        for post in self.posted:
            if post.sent.message_id == sent.message_id:
                post.text = text
                post.history.append(text)
                return
        raise KeyError(sent.message_id)

    async def typing(self, chat_id: str, thread_id: str | None = None) -> None:
        self.typing_calls += 1

    async def set_commands(self, commands: list[tuple[str, str]]) -> None:
        self.commands = list(commands)

    # -- test helpers ---------------------------------------------------------------------------------
    async def inject(self, text: str = "", *, user: str = "u1", chat: str | None = None, dm: bool = True,
                     message_id: str | None = None, **extra: object) -> InboundMessage:
        message = InboundMessage(platform=self.name, chat_id=chat or (f"dm-{user}" if dm else "group"),
                                 user_id=user, text=text, message_id=message_id or str(next(self._message_ids)),
                                 is_dm=dm, **extra)  # type: ignore[arg-type]
        await self.on_event(message)
        return message

    def texts(self, chat: str | None = None) -> list[str]:
        return [p.text for p in self.posted if chat is None or p.message.chat_id == chat]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; posted so far: {self.texts()!r}")
            await asyncio.sleep(0.01)
