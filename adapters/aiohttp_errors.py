"""Which aiohttp failures came after a request was sent, for the adapters that talk aiohttp.

Slack (slack_sdk) and Discord (discord.py) both call their platform through aiohttp. A connect
error or connect timeout means nothing was sent, so retrying is safe. A read timeout, the server
closing the connection before answering, a reset while waiting or a broken answer all come after
the request was written: the platform may have acted on it (`DeliveryError.maybe_delivered`).
"""

from __future__ import annotations

import aiohttp


def failed_after_sending(exc: BaseException) -> bool:
    """Whether an aiohttp failure came after the request went out (the platform may have acted on it)."""
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return False
    return isinstance(exc, (TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
                            aiohttp.ClientPayloadError))
