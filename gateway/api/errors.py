"""Errors in OpenAI's format: `{"error": {"message", "type", "param", "code"}}`, for every status.

Clients of the OpenAI API (the official SDKs, LiteLLM, chat UIs) read `error.message` from any
non-2xx answer; a plain-text 404 or 405 shows up in them as an unreadable failure. `ApiError`
is raised by handlers and request validation; `error_response` builds the JSON body; and
`http_error_response` turns aiohttp's own HTTP exceptions (no such route, wrong method, body too
large) into the same shape.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error",
               413: "invalid_request_error", 429: "rate_limit_error", 502: "upstream_error",
               503: "server_error"}
ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large", 409: "conflict"}


class ApiError(Exception):
    """An error answer: status, message, and the request parameter it is about (if any)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, param=self.param, code=self.code, kind=self.kind)

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status)


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None,
               kind: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind or ERROR_TYPES.get(status, "server_error"),
                      "param": param, "code": code if code is not None else ERROR_CODES.get(status)}}


def error_response(status: int, message: str, *, param: str | None = None, code: str | None = None,
                   kind: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(status, message, param=param, code=code, kind=kind), status=status,
                             headers=headers)


def http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's 4xx/5xx exception as an OpenAI-style JSON error (keeps `Allow` on a 405)."""
    if exc.status == 404:
        message = f"no such endpoint: {request.method} {request.path}"
    elif exc.status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
        message = f"{request.path} does not accept {request.method}" + \
            (f"; use {', '.join(allowed)}" if allowed else "")
    else:
        message = exc.reason or "request failed"
    custom = exc.text or ""
    if custom and custom != f"{exc.status}: {exc.reason}":  # a handler's own words say more
        message = custom
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return error_response(exc.status, message, headers=headers)
