"""HTTP for the hub (aiohttp): size-capped downloads, JSON, and errors a user can read."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from skills.hub.errors import HubError
from skills.hub.settings import HubSettings


def check_url(url: str, settings: HubSettings) -> str:
    """Refuse anything but https (plain http only for loopback hosts or with allow_http)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return url
    if parts.scheme == "http":
        host = parts.hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback or settings.allow_http:
            return url
        raise HubError(f"{url}: plain http is refused; use https (or set [hub] allow_http = true)")
    raise HubError(f"{url}: not an http(s) URL")


class Http:
    """One aiohttp session for a hub operation; use as `async with Http(settings) as http`."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Http:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout, sock_connect=min(10.0, self.settings.timeout))
        self.session = aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": "hermes-skills-hub"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      json_body: Any = None, limit: int | None = None,
                      ok: tuple[int, ...] = (200, 201)) -> tuple[int, bytes]:
        """(status, body); statuses outside `ok` and 404 raise; 404 is returned for callers to name."""
        assert self.session is not None, "use `async with Http(...)`"
        check_url(url, self.settings)
        cap = limit if limit is not None else self.settings.max_total_bytes
        try:
            async with self.session.request(method, url, headers=headers, json=json_body) as response:
                length = response.content_length
                if length is not None and length > cap:
                    raise HubError(f"{url}: the response is {length} bytes; the limit is {cap}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body.extend(chunk)
                    if len(body) > cap:
                        raise HubError(f"{url}: the response is larger than the limit of {cap} bytes")
                if response.status == 404 or response.status in ok:
                    return response.status, bytes(body)
                detail = bytes(body[:300]).decode("utf-8", "replace").strip()
                raise HubError(f"{method} {url} failed: HTTP {response.status} {response.reason}"
                               + (f": {detail}" if detail else ""))
        except aiohttp.ClientError as exc:
            raise HubError(f"network error reaching {url}: {exc}") from exc
        except TimeoutError as exc:
            raise HubError(f"network timeout reaching {url} after {self.settings.timeout:g}s") from exc

    async def get_json(self, url: str, headers: dict[str, str] | None = None, what: str = "") -> Any:
        status, body = await self.request("GET", url, headers=headers)
        if status == 404:
            raise HubError(f"{what or url}: not found (HTTP 404 at {url})")
        try:
            import json
            return json.loads(body)
        except ValueError as exc:
            raise HubError(f"{url}: the answer is not JSON ({exc})") from exc

    async def get_bytes(self, url: str, limit: int, what: str = "") -> bytes:
        status, body = await self.request("GET", url, limit=limit)
        if status == 404:
            raise HubError(f"{what or url}: not found (HTTP 404 at {url})")
        return body
