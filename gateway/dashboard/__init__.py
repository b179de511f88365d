"""The web dashboard: server-rendered pages on the gateway's `[api]` port.

Pages: `/dashboard` (overview), `/skills`, `/learning`, `/memory`, `/cron`, `/sessions`, `/pairing`.
They sit behind the same bearer token or login cookie as the web chat (the ApiApp middleware),
work without JavaScript (forms POST and redirect), and change things only through the service
objects the CLI and the tools use (skill library, learning loop, memory store, cron, pairing).

    from gateway.dashboard import install_dashboard
    install_dashboard(api_app, gateway)      # after ApiApp is built, before the runner starts
"""

from __future__ import annotations

from typing import Any


def install_dashboard(api_app: Any, gateway: Any) -> Any:
    """Build the Dashboard and add every page's routes to `api_app.app` (imports Jinja2 lazily).

    The pages build on `core.Dashboard`; the package puts them together, so core knows no page."""
    from importlib import resources

    from aiohttp import web

    from gateway.dashboard.core import Dashboard
    from gateway.dashboard.pages import cron, learning, memory, overview, pairing, sessions, skills

    dashboard = Dashboard(api_app, gateway)
    app: web.Application = api_app.app
    for module in (overview, skills, learning, memory, cron, sessions, pairing):
        app.router.add_routes(module.routes(dashboard))
    static = resources.files("gateway.dashboard").joinpath("static")
    app.router.add_static("/dashboard/static", str(static), append_version=False)

    async def attach_errors(_app: web.Application) -> None:
        dashboard.errors.attach()

    async def detach_errors(_app: web.Application) -> None:
        dashboard.errors.detach()

    app.on_startup.append(attach_errors)
    app.on_cleanup.append(detach_errors)
    return dashboard
