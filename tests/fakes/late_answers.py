"""Calls a fake platform server carries out but answers late or never: the ambiguous failures.

A stalled call is done (the message is posted) but its answer comes only after `seconds` or when
the server stops, so the client times out; a dropped call is done and then its connection is
closed before any answer. Shared by the fake Telegram and Slack servers.
"""

from __future__ import annotations

import asyncio

from aiohttp import web


class LateAnswers:
    def __init__(self) -> None:
        self._stalls: list[tuple[str, float]] = []  # (method, seconds)
        self._drops: list[str] = []                  # methods
        self._stopping = asyncio.Event()

    def stall(self, method: str, n: int, seconds: float) -> None:
        self._stalls.extend((method, seconds) for _ in range(n))

    def drop(self, method: str, n: int) -> None:
        self._drops.extend(method for _ in range(n))

    def stop(self) -> None:
        """Answer every stalled call now (the server is stopping)."""
        self._stopping.set()

    async def after(self, method: str, request: web.Request) -> None:
        """Run once `method` has been carried out, before its answer is sent."""
        stall = next((i for i, (m, _) in enumerate(self._stalls) if m == method), None)
        if stall is not None:
            _, seconds = self._stalls.pop(stall)
            try:        # done, but the answer comes too late for the client
                await asyncio.wait_for(self._stopping.wait(), seconds)
            except TimeoutError:
                pass
        if method in self._drops:
            self._drops.remove(method)
            assert request.transport is not None
            request.transport.close()       # done, but the connection dies before the answer
