"""`web_fetch`: GET a URL with size and time limits; HTML comes back as readable text.

Every fetch goes through `agent.net_guard`: loopback, private, link-local, CGNAT, multicast and
cloud-metadata addresses are refused (in any spelling, after DNS, and on every redirect hop)
unless `[tools.web_fetch] allow_private` or `allow_hosts` opens them. A refusal names the
address, its class and the setting that would open it.
"""

from __future__ import annotations

import asyncio

import aiohttp

from agent.net_guard import AddressRefused, NetPolicy, get_guarded, guarded_session
from agent.settings import WebFetchConfig
from agent.tools.registry import Tool, ToolError, tool


def html_to_text(html: str) -> str:
    import html2text

    converter = html2text.HTML2Text()
    converter.ignore_images = True
    converter.body_width = 0
    return converter.handle(html).strip()


def make_web_fetch_tool(settings: WebFetchConfig) -> Tool:
    """The web_fetch tool bound to its limits and address policy."""
    policy = NetPolicy(allow_private=settings.allow_private, allow_hosts=tuple(settings.allow_hosts))

    @tool(name="web_fetch")
    async def web_fetch(url: str) -> str:
        """Fetch a web page or text document over HTTP(S) and return its text.

        Args:
            url: an http:// or https:// address.
        """
        if not url.startswith(("http://", "https://")):
            raise ToolError(f"{url!r}: only http:// and https:// addresses can be fetched")
        timeout = aiohttp.ClientTimeout(total=settings.timeout)
        try:
            async with guarded_session(policy, timeout) as http:
                response = await get_guarded(http, url, policy, headers={"User-Agent": "hermes-gateway/0.1"})
                async with response:
                    body = bytearray()
                    async for chunk in response.content.iter_chunked(65536):
                        body.extend(chunk)
                        if len(body) > settings.max_bytes:
                            break
                    truncated = len(body) > settings.max_bytes
                    content_type = response.headers.get("Content-Type", "")
                    charset = response.charset or "utf-8"
                    status = response.status
                    final = str(response.url)
        except AddressRefused as exc:
            raise ToolError(f"refused to fetch {url}: {exc}") from None
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise ToolError(f"could not fetch {url}: {type(exc).__name__}: {exc}") from exc
        try:
            text = bytes(body[: settings.max_bytes]).decode(charset, errors="replace")
        except LookupError:
            text = bytes(body[: settings.max_bytes]).decode("utf-8", errors="replace")
        if "html" in content_type or text.lstrip().lower().startswith(("<!doctype html", "<html")):
            text = await asyncio.to_thread(html_to_text, text)
        if len(text) > settings.max_chars:
            text = text[: settings.max_chars]
            truncated = True
        note = "\n[... truncated]" if truncated else ""
        where = url if final == url else f"{url} -> {final}"
        return f"HTTP {status} {where}\n\n{text}{note}"

    return web_fetch
