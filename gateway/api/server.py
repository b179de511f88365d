"""The aiohttp application on `[api] host:port`: pages, endpoints, authentication.

Everything needs the bearer token (`Authorization: Bearer TOKEN`) or the login cookie a browser
gets from the login form at `/` (a server-side session, `auth.WebSessions`; failed logins are
limited per address by `auth.LoginLimiter`). Routes that adapters attach (Slack Events API,
Telegram webhook) are exempt: they carry their platform's own signature checks. Cookie-
authenticated requests that change state must come from our own origin (the cookie is also
SameSite=Strict).

Errors are JSON in OpenAI's format (`gateway.api.errors`), 401, 404 and 405 included, except
for a browser asking for a page, which gets the login form or aiohttp's own page. `GET
/openapi.json` serves the OpenAPI 3.1 document of all of it (`gateway.api.openapi`).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from gateway.api.auth import COOKIE_NAME, ClientView, LoginLimiter, TokenAuth, WebSessions
from gateway.api.errors import ApiError, error_response, http_error_response
from gateway.api.openapi import document
from gateway.api.openai_compat import ChatCompletions
from gateway.api.responses import Responses
from gateway.api.sessions_api import SessionsApi
from gateway.api.turns import TOKEN_ID

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HealthProvider = Callable[[], dict[str, Any]]
PUBLIC_PATHS = {("GET", "/"), ("POST", "/login"), ("GET", "/login")}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# no inline scripts: the chat's script is /chat.js, so markup that got into a page could not run
PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; " \
           "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"


def _asset(name: str) -> str:
    return resources.files("gateway.api").joinpath("static", name).read_text(encoding="utf-8")


def _local_path(path: str) -> str:
    """`path` when it is a path on this server (where to go after logging in), else "/"."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or any(ord(c) < 32 for c in path):
        return "/"
    return path


