"""Serving an aiohttp app on 127.0.0.1 on a free port, for the fake servers and test endpoints."""

from __future__ import annotations

from aiohttp import web


async def serve_on_loopback(app: web.Application, *, shutdown_timeout: float = 0.5) -> tuple[web.AppRunner, int]:
    """Start `app` on 127.0.0.1 (port 0) and return its runner and the port it got.

    A short shutdown timeout keeps `runner.cleanup()` from waiting on handlers a test left hanging.
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port
