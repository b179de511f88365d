"""`GET /openapi.json` is docs/openapi.json, behind the token, and documents every route the gateway serves."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from gateway.api.openapi import document
from tests.api_support import api_gateway, raw
from tests.fakes.model_server import FakeModelServer

DOCS = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route of the application, as an OpenAPI path (`{name}` parameters)."""
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD beside every GET
            continue
        path = route.resource.canonical if route.resource is not None else ""
        if isinstance(route.resource, web.StaticResource):
            path += "/{filename}"
        routes.add((route.method.lower(), path))
    return routes


async def test_the_served_document_is_the_one_in_docs_and_needs_the_token(
        home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (gateway, _):
        status, headers, served = await raw(gateway, "GET", "/openapi.json")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert served == json.loads(DOCS.read_text(encoding="utf-8")), \
            "docs/openapi.json is stale: python -m gateway.api.openapi > docs/openapi.json"
        assert served["openapi"] == "3.1.0"
        status, _, answer = await raw(gateway, "GET", "/openapi.json", token="not-the-token")
        assert status == 401 and answer["error"]["code"] == "invalid_api_key"


async def test_every_route_of_the_gateway_is_documented_and_nothing_else(
        home: Path, model_server: FakeModelServer) -> None:
    async with api_gateway(home, model_server) as (gateway, _):
        assert gateway._runner is not None
        served = served_routes(gateway._runner.app)
    documented = {(method, path) for path, item in document()["paths"].items() for method in item}
    assert served - documented == set(), "routes served but not in gateway/api/openapi.py"
    assert documented - served == set(), "documented routes the gateway does not serve"
    assert len(documented) >= 30
