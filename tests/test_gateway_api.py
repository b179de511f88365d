"""Our HTTP surface with real clients: the official `openai` client, aiohttp for pages and probes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import openai
import pytest

from gateway.api.auth import WeakTokenError, check_token, resolve_token
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer, text


async def test_openai_client_non_streaming_and_streaming(home: Path, model_server: FakeModelServer) -> None:
    model_server.add(text("Hello from Hermes."), text("Streaming works fine here."))
    gateway, _ = await start_gateway(home, model_config(model_server) + api_section(), platforms=())
    client = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key=TOKEN, max_retries=0)
    try:
        answer = await client.chat.completions.create(
            model="hermes", user="alice", messages=[{"role": "user", "content": "Say hello"}])
        assert answer.choices[0].message.content == "Hello from Hermes."
        assert answer.usage is not None and answer.usage.total_tokens == 18
        assert not model_server.requests[0].get("stream")
        stream = await client.chat.completions.create(
            model="hermes", user="alice", stream=True, messages=[{"role": "user", "content": "Stream please"}])
        pieces = [chunk.choices[0].delta.content async for chunk in stream
                  if chunk.choices and chunk.choices[0].delta.content]
        assert "".join(pieces) == "Streaming works fine here." and len(pieces) > 1
        # stateless: the `user` field names the person, not a conversation
        second = model_server.requests[1]["messages"]
        assert [m["content"] for m in second if m["role"] == "user"] == ["Stream please"]
        await client.chat.completions.create(model="hermes", user="bob", messages=[{"role": "user", "content": "hi"}])
        assert [m["content"] for m in model_server.requests[2]["messages"] if m["role"] == "user"] == ["hi"]
        bad = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key="wrong-" + TOKEN, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(model="hermes", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="hermes", messages=[{"role": "assistant", "content": "hi"}])
        await bad.close()
    finally:
        await client.close()
        await gateway.stop()


async def test_every_endpoint_needs_the_token_and_metrics_count(home: Path, model_server: FakeModelServer) -> None:
    gateway, _ = await start_gateway(home, model_config(model_server) + api_section(), platforms=())
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/healthz", "/metrics", "/v1/models"):
                async with http.get(gateway.url.rstrip("/") + path) as response:
                    assert response.status == 401, path
            async with http.post(gateway.url + "v1/chat/completions", json={}) as response:
                assert response.status == 401
            async with http.get(gateway.url + "healthz", headers=auth) as response:
                health = await response.json()
                assert response.status == 200 and health["status"] == "ok"
                assert health["model"] == "openai/fake-model"
            async with http.post(gateway.url + "v1/chat/completions", headers=auth, json={
                    "model": "hermes", "user": "carol", "messages": [{"role": "user", "content": "count me"}]}) as r:
                assert r.status == 200
            async with http.get(gateway.url + "metrics", headers=auth) as response:
                assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
                body = await response.text()
        assert 'hermes_messages_in_total{platform="api"} 1.0' in body
        assert 'hermes_messages_out_total{platform="api"} 1.0' in body
        assert 'hermes_turn_seconds_count{platform="api"} 1.0' in body
        assert 'hermes_model_calls_total{model="openai/fake-model"} 1.0' in body
        assert 'hermes_tokens_total{kind="prompt"} 11.0' in body
        assert 'hermes_queue_depth{platform="api"} 0.0' in body
        assert "hermes_errors_total" in body
    finally:
        await gateway.stop()


async def test_browser_logs_in_once_and_chats_with_a_cookie(home: Path, model_server: FakeModelServer) -> None:
    gateway, _ = await start_gateway(home, api_section(), platforms=())  # no model configured
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            async with browser.get(gateway.url) as response:
                page = await response.text()
                assert response.status == 200 and 'name="token"' in page and "/v1/chat" not in page
            async with browser.post(gateway.url + "login", data={"token": "nope"}) as response:
                assert response.status == 401 and "not right" in await response.text()
            async with browser.post(gateway.url + "login", data={"token": TOKEN}, allow_redirects=False) as r:
                assert r.status == 303
                cookie = r.cookies["hermes_session"]
                assert cookie["httponly"] and cookie["samesite"] == "Strict" and TOKEN not in cookie.value
            async with browser.get(gateway.url) as response:
                page = await response.text()
                assert '<script src="/chat.js"></script>' in page and "http" not in page.split("<script")[1]
            async with browser.get(gateway.url + "chat.js") as response:
                script = await response.text()
                assert response.status == 200 and "/v1/chat/completions" in script and "http" not in script
            async with browser.post(gateway.url + "v1/chat/completions", json={
                    "model": "hermes", "stream": True, "user": "web-1",
                    "messages": [{"role": "user", "content": "hello"}]}) as response:
                stream = await response.text()
            assert response.status == 200 and "no model is configured" in stream and stream.endswith("[DONE]\n\n")
            async with browser.post(gateway.url + "v1/chat/completions", json={"messages": []},
                                    headers={"Origin": "http://evil.example"}) as response:
                assert response.status == 403  # cookie auth from another origin is refused
    finally:
        await gateway.stop()


@pytest.mark.parametrize("token", ["changeme", "short-token-123", "${HERMES_API_TOKEN}",
                                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "your-token-goes-here-please-now"])
def test_weak_tokens_are_refused_with_a_way_to_generate_one(token: str) -> None:
    with pytest.raises(WeakTokenError, match=r"secrets\.token_urlsafe\(32\)"):
        check_token(token)


async def test_gateway_refuses_to_start_with_a_weak_token(home: Path) -> None:
    with pytest.raises(WeakTokenError, match="at least 24 are required"):
        await start_gateway(home, api_section(token="abc123def456"), platforms=())


def test_first_run_generates_a_strong_token_in_secrets_env(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    secrets = tmp_path / "secrets.env"
    secrets.write_text("OPENAI_API_KEY=sk-x")
    source = resolve_token("", secrets, env)
    assert source.generated and check_token(source.token) == source.token
    assert secrets.read_text() == f"OPENAI_API_KEY=sk-x\nHERMES_API_TOKEN={source.token}\n"
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert not resolve_token("", secrets, env).generated  # now read from the environment


async def test_streaming_client_sees_an_upstream_error_as_an_error(home: Path, model_server: FakeModelServer) -> None:
    from tests.fakes.model_server import fault

    model_server.add(*[fault(500)] * 10)
    gateway, _ = await start_gateway(home, model_config(model_server, max_retries=0) + api_section(), platforms=())
    client = openai.AsyncOpenAI(base_url=gateway.url + "v1", api_key=TOKEN, max_retries=0)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="hermes", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 502
        assert "could not answer" in str(info.value)
    finally:
        await client.close()
        await asyncio.wait_for(gateway.stop(), 10)