class ApiApp:
    """Builds the application; `public_resources` lists adapter routes that skip our auth."""

    def __init__(self, auth: TokenAuth, completions: ChatCompletions, metrics_body: Callable[[], bytes],
                 metrics_type: str, health: HealthProvider, *, sessions: WebSessions | None = None,
                 clients: ClientView | None = None, limiter: LoginLimiter | None = None) -> None:
        self.auth = auth
        self.sessions = sessions
        self.clients = clients or ClientView()
        self.limiter = limiter or LoginLimiter()
        self.completions = completions
        self.metrics_body = metrics_body
        self.metrics_type = metrics_type
        self.health = health
        self.public_resources: set[Any] = set()
        self.app = web.Application(middlewares=[self._middleware], client_max_size=25 * 1024 * 1024)
        self._chat_page = _asset("chat.html")
        self._login_page = _asset("login.html")
        self._chat_script = _asset("chat.js")
        r = self.app.router
        r.add_get("/", self.index)
        r.add_get("/chat.js", self.chat_script)
        r.add_post("/login", self.login)
        r.add_post("/logout", self.logout)
        r.add_get("/healthz", self.healthz)
        r.add_get("/metrics", self.metrics)
        r.add_get("/openapi.json", self.openapi)
        r.add_get("/v1/models", completions.models)
        r.add_get("/v1/models/{model:.+}", completions.model)  # model ids have slashes
        r.add_post("/v1/chat/completions", completions.handle)
        responses = Responses(completions.turns)
        r.add_post("/v1/responses", responses.create)
        r.add_get("/v1/responses/{response_id}", responses.get)
        sessions = SessionsApi(completions.turns)
        r.add_get("/api/sessions", sessions.list)
        r.add_get("/api/sessions/{session_id}", sessions.get)
        r.add_delete("/api/sessions/{session_id}", sessions.delete)
        r.add_get("/api/sessions/{session_id}/messages", sessions.messages)
        r.add_post("/api/sessions/{session_id}/stop", sessions.stop)

    def attach(self, adapter: Any) -> None:
        """Let an adapter add its routes (webhooks); they are exempt from our bearer token."""
        before = set(self.app.router.resources())
        adapter.attach_routes(self.app)
        self.public_resources |= set(self.app.router.resources()) - before

    # -- authentication --------------------------------------------------------------------------------
    async def authenticate(self, request: web.Request) -> str | None:
        """'bearer' or 'cookie' when the request carries valid credentials, else None (remembered)."""
        if "hermes_auth" in request:
            return request["hermes_auth"]
        how: str | None = None
        header = request.headers.get("Authorization", "")
        if header and self.auth.bearer_ok(header):
            how = "bearer"
        else:
            cookie = request.cookies.get(COOKIE_NAME, "")
            if cookie and self.sessions is not None and await self.sessions.valid(cookie):
                how = "cookie"
        request["hermes_auth"] = how
        return how

    def authenticated(self, request: web.Request) -> str | None:
        """What `authenticate` found for this request (the middleware runs it first)."""
        return request.get("hermes_auth")

    def client_address(self, request: web.Request) -> str:
        return self.clients.address(request.remote or "", request.headers.get("X-Forwarded-For", ""))

    def over_https(self, request: web.Request) -> bool:
        return self.clients.https(request.remote or "", request.transport is not None and
                                  request.transport.get_extra_info("sslcontext") is not None,
                                  request.headers.get("X-Forwarded-Proto", ""))

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route
        if route.resource in self.public_resources or any(a is not self.app for a in request.match_info.apps):
            return await handler(request)
        try:
            response = await self._guarded(request, handler)
        except ApiError as exc:
            response = exc.response()
        except web.HTTPException as exc:
            if exc.status < 400 or self._wants_page(request) or exc.content_type == "text/html":
                raise
            response = http_error_response(request, exc)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            response = error_response(500, "internal error; the details are in the gateway log")
        if not response.prepared:  # a stream's headers are already sent
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    @staticmethod
    def _wants_page(request: web.Request) -> bool:
        """A browser navigating to a page (not a script calling the API): keep HTML errors."""
        return "text/html" in request.headers.get("Accept", "") and not request.path.startswith(("/v1/", "/api/"))

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method, request.path) not in PUBLIC_PATHS:
            how = await self.authenticate(request)
            if how is None:
                if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
                    return self._page(self._login_form("", request.path_qs), status=401)  # a browser: log in
                return error_response(401, "missing or wrong API token: send 'Authorization: Bearer TOKEN'",
                                      code="invalid_api_key", headers={"WWW-Authenticate": 'Bearer realm="hermes"'})
            if how == "cookie" and request.method not in ("GET", "HEAD") and not self._same_origin(request):
                return error_response(403, "cross-origin request refused", code="cross_origin")
            request[TOKEN_ID] = self.auth.token_id
        return await handler(request)

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")
        return origin.split("://", 1)[-1] == request.host

    # -- pages ------------------------------------------------------------------------------------------
    def _page(self, html: str, status: int = 200) -> web.Response:
        return web.Response(text=html, content_type="text/html", status=status,
                            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})

    def _login_form(self, error: str, next_path: str) -> str:
        return self._login_page.replace("{{error}}", error).replace("{{next}}", html.escape(_local_path(next_path)))

    async def index(self, request: web.Request) -> web.Response:
        if await self.authenticate(request) is None:
            return self._page(self._login_form("", "/"))
        return self._page(self._chat_page)

    async def chat_script(self, _request: web.Request) -> web.Response:
        return web.Response(text=self._chat_script, content_type="text/javascript",
                            headers={"Cache-Control": "no-cache"})

    async def login(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            raise web.HTTPFound("/")
        address = self.client_address(request)
        wait = self.limiter.retry_after(address)
        if wait is not None:
            log.warning("login refused for %s: too many failed logins in the last minute", address)
            return web.Response(status=429, text=f"Too many failed logins from {address}; try again in "
                                f"{int(wait + 0.999)} s.", headers={"Retry-After": str(int(wait + 0.999))})
        form = await request.post()
        token = str(form.get("token", ""))
        next_path = _local_path(str(form.get("next", "/")))
        if not token or not self.auth.token_ok(token) or self.sessions is None:
            self.limiter.failed(address)
            log.info("failed login from %s", address)
            return self._page(self._login_form('<p class="error">That token is not right.</p>', next_path), status=401)
        cookie = await self.sessions.create(address)
        response = web.Response(status=303, headers={"Location": next_path})
        response.set_cookie(COOKIE_NAME, cookie, httponly=True, samesite="Strict", path="/",
                            secure=self.over_https(request), max_age=int(self.sessions.seconds))
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        if self.sessions is not None:
            await self.sessions.revoke(request.cookies.get(COOKIE_NAME, ""))
        response = web.Response(status=303, headers={"Location": "/"})
        response.del_cookie(COOKIE_NAME, path="/")
        return response

    # -- operations -------------------------------------------------------------------------------------
    async def healthz(self, _request: web.Request) -> web.Response:
        report = self.health()
        return web.json_response(report, status=200 if report.get("status") == "ok" else 503)

    async def openapi(self, _request: web.Request) -> web.Response:
        return web.json_response(document())

    async def metrics(self, _request: web.Request) -> web.Response:
        body = self.metrics_body()
        response = web.Response(body=body)
        response.headers["Content-Type"] = self.metrics_type
        return response
