"""The dashboard over HTTP with aiohttp's client against a real gateway on 127.0.0.1.

Every change made through a page is checked where it lands (the file on disk, the store) and
through the service the CLI uses, so the dashboard cannot drift from the real code paths.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.base import DeliveryError
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer, text, tool_calls

TELEGRAM = '[telegram]\nallow_users = ["u1"]\n'
BEARER = {"Authorization": f"Bearer {TOKEN}"}
PAGES = ("/dashboard", "/skills", "/learning", "/memory", "/cron", "/sessions", "/pairing")
SKILL = """---
name: {name}
description: {description}
---
# {title}

1. Run `make test` first.
2. <script>alert("owned")</script> stays text.

[a bad link](javascript:alert(1)) and [a good one](https://example.org/docs).
"""


class Started:
    def __init__(self, gateway: Any, adapters: dict[str, Any]) -> None:
        self.gateway = gateway
        self.adapters = adapters
        self.url = gateway.url.rstrip("/")
        self.services = gateway.runtime.services


@pytest.fixture
async def gw(home: Path, model_server: FakeModelServer) -> AsyncIterator[Started]:
    config = model_config(model_server) + api_section() + TELEGRAM + '[learning]\nauto_skills = "ask"\n' \
        + "[memory]\nmemory_chars = 300\n"
    gateway, adapters = await start_gateway(home, config)
    try:
        yield Started(gateway, adapters)
    finally:
        await gateway.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=BEARER) as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, data: dict[str, Any]) -> tuple[str, str]:
    """POST a form; follow the 303 and return (location, page text)."""
    async with http.post(url, data=data, allow_redirects=False) as response:
        assert response.status == 303, (response.status, await response.text())
        location = response.headers["Location"]
    base = url.split("/", 3)
    async with http.get("/".join(base[:3]) + location) as response:
        assert response.status == 200
        return location, await response.text()


def flash(page: str) -> str:
    match = re.search(r'<p class="flash (?:ok|error)"[^>]*>(.*?)</p>', page, re.DOTALL)
    return match.group(1) if match else ""


async def new_skill(g: Started, name: str = "deploy-checks", team: str = "") -> Any:
    library = await g.services["skill_libraries"].get(team)
    return await library.create(name, SKILL.format(name=name, description="Checks to run before a deploy.",
                                                  title="Deploy checks"), "ops", origin="test")


async def test_no_token_no_dashboard(gw: Started) -> None:
    async with aiohttp.ClientSession() as anonymous:
        for path in PAGES + ("/skills/code-review", "/dashboard/static/dashboard.css", "/cron/abc"):
            async with anonymous.get(gw.url + path) as response:
                assert response.status == 401, path
                assert "Bearer" in response.headers["WWW-Authenticate"]
        for path, data in (("/pairing/approve", {"code": "ABCDEFGH"}), ("/skills/code-review/revert", {"to": "1"}),
                           ("/memory", {"target": "memory", "action": "add", "text": "x"})):
            async with anonymous.post(gw.url + path, data=data) as response:
                assert response.status == 401, path
        async with anonymous.get(gw.url + "/skills", headers={"Authorization": "Bearer wrong-" + TOKEN}) as r:
            assert r.status == 401
        # a browser asking for a page gets the login form, which brings it back to that page
        async with anonymous.get(gw.url + "/skills?q=review", headers={"Accept": "text/html"}) as response:
            page = await response.text()
            assert response.status == 401 and 'name="token"' in page
            assert 'name="next" value="/skills?q=review"' in page and "code-review" not in page
    memory_file = gw.gateway.home.root / "memories" / "MEMORY.md"
    assert not memory_file.exists()


async def test_login_cookie_returns_to_the_page_and_forms_need_the_csrf_token(gw: Started) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.post(gw.url + "/login", data={"token": TOKEN, "next": "/pairing"},
                                allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/pairing"
        async with browser.post(gw.url + "/login", data={"token": TOKEN, "next": "//evil.example/x"},
                                allow_redirects=False) as response:
            assert response.headers["Location"] == "/"
        async with browser.get(gw.url + "/memory") as response:
            page = await response.text()
            assert response.status == 200 and "MEMORY.md" in page
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        csrf = re.search(r'name="_csrf" value="([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]
        assert TOKEN not in page and csrf not in TOKEN
        form = {"target": "memory", "team": "", "action": "add", "text": "Deploys go through CI only"}
        async with browser.post(gw.url + "/memory", data=form, allow_redirects=False) as response:
            assert response.status == 403 and "CSRF" in await response.text()
        async with browser.post(gw.url + "/memory", data={**form, "_csrf": csrf}, allow_redirects=False,
                                headers={"Origin": "http://evil.example"}) as response:
            assert response.status == 403  # the API's same-origin check for cookie POSTs
        async with browser.post(gw.url + "/memory", data={**form, "_csrf": csrf}) as response:
            page = await response.text()
            assert response.status == 200 and "add done in MEMORY.md" in flash(page)
    memory_file = gw.gateway.home.root / "memories" / "MEMORY.md"
    assert "Deploys go through CI only" in memory_file.read_text()


async def test_skill_page_renders_markdown_safely_and_revert_restores_the_file(
        gw: Started, http: aiohttp.ClientSession) -> None:
    skill = await new_skill(gw)
    original = skill.skill_file.read_text()
    library = await gw.services["skill_libraries"].get("")
    await library.patch("deploy-checks", "Run `make test` first.", "Run `make lint` and `make test` first.", "test")
    assert "make lint" in skill.skill_file.read_text()
    async with http.get(gw.url + "/skills?q=deploy") as response:
        listing = await response.text()
    assert 'href="/skills/deploy-checks"' in listing and "never used" in listing
    async with http.get(gw.url + "/skills/deploy-checks") as response:
        page = await response.text()
    assert response.status == 200
    assert "<h1>Deploy checks</h1>" in page and "<code>make lint</code>" in page
    assert "&lt;script&gt;alert" in page and "<script>alert" not in page
    assert 'href="javascript:' not in page and 'href="https://example.org/docs"' in page
    assert "candidate to archive" in page and 'id="use-count">0' in page
    assert '<span class="add">+2. Run `make lint` and `make test` first.</span>' not in page  # numbering kept
    assert '<span class="add">+1. Run `make lint` and `make test` first.</span>' in page
    assert "Revert to version 1" in page and "Revert to version 2" not in page  # 2 is current
    location, page = await post(http, gw.url + "/skills/deploy-checks/revert", {"to": "1"})
    assert location.startswith("/skills/deploy-checks?flash=") and location.endswith("#history")
    assert "reverted &#39;deploy-checks&#39; to version 1" in flash(page)
    assert skill.skill_file.read_text() == original
    history = await library.history_of("deploy-checks")
    assert [(e.action, e.origin) for e in history][-1] == ("revert", "dashboard")
    _, page = await post(http, gw.url + "/skills/deploy-checks/revert", {"to": "9"})
    assert "there is no version 9" in flash(page)
    _, page = await post(http, gw.url + "/skills/deploy-checks/revert", {"to": "one"})
    assert "is not a version number" in flash(page)


async def test_supporting_files_are_listed_and_shown_and_unknown_things_are_404s(
        gw: Started, http: aiohttp.ClientSession) -> None:
    await new_skill(gw)
    library = await gw.services["skill_libraries"].get("")
    await library.write_file("deploy-checks", "references/rollback.md", "<b>Roll back</b> with `make undo`", "test")
    async with http.get(gw.url + "/skills/deploy-checks") as response:
        page = await response.text()
    assert 'href="/skills/deploy-checks/file?path=references/rollback.md"' in page
    async with http.get(gw.url + "/skills/deploy-checks/file?path=references/rollback.md") as response:
        page = await response.text()
    assert response.status == 200 and "&lt;b&gt;Roll back&lt;/b&gt; with `make undo`" in page
    for path in ("/skills/no-such-skill", "/skills/Bad..Name", "/skills?team=nope", "/sessions/nope",
                 "/cron/nope", "/skills/deploy-checks/file?path=../../../config.toml"):
        async with http.get(gw.url + path) as response:
            assert response.status == 404, path
    assert not (gw.gateway.home.root / "teams").exists()  # an unknown team opens no library


async def test_memory_edits_use_the_memory_tools_checks(gw: Started, http: aiohttp.ClientSession) -> None:
    root = gw.gateway.home.root
    _, page = await post(http, gw.url + "/memory", {"target": "memory", "team": "", "action": "add",
                                                    "text": "The staging host is build-02"})
    assert "add done in MEMORY.md" in flash(page)
    _, page = await post(http, gw.url + "/memory", {"target": "memory", "team": "", "action": "add",
                                                    "text": "the key is sk-proj-abcdefghijklmnopqrstuvwx"})
    assert "looks like a secret" in flash(page)
    _, page = await post(http, gw.url + "/memory", {"target": "memory", "team": "", "action": "add",
                                                    "text": "a very long note " * 20})
    assert "MEMORY.md is full" in flash(page) and "Nothing was written" in flash(page)
    _, page = await post(http, gw.url + "/memory", {"target": "memory", "team": "", "action": "replace",
                                                    "old_text": "The staging host is build-02",
                                                    "new_text": "The staging host is build-03"})
    assert "replace done" in flash(page)
    text_now = (root / "memories" / "MEMORY.md").read_text()
    assert "build-03" in text_now and "build-02" not in text_now and "sk-proj" not in text_now
    # USER.md of a user the agent already knows
    memory = gw.services["memory"]
    from agent.memory import Scope

    await memory.add("user", Scope(platform="telegram", user_id="u1"), "Prefers short answers")
    async with http.get(gw.url + "/memory") as response:
        page = await response.text()
    assert "telegram:u1" in page and 'value="Prefers short answers"' in page
    _, page = await post(http, gw.url + "/memory", {"target": "user", "platform": "telegram", "user_id": "u1",
                                                    "action": "remove", "old_text": "Prefers short answers"})
    assert "remove done in USER.md" in flash(page)
    assert await memory.read("user", Scope(platform="telegram", user_id="u1")) == ""
    _, page = await post(http, gw.url + "/memory", {"target": "memory", "action": "drop", "old_text": "x"})
    assert "action: &#39;drop&#39; is not one of add, replace, remove" in flash(page)


async def test_learning_proposals_are_approved_and_rejected_through_the_learning_loop(
        gw: Started, http: aiohttp.ClientSession) -> None:
    loop = gw.services["learning"]
    content = SKILL.format(name="flaky-tests", description="Rerun flaky tests once.", title="Flaky tests")
    first = await loop.log.propose(checkpoint_id=None, session_id="s-1", team="", skill="flaky-tests",
                                   action="create", arguments={"content": content, "category": "testing"},
                                   summary="Rerun a flaky test once before reporting it")
    second = await loop.log.propose(checkpoint_id=None, session_id="s-1", team="", skill="never-mind",
                                    action="create", arguments={"content": "x"}, summary="not useful")
    checkpoint = await loop.log.start("s-1", "", "end_of_turn", "openai/fake-model")
    await loop.log.finish(checkpoint, status="done", decisions="Proposed a skill for flaky tests.",
                          skills=[{"name": "flaky-tests", "action": "create", "diff": "+++ b/x\n+new line\n",
                                   "summary": "", "proposal": first, "description": ""}],
                          prompt_tokens=120, completion_tokens=30)
    async with http.get(gw.url + "/learning") as response:
        page = await response.text()
    assert f'id="proposal-{first}"' in page and "Rerun a flaky test once" in page
    assert "Proposed a skill for flaky tests." in page and "150 tokens" in page
    assert '<span class="add">+new line</span>' in page
    _, page = await post(http, gw.url + f"/learning/proposals/{first}/approve", {})
    assert f"proposal #{first} approved: created skill &#39;flaky-tests&#39;" in flash(page)
    skill_file = gw.gateway.home.skills_dir / "testing" / "flaky-tests" / "SKILL.md"
    assert "Rerun flaky tests once." in skill_file.read_text()
    _, page = await post(http, gw.url + f"/learning/proposals/{second}/reject", {})
    assert f"proposal #{second} rejected" in flash(page)
    assert (await loop.log.proposal(second)).status == "rejected"
    assert not (gw.gateway.home.skills_dir / "general" / "never-mind").exists()
    _, page = await post(http, gw.url + f"/learning/proposals/{first}/approve", {})
    assert "already approved" in flash(page)


async def test_cron_pause_resume_run_now_and_history(gw: Started, http: aiohttp.ClientSession,
                                                     model_server: FakeModelServer) -> None:
    cron = gw.services["cron"]
    job = await cron.create("0 9 * * *", prompt="Summarise the night", deliver="none", name="morning")
    async with http.get(gw.url + "/cron") as response:
        page = await response.text()
    assert "morning" in page and "09:00" in page and f'action="/cron/{job.id}/pause"' in page
    _, page = await post(http, gw.url + f"/cron/{job.id}/pause", {})
    assert f"paused job {job.id}" in flash(page) and (await cron.get(job.id)).paused
    assert f'action="/cron/{job.id}/resume"' in page
    _, page = await post(http, gw.url + f"/cron/{job.id}/resume", {})
    assert "resumed" in flash(page) and not (await cron.get(job.id)).paused
    model_server.add(text("Nothing broke overnight."))
    location, page = await post(http, gw.url + f"/cron/{job.id}/run", {})
    assert location.startswith(f"/cron/{job.id}?") and "started job" in flash(page)
    for _ in range(200):
        runs = await cron.runs(job.id)
        if runs and runs[0].status != "running":
            break
        await asyncio.sleep(0.02)
    async with http.get(gw.url + f"/cron/{job.id}") as response:
        page = await response.text()
    assert "Nothing broke overnight." in page and ">ok</span>" in page
    _, page = await post(http, gw.url + "/cron/nope/pause", {})
    assert "no job with id &#39;nope&#39;" in flash(page)


async def test_sessions_show_transcripts_with_folded_tool_calls_and_usage(
        gw: Started, http: aiohttp.ClientSession, model_server: FakeModelServer) -> None:
    model_server.add(tool_calls(("list_files", {"path": "."})), text("Your workspace is **empty**."))
    tg = gw.adapters["telegram"]
    await tg.inject("What is in my workspace?", user="u1")
    # the first turn of a process imports LiteLLM (3.5 s alone, far more on a loaded machine)
    await tg.wait_for(lambda: any("empty" in t for t in tg.texts()), timeout=60)
    sessions = await gw.gateway.runtime.store.list_sessions()
    async with http.get(gw.url + "/sessions") as response:
        page = await response.text()
    assert f'href="/sessions/{sessions[0].id}"' in page
    async with http.get(gw.url + f"/sessions/{sessions[0].id}") as response:
        page = await response.text()
    assert "What is in my workspace?" in page and "<strong>empty</strong>" in page
    folded = re.search(r'<details class="tool-call">(.*?)</details>', page, re.DOTALL)
    assert folded is not None and "list_files" in folded.group(1) and "&#34;path&#34;: &#34;.&#34;" in folded.group(1)
    assert ">ok</span>" in folded.group(1) and "Result" in folded.group(1)
    assert page.count('<div class="msg tool') == 0  # the result is folded, not a message of its own
    total = await gw.gateway.runtime.store.usage_for_session(sessions[0].id)
    assert total.total_tokens > 0 and f'id="session-tokens">{total.total_tokens} (' in page
    assert re.search(rf"<tr><td>chat</td><td><code>[^<]+</code></td><td class=\"num\">{total.calls}</td>", page)
    async with http.get(gw.url + "/sessions") as response:
        listing = await response.text()
    row = listing[listing.index(f'data-id="{sessions[0].id}"'):]
    row = row[:row.index("</tr>")]
    assert f"{total.total_tokens} ({total.prompt_tokens} / {total.completion_tokens})" in row
    assert f'<td class="num">{total.calls}</td>' in row


async def test_pairing_approve_reject_revoke(gw: Started, http: aiohttp.ClientSession) -> None:
    tg = gw.adapters["telegram"]
    await tg.inject("hello?", user="stranger", display_name="Eve")
    await tg.inject("me too", user="other")
    await tg.wait_for(lambda: len(tg.posted) == 2)
    pending = {p.user_id: p.code for p in await gw.gateway.pairing.pending()}
    async with http.get(gw.url + "/pairing") as response:
        page = await response.text()
    assert pending["stranger"] in page and "(Eve)" in page
    _, page = await post(http, gw.url + "/pairing/approve", {"code": pending["stranger"].lower()})
    assert "approved telegram:stranger (Eve)" in flash(page)
    assert await gw.gateway.pairing.is_approved("telegram", "stranger")
    _, page = await post(http, gw.url + "/pairing/reject", {"code": pending["other"]})
    assert "rejected the pairing request of telegram:other" in flash(page)
    assert await gw.gateway.pairing.pending() == []
    assert not await gw.gateway.pairing.is_approved("telegram", "other")
    _, page = await post(http, gw.url + "/pairing/approve", {"code": pending["other"]})
    assert "no pending pairing code" in flash(page)
    _, page = await post(http, gw.url + "/pairing/revoke", {"platform": "telegram", "user_id": "stranger"})
    assert "revoked telegram:stranger" in flash(page)
    assert not await gw.gateway.pairing.is_approved("telegram", "stranger")


async def test_overview_shows_adapters_activity_errors_and_undelivered(
        gw: Started, http: aiohttp.ClientSession, model_server: FakeModelServer) -> None:
    tg = gw.adapters["telegram"]
    model_server.add(text("First answer."))
    await tg.inject("first question", user="u1")
    await tg.wait_for(lambda: "First answer." in tg.texts(), timeout=60)   # the first turn imports LiteLLM
    model_server.add(text("This one is lost."))
    tg.failures.extend([DeliveryError("chat not found", permanent=True)] * 3)
    await tg.inject("second question", user="u1")
    for _ in range(300):
        if await gw.gateway.runtime.store.undelivered_count():
            break
        await asyncio.sleep(0.02)
    tg.status.connected = False
    tg.status.last_error = "connection reset by peer"
    async with http.get(gw.url + "/dashboard") as response:
        page = await response.text()
    assert response.status == 200
    assert re.search(r'data-name="telegram">.*?disconnected.*?connection reset by peer', page, re.DOTALL)
    assert "This one is lost." in page and "chat not found" in page
    assert "could not deliver a message" in page  # the logged error, in recent errors
    bars = re.findall(r"<rect [^>]*><title>(\d\d:00): (\d+) turns</title>", page)
    assert len(bars) == 24 and sum(int(n) for _, n in bars) == 2
    assert re.search(r"<title>\d\d:00: [1-9][\d,]* tokens</title>", page)
    assert 'id="queue-depth">0<' in page


async def test_counts_of_one_are_singular(gw: Started, http: aiohttp.ClientSession,
                                          model_server: FakeModelServer) -> None:
    model_server.add(text("Hello."))
    tg = gw.adapters["telegram"]
    await tg.inject("hi", user="u1")
    await tg.wait_for(lambda: "Hello." in tg.texts(), timeout=60)
    [session] = await gw.gateway.runtime.store.list_sessions()
    async with http.get(gw.url + f"/sessions/{session.id}") as response:
        page = await response.text()
    assert "1 model call)" in page and "1 model calls" not in page
    from agent.memory import Scope

    await gw.services["memory"].add("user", Scope(platform="telegram", user_id="u1"), "Prefers short answers")
    async with http.get(gw.url + "/memory") as response:
        page = await response.text()
    assert "1 entry" in page and "1 entries" not in page
