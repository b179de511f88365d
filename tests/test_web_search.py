"""web_search against search backends served by aiohttp on 127.0.0.1 (SearXNG, Brave, Tavily, Exa)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.tools.registry import ToolContext, ToolRegistry
from agent.tools.web_search import web_search_tools
from agent.tools.web_search_settings import WebSearchConfig
from agent.workspace import Workspace
from gateway.config import ConfigError, load_config
from gateway.home import Home
from gateway.runtime import Runtime
from gateway.sessions import SessionService
from tests.conftest import model_config, write_config
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.model_server import FakeModelServer, text, tool_calls

HITS = [("Hermes Gateway", "https://example.org/hermes", "A self-hosted agent\n that learns skills."),
        ("MCP spec", "https://modelcontextprotocol.io/spec", "The Model Context Protocol.")]


class FakeSearch:
    """SearXNG, Brave, Tavily and Exa endpoints answering from HITS; requests are recorded."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.port = 0

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body = await request.json() if request.method == "POST" else {}
        entry = {"path": request.path, "query": dict(request.query), "headers": dict(request.headers), "body": body}
        self.requests.append(entry)
        return entry

    async def searxng(self, request: web.Request) -> web.Response:
        entry = await self._record(request)
        if entry["query"].get("format") != "json":
            return web.Response(status=403, text="Forbidden")
        return web.json_response({"query": entry["query"]["q"], "results": [
            {"title": t, "url": u, "content": c, "engine": "fake"} for t, u, c in HITS]})

    async def brave(self, request: web.Request) -> web.Response:
        entry = await self._record(request)
        if entry["headers"].get("X-Subscription-Token") != "brave-key":
            return web.json_response({"error": "bad token"}, status=401)
        count = int(entry["query"].get("count", "10"))
        return web.json_response({"web": {"results": [
            {"title": t, "url": u, "description": c} for t, u, c in HITS[:count]]}})

    async def tavily(self, request: web.Request) -> web.Response:
        entry = await self._record(request)
        if entry["headers"].get("Authorization") != "Bearer tvly-key":
            return web.json_response({"detail": "unauthorized"}, status=401)
        return web.json_response({"results": [{"title": t, "url": u, "content": c, "score": 0.9} for t, u, c in HITS]})

    async def exa(self, request: web.Request) -> web.Response:
        entry = await self._record(request)
        if entry["headers"].get("x-api-key") != "exa-key":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"results": [{"title": t, "url": u, "text": c} for t, u, c in HITS]})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/searx/search", self.searxng)
        app.router.add_get("/brave/web/search", self.brave)
        app.router.add_post("/tavily/search", self.tavily)
        app.router.add_post("/exa/search", self.exa)
        self._runner, self.port = await serve_on_loopback(app)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def search_server() -> AsyncIterator[FakeSearch]:
    server = FakeSearch()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def run_tool(cfg: WebSearchConfig, tmp_path: Path, **arguments: Any) -> tuple[bool, str]:
    registry = ToolRegistry(web_search_tools(cfg))
    result = await registry.execute(ToolContext(workspace=Workspace(tmp_path).ensure()), "web_search",
                                    json.dumps(arguments))
    return result.ok, result.content


async def test_agent_searches_searxng(home: Path, model_server: FakeModelServer, search_server: FakeSearch) -> None:
    write_config(home, model_config(model_server)
                 + f'[web_search]\nbackend = "searxng"\nurl = "{search_server.base}/searx"\n')
    model_server.add(tool_calls(("web_search", {"query": "hermes agent", "max_results": 2})),
                     text("Hermes Gateway is a self-hosted agent."))
    h = Home.from_env()
    config = load_config(None, h)
    runtime = await Runtime.open(config, h)
    try:
        if runtime.tools.get("web_search") is None:  # until Runtime.open registers it itself
            for t in web_search_tools(config.web_search):
                runtime.tools.register(t)
        session = await runtime.store.active_session("cli:local", platform="cli", user_id="local")
        result = await SessionService(runtime).run_turn(session, "what is hermes?")
    finally:
        await runtime.close()
    assert result.text == "Hermes Gateway is a self-hosted agent."
    offered = {t["function"]["name"]: t["function"] for t in model_server.requests[0]["tools"]}
    assert set(offered["web_search"]["parameters"]["properties"]) == {"query", "max_results"}
    assert search_server.requests[0]["query"] == {"q": "hermes agent", "format": "json"}
    sent = [m["content"] for m in model_server.requests[1]["messages"] if m["role"] == "tool"][0]
    assert sent == ("Results for 'hermes agent':\n\n"
                    "1. Hermes Gateway\n   https://example.org/hermes\n   A self-hosted agent that learns skills.\n\n"
                    "2. MCP spec\n   https://modelcontextprotocol.io/spec\n   The Model Context Protocol.")


@pytest.mark.parametrize("backend,key,path", [("brave", "brave-key", "/brave"), ("tavily", "tvly-key", "/tavily"),
                                              ("exa", "exa-key", "/exa")])
async def test_api_backends_send_their_key(backend: str, key: str, path: str, search_server: FakeSearch,
                                           tmp_path: Path) -> None:
    cfg = WebSearchConfig(backend=backend, url=search_server.base + path, api_key=key)
    ok, content = await run_tool(cfg, tmp_path, query="mcp", max_results=1)
    assert ok, content
    assert content.startswith("Results for 'mcp':\n\n1. Hermes Gateway\n   https://example.org/hermes")
    assert "2. MCP spec" not in content
    ok, content = await run_tool(cfg.model_copy(update={"api_key": "wrong"}), tmp_path, query="mcp")
    assert not ok and "HTTP 401" in content


async def test_unreachable_backend_is_a_readable_error(tmp_path: Path) -> None:
    cfg = WebSearchConfig(backend="searxng", url="http://127.0.0.1:9/", timeout=2)
    ok, content = await run_tool(cfg, tmp_path, query="x")
    assert not ok and content.startswith("Error: web search (searxng) failed: ClientConnectorError")


async def test_no_backend_no_tool(home: Path, model_server: FakeModelServer) -> None:
    assert web_search_tools(WebSearchConfig()) == []
    write_config(home, model_config(model_server))
    assert load_config(None, Home.from_env()).web_search.backend == ""


def test_incomplete_backend_config_is_an_error(home: Path) -> None:
    write_config(home, '[web_search]\nbackend = "brave"\n')
    with pytest.raises(ConfigError, match=r"web_search: Value error, backend \"brave\" needs api_key"):
        load_config(None, Home.from_env())
    write_config(home, '[web_search]\nbackend = "searxng"\n')
    with pytest.raises(ConfigError, match="needs url"):
        load_config(None, Home.from_env())
