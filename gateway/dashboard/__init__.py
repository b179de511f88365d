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
    """Add the dashboard's routes to `api_app.app`; returns the Dashboard (imports Jinja2 lazily)."""
    from gateway.dashboard.core import install

    return install(api_app, gateway)
