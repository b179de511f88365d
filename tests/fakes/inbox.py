"""An adapter's `on_event` callback for tests: records inbound events and waits for them."""

from __future__ import annotations

import asyncio

from adapters.base import InboundEvent


class Inbox:
    def __init__(self) -> None:
        self.events: list[InboundEvent] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: InboundEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait(self, count: int, timeout: float = 5.0) -> list[InboundEvent]:
        """The events so far, once there are at least `count` (TimeoutError otherwise)."""
        async def until() -> None:
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(until(), timeout)
        return self.events
