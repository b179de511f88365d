"""`web_search`: search the web through a configured backend (SearXNG, Brave, Tavily or Exa).

    tools = web_search_tools(config.web_search)     # [] when no backend is configured

Every backend answers with the same shape, a list of `SearchResult(title, url, snippet)`, which
the tool formats as a numbered list the model can cite and follow with `web_fetch`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from agent.tools.registry import Tool, ToolError, tool
from agent.tools.web_search_settings import WebSearchConfig

USER_AGENT = "hermes-gateway/0.1"
SNIPPET_CHARS = 400


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


Backend = Callable[[aiohttp.ClientSession, WebSearchConfig, str, int], Awaitable[list[SearchResult]]]


def _result(title: Any, url: Any, snippet: Any) -> SearchResult | None:
    if not isinstance(url, str) or not url:
        return None
    text = " ".join(str(snippet or "").split())
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS].rstrip() + "..."
    return SearchResult(str(title or url).strip(), url, text)


async def _json(response: aiohttp.ClientResponse, backend: str) -> Any:
    if response.status != 200:
        body = (await response.text())[:200]
        raise ToolError(f"{backend} answered HTTP {response.status}: {body}")
    try:
        return await response.json(content_type=None)
    except ValueError as exc:
        raise ToolError(f"{backend} did not answer JSON") from exc


async def searxng(http: aiohttp.ClientSession, cfg: WebSearchConfig, query: str, n: int) -> list[SearchResult]:
    """SearXNG's JSON API: GET /search?q=...&format=json (the instance must allow the json format)."""
    async with http.get(f"{cfg.base_url()}/search", params={"q": query, "format": "json"}) as response:
        if response.status == 403:
            raise ToolError("SearXNG refused format=json: enable it under search.formats in its settings.yml")
        data = await _json(response, "SearXNG")
    items = data.get("results", []) if isinstance(data, dict) else []
    return [r for i in items[:n] if (r := _result(i.get("title"), i.get("url"), i.get("content")))]


async def brave(http: aiohttp.ClientSession, cfg: WebSearchConfig, query: str, n: int) -> list[SearchResult]:
    """Brave Search API: GET /web/search with X-Subscription-Token."""
    headers = {"X-Subscription-Token": cfg.api_key, "Accept": "application/json"}
    async with http.get(f"{cfg.base_url()}/web/search", params={"q": query, "count": str(n)},
                        headers=headers) as response:
        data = await _json(response, "Brave")
    items = (data.get("web") or {}).get("results", []) if isinstance(data, dict) else []
    return [r for i in items[:n] if (r := _result(i.get("title"), i.get("url"), i.get("description")))]


async def tavily(http: aiohttp.ClientSession, cfg: WebSearchConfig, query: str, n: int) -> list[SearchResult]:
    """Tavily: POST /search with a bearer key."""
    async with http.post(f"{cfg.base_url()}/search", json={"query": query, "max_results": n},
                         headers={"Authorization": f"Bearer {cfg.api_key}"}) as response:
        data = await _json(response, "Tavily")
    items = data.get("results", []) if isinstance(data, dict) else []
    return [r for i in items[:n] if (r := _result(i.get("title"), i.get("url"), i.get("content")))]


async def exa(http: aiohttp.ClientSession, cfg: WebSearchConfig, query: str, n: int) -> list[SearchResult]:
    """Exa: POST /search with x-api-key, asking for a short text excerpt of each result."""
    body = {"query": query, "numResults": n, "contents": {"text": {"maxCharacters": SNIPPET_CHARS}}}
    async with http.post(f"{cfg.base_url()}/search", json=body, headers={"x-api-key": cfg.api_key}) as response:
        data = await _json(response, "Exa")
    items = data.get("results", []) if isinstance(data, dict) else []
    return [r for i in items[:n]
            if (r := _result(i.get("title"), i.get("url"), i.get("text") or i.get("summary")))]


BACKENDS: dict[str, Backend] = {"searxng": searxng, "brave": brave, "tavily": tavily, "exa": exa}


async def search(cfg: WebSearchConfig, query: str, max_results: int) -> list[SearchResult]:
    """Ask the configured backend; network failures become a ToolError naming the backend."""
    backend = BACKENDS[cfg.backend]
    timeout = aiohttp.ClientTimeout(total=cfg.timeout)
    try:
        async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT}) as http:
            return await backend(http, cfg, query, max_results)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise ToolError(f"web search ({cfg.backend}) failed: {type(exc).__name__}: {exc}") from exc


def format_results(query: str, results: list[SearchResult]) -> str:
    if not results:
        return f"No results for {query!r}."
    lines = [f"Results for {query!r}:"]
    for number, r in enumerate(results, start=1):
        lines.append(f"\n{number}. {r.title}\n   {r.url}" + (f"\n   {r.snippet}" if r.snippet else ""))
    return "\n".join(lines)


def make_web_search_tool(cfg: WebSearchConfig) -> Tool:
    """The web_search tool bound to a configured backend."""

    @tool(name="web_search")
    async def web_search(query: str, max_results: int = cfg.max_results) -> str:
        """Search the web; returns titles, URLs and snippets (read a page with web_fetch).

        Args:
            query: what to search for.
            max_results: how many results to return (1-20).
        """
        if not query.strip():
            raise ToolError("query is empty")
        n = max(1, min(20, max_results))
        return format_results(query, await search(cfg, query, n))

    return web_search


def web_search_tools(cfg: WebSearchConfig) -> list[Tool]:
    """`[web_search]` as tools: the one tool when a backend is configured, none otherwise."""
    return [make_web_search_tool(cfg)] if cfg.backend else []
