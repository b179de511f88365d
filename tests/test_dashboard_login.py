"""Dashboard logins: a random server-side session per login, revoked by logout, ended by expiry,
`Secure` only when a trusted proxy says the request came over HTTPS, and brute force refused.

A real gateway (aiohttp on 127.0.0.1); the browser is aiohttp with cookies handled by hand, so the
raw Set-Cookie header is what is checked.
"""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp

from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer
from tests.store_support import home_store

COOKIE = "hermes_session"


def config(model_server: FakeModelServer, extra: str = "") -> str:
    return model_config(model_server) + api_section() + extra


async def login(http: aiohttp.ClientSession, url: str, token: str = TOKEN, **headers: str) -> aiohttp.ClientResponse:
    async with http.post(url + "login", data={"token": token, "next": "/dashboard"}, allow_redirects=False,
                         headers=headers) as response:
        await response.read()
        return response


def cookie_of(response: aiohttp.ClientResponse) -> tuple[str, SimpleCookie]:
    raw = response.headers.getall("Set-Cookie")
    jar: SimpleCookie = SimpleCookie()
    for header in raw:
        jar.load(header)
    return jar[COOKIE].value, jar


async def status_with(http: aiohttp.ClientSession, url: str, cookie: str) -> int:
    async with http.get(url + "dashboard", headers={"Cookie": f"{COOKIE}={cookie}", "Accept": "text/html"},
                        allow_redirects=False) as response:
        return response.status


async def test_each_login_is_its_own_session_revoked_by_logout_and_new_after_restart(
        home: Path, model_server: FakeModelServer) -> None:
    gateway, _ = await start_gateway(home, config(model_server))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        try:
            url = gateway.url
            first, jar = cookie_of(await login(http, url))
            second, _ = cookie_of(await login(http, url))
            assert first != second and len(first) >= 40
            morsel = jar[COOKIE]
            assert morsel["httponly"] and morsel["samesite"] == "Strict" and not morsel["secure"]
            assert await status_with(http, url, first) == 200 and await status_with(http, url, second) == 200
            assert await status_with(http, url, first[:-2] + "xx") == 401

            async with http.post(url + "logout", allow_redirects=False,
                                 headers={"Cookie": f"{COOKIE}={first}", "Origin": url.rstrip("/")}) as out:
                assert out.status == 303
            assert await status_with(http, url, first) == 401          # revoked on the server
            assert await status_with(http, url, second) == 200         # the other login is untouched
        finally:
            await gateway.stop()

        again, _ = await start_gateway(home, config(model_server))
        try:
            third, _ = cookie_of(await login(http, again.url))
            assert third not in (first, second)
            assert await status_with(http, again.url, third) == 200
            assert await status_with(http, again.url, first) == 401
        finally:
            await again.stop()
    async with home_store(home) as store:
        logins = await store.web_logins()
    assert len(logins) == 2                                             # second and third; first logged out
    stored = " ".join(f"{x.token_hash} {x.address} {x.created_at} {x.expires_at}" for x in logins)
    assert not any(c in stored for c in (first, second, third))        # only hashes of the cookies


async def test_a_session_expires_after_session_hours(home: Path, model_server: FakeModelServer) -> None:
    gateway, _ = await start_gateway(home, config(model_server, "session_hours = 0.0005\n"))   # 1.8 s
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            response = await login(http, gateway.url)
            cookie, jar = cookie_of(response)
            assert jar[COOKIE]["max-age"] == "1"
            assert await status_with(http, gateway.url, cookie) == 200
            for _ in range(200):
                if await status_with(http, gateway.url, cookie) == 401:
                    break
                await asyncio.sleep(0.05)
            assert await status_with(http, gateway.url, cookie) == 401
    finally:
        await gateway.stop()


async def test_secure_only_when_a_trusted_proxy_says_https(home: Path, model_server: FakeModelServer) -> None:
    https = {"X-Forwarded-Proto": "https"}
    untrusted, _ = await start_gateway(home, config(model_server, 'trusted_proxies = ["10.0.0.0/8"]\n'))
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            _, jar = cookie_of(await login(http, untrusted.url, **https))
            assert not jar[COOKIE]["secure"]           # 127.0.0.1 is not a listed proxy: header ignored
    finally:
        await untrusted.stop()
    trusted, _ = await start_gateway(home, config(model_server, 'trusted_proxies = ["127.0.0.1"]\n'))
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            _, jar = cookie_of(await login(http, trusted.url, **https))
            assert jar[COOKIE]["secure"]
            _, jar = cookie_of(await login(http, trusted.url, **{"X-Forwarded-Proto": "http"}))
            assert not jar[COOKIE]["secure"]
            _, jar = cookie_of(await login(http, trusted.url))
            assert not jar[COOKIE]["secure"]
    finally:
        await trusted.stop()


async def test_the_eleventh_failed_login_in_a_minute_is_refused(home: Path, model_server: FakeModelServer) -> None:
    gateway, _ = await start_gateway(home, config(model_server, 'trusted_proxies = ["127.0.0.2"]\n'))
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            for attempt in range(10):
                spoofed = {"X-Forwarded-For": f"203.0.113.{attempt}"}   # ignored: 127.0.0.1 is not trusted
                assert (await login(http, gateway.url, "wrong-token-guess-" + str(attempt), **spoofed)).status == 401
            refused = await login(http, gateway.url, "wrong-token-guess-11")
            assert refused.status == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
            right = await login(http, gateway.url)          # even the right token waits now
            assert right.status == 429 and "Set-Cookie" not in right.headers
            # bearer-token API calls are not affected
            async with http.get(gateway.url + "dashboard", headers={"Authorization": f"Bearer {TOKEN}"}) as page:
                assert page.status == 200
    finally:
        await gateway.stop()
