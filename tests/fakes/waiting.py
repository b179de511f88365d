"""Waiting in a fake server until the bot has sent enough messages to a chat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def wait_for_sent(sent: Callable[[], list[dict[str, Any]]], changed: asyncio.Event, count: int,
                        timeout: float, where: str) -> list[dict[str, Any]]:
    """`sent()` once it holds `count` messages; AssertionError naming `where` after `timeout` seconds.

    `changed` is the event the server sets whenever the bot sends something.
    """
    deadline = time.monotonic() + timeout
    while len(sent()) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} message(s) in {where}, got {sent()}")
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), 0.05)
        except TimeoutError:
            pass
    return sent()
