"""The Dashboard object the page modules share: templates, CSRF checks, flash messages, services.

Authentication is the ApiApp middleware's (bearer token or login session cookie; cookie POSTs
from another origin are refused there). On top of that, every form carries a CSRF token derived
from the session's cookie (an HMAC, so it is as secret as the cookie, differs per login and
needs no server state); a cookie-authenticated POST without it is refused. Bearer-token clients
need no CSRF token: a browser never sends that header on its own.

After a POST the handler redirects (303) to a page with `?flash=ID`; the message lives in a
small bounded in-memory store of this Dashboard, so a crafted link cannot put words on a page.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from gateway.api.auth import COOKIE_NAME, csrf_for
from gateway.dashboard.errors import RecentErrors
from gateway.dashboard.render import make_environment

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# "same-origin", not the API's "no-referrer": under no-referrer Chromium sends `Origin: null` with a
# form POST, and the same-origin check (rightly) refuses it. Other sites still get no referrer.
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
NAV = (("/dashboard", "Overview"), ("/skills", "Skills"), ("/learning", "Learning"), ("/memory", "Memory"),
       ("/cron", "Cron"), ("/sessions", "Sessions"), ("/pairing", "Pairing"))
MAX_FLASHES = 200
BY = "dashboard"


@dataclass(frozen=True)
class Flash:
    kind: str   # "ok" | "error"
    text: str


class FlashStore:
    """Messages shown once after a redirect; bounded, oldest dropped first."""

    def __init__(self, limit: int = MAX_FLASHES) -> None:
        self.limit = limit
        self._items: OrderedDict[str, Flash] = OrderedDict()

    def add(self, kind: str, text: str) -> str:
        key = secrets.token_urlsafe(9)
        self._items[key] = Flash(kind, text)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)
        return key

    def pop(self, key: str) -> Flash | None:
        return self._items.pop(key, None) if key else None


class Dashboard:
    """Routes are added by the page modules through `install`; handlers use the helpers here."""

    def __init__(self, api_app: Any, gateway: Any) -> None:
        self.api = api_app
        self.gateway = gateway
        self.templates = make_environment(gateway.runtime.store.redactor if gateway.runtime is not None else None)
        self.flashes = FlashStore()
        self.errors = RecentErrors()

    def csrf_token(self, request: web.Request) -> str:
        """This login's CSRF token ('' for bearer-token requests, which need none)."""
        cookie = request.cookies.get(COOKIE_NAME, "")
        return csrf_for(cookie) if cookie and self.api.authenticated(request) == "cookie" else ""

    # -- services -------------------------------------------------------------------------------------
    @property
    def runtime(self) -> Any:
        runtime = self.gateway.runtime
        if runtime is None:
            raise web.HTTPServiceUnavailable(text="the gateway is stopping")
        return runtime

    def service(self, name: str) -> Any:
        found = self.runtime.services.get(name)
        if found is None:
            raise web.HTTPServiceUnavailable(text=f"{name} is not available in this gateway")
        return found

    def teams(self) -> list[str]:
        """"" (the library without a team) and every configured [[teams]] name."""
        return [""] + [t.name for t in self.gateway.config.teams]

    def team_of(self, value: str | None) -> str:
        team = (value or "").strip()
        if team not in self.teams():
            raise web.HTTPNotFound(text=f"team {team!r} is not configured ([[teams]] in config.toml)")
        return team

    # -- responses ------------------------------------------------------------------------------------
    def page(self, request: web.Request, template: str, *, active: str, status: int = 200,
             **context: Any) -> web.Response:
        html = self.templates.get_template(template).render(
            csrf=self.csrf_token(request), flash=self.flashes.pop(request.query.get("flash", "")), nav=NAV,
            active=active, **context)
        return web.Response(text=html, content_type="text/html", status=status, headers=PAGE_HEADERS)

    def redirect(self, location: str, text: str, kind: str = "ok") -> web.Response:
        """A 303 to `location` that shows `text` once."""
        key = self.flashes.add(kind, text)
        path, _, fragment = location.partition("#")
        sep = "&" if "?" in path else "?"
        target = f"{path}{sep}flash={key}" + (f"#{fragment}" if fragment else "")
        return web.Response(status=303, headers={"Location": target})

    async def form(self, request: web.Request) -> MultiDictProxy[Any]:
        """The POSTed form, after the CSRF check for cookie-authenticated browsers."""
        form = await request.post()
        if self.api.authenticated(request) == "cookie":
            sent = str(form.get("_csrf", ""))
            if not hmac.compare_digest(sent.encode(), self.csrf_token(request).encode()):
                raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong; reload the page and retry")
        return form
