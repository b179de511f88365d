"""The dashboard end to end in headless Chromium (Debian's package) driven by Playwright.

One gateway (fake model on 127.0.0.1) and one browser serve the whole module. A user logs in with
the token, opens a skill and reverts a change (the file on disk changes back), approves a pairing
code, pauses a cron job, approves a proposed skill; a request without the token is refused.
Screenshots of the main pages land in test-artifacts/dashboard/.

Outside CI the module skips when Playwright or Chromium is missing; with CI=true it must run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import ROOT, model_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer, text, tool_calls

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = os.environ.get("HERMES_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-quic", "--disable-sync", "--disable-dev-shm-usage"]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
TIMEOUT_MS = 10_000
SKILL = """---
name: deploy-checks
description: Checks to run before a deploy.
---
# Deploy checks

1. Run `make test` first.
2. Tag the release.
"""


def browser_problem() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).is_file():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def require_browser() -> None:
    """Skip with the reason where Playwright or Chromium is missing; with CI=true, fail instead."""
    problem = browser_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {problem}")
        pytest.skip(problem)


@dataclass
class Env:
    gateway: Any
    adapters: dict[str, Any]
    model: FakeModelServer
    browser: Any
    url: str
    dialogs: list[str] = field(default_factory=list)

    @property
    def services(self) -> dict[str, Any]:
        return self.gateway.runtime.services


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    require_browser()
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    model = FakeModelServer()
    await model.start()
    home = tmp_path_factory.mktemp("dashboard") / "home"
    config = model_config(model) + api_section() + '[telegram]\nallow_users = ["u1"]\n' \
        + '[learning]\nauto_skills = "ask"\n'
    gateway, adapters = await start_gateway(home, config)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                yield Env(gateway, adapters, model, browser, gateway.url.rstrip("/"))
            finally:
                await browser.close()
    finally:
        await gateway.stop()
        await model.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page(env: Env) -> AsyncIterator[Any]:
    """A browser tab logged in through the login form (the cookie is kept for the module)."""
    context = await env.browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = await context.new_page()

    async def accept(dialog: Any) -> None:
        env.dialogs.append(dialog.message)
        await dialog.accept()

    tab.on("dialog", accept)
    await tab.goto(env.url + "/dashboard")
    await tab.fill("#token", TOKEN)
    await tab.click("button[type=submit]")
    await tab.wait_for_url(env.url + "/dashboard")
    yield tab
    await context.close()


async def shot(tab: Any, name: str) -> None:
    await tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def flash_text(tab: Any) -> str:
    return (await tab.locator("p.flash").inner_text()).strip()


async def test_without_the_token_nothing_is_shown_and_login_leads_back(env: Env) -> None:
    context = await env.browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        tab = await context.new_page()
        response = await tab.goto(env.url + "/skills?q=review")
        assert response is not None and response.status == 401
        assert await tab.locator("#token").count() == 1 and await tab.locator("table.skills").count() == 0
        await shot(tab, "login")
        api = await context.request.get(env.url + "/pairing")
        assert api.status == 401 and "missing or wrong API token" in await api.text()
        api = await context.request.post(env.url + "/pairing/approve", form={"code": "ABCDEFGH"})
        assert api.status == 401
        await tab.fill("#token", "not-the-token-" + TOKEN)
        await tab.click("button[type=submit]")
        assert "That token is not right." in await tab.inner_text("body")
        await tab.fill("#token", TOKEN)
        await tab.click("button[type=submit]")
        await tab.wait_for_url(re.compile(r".*/skills\?q=review$"))
        assert "code-review" in await tab.inner_text("table.skills")
    finally:
        await context.close()


async def test_open_a_skill_and_revert_a_change(env: Env, page: Any) -> None:
    library = await env.services["skill_libraries"].get("")
    skill = await library.create("deploy-checks", SKILL, "ops", origin="test")
    original = skill.skill_file.read_text()
    await library.patch("deploy-checks", "Run `make test` first.", "Run `make lint` then `make test`.", "agent")
    assert "make lint" in skill.skill_file.read_text()

    await page.goto(env.url + "/skills")
    await shot(page, "skills")
    await page.fill("input[name=q]", "deploy checks")
    await page.click("form[role=search] button")
    await page.click("a:text-is('deploy-checks')")
    await page.wait_for_url(env.url + "/skills/deploy-checks")
    assert await page.inner_text("h1") == "deploy-checks"
    body = page.locator("#skill-body")
    assert await body.locator("h1").inner_text() == "Deploy checks"
    assert "make lint" in await body.inner_text()
    assert "candidate to archive" in await page.inner_text("#use-count")
    await shot(page, "skill")

    await page.locator("li.change[data-number='1'] button", has_text="Revert to version 1").click()
    await page.wait_for_url(re.compile(r".*flash=.*#history$"))
    assert "reverted 'deploy-checks' to version 1" in await flash_text(page)
    assert env.dialogs and "as it was after change #1" in env.dialogs[-1]  # our JS ran under the CSP
    assert skill.skill_file.read_text() == original
    assert "make lint" not in await page.inner_text("#skill-body")


async def test_approve_a_pairing_code(env: Env, page: Any) -> None:
    tg = env.adapters["telegram"]
    await tg.inject("let me in", user="stranger", display_name="Eve")
    await tg.wait_for(lambda: any("pairing code" in t for t in tg.texts()))
    code = (await env.gateway.pairing.pending())[0].code
    await page.goto(env.url + "/pairing")
    row = page.locator(f"tr.pending[data-code='{code}']")
    assert "(Eve)" in await row.inner_text()
    await shot(page, "pairing")
    await row.locator("button", has_text="Approve").click()
    await page.wait_for_url(re.compile(r".*/pairing\?flash="))
    assert await flash_text(page) == "approved telegram:stranger (Eve)"
    assert await env.gateway.pairing.is_approved("telegram", "stranger")
    assert await page.locator("tr.grant[data-user='telegram:stranger']").count() == 1


async def test_pause_a_cron_job(env: Env, page: Any) -> None:
    cron = env.services["cron"]
    job = await cron.create("0 9 * * *", prompt="Summarise the night's alerts", deliver="none", name="morning")
    await page.goto(env.url + "/cron")
    row = page.locator(f"tr.job[data-id='{job.id}']")
    assert await row.locator(".state").inner_text() == "active"
    assert "09:00" in await row.locator(".next").inner_text()
    await shot(page, "cron")
    await row.locator("button", has_text="Pause").click()
    await page.wait_for_url(re.compile(r".*/cron\?flash="))
    assert await page.locator(f"tr.job[data-id='{job.id}'] .state").inner_text() == "paused"
    assert (await cron.get(job.id)).paused
    assert await page.locator(f"tr.job[data-id='{job.id}'] .next").inner_text() == "none"

    # the forms work without JavaScript too: resume from a tab with scripts off
    context = await env.browser.new_context(java_script_enabled=False,
                                            storage_state=await page.context.storage_state())
    try:
        plain = await context.new_page()
        await plain.goto(env.url + "/cron")
        await plain.locator(f"tr.job[data-id='{job.id}'] button", has_text="Resume").click()
        await plain.wait_for_url(re.compile(r".*/cron\?flash="))
        assert not (await cron.get(job.id)).paused
    finally:
        await context.close()


async def test_approve_a_proposed_skill(env: Env, page: Any) -> None:
    loop = env.services["learning"]
    # a different procedure (the same body under another name would be refused as a near duplicate)
    content = ("---\nname: changelog-digest\ndescription: Write release notes from merged PRs.\n---\n"
               "# Changelog digest\n\n1. List merged pull requests: `gh pr list --state merged --limit 50`.\n"
               "2. Group them by label into Features, Fixes and Chores.\n")
    proposal = await loop.log.propose(checkpoint_id=None, session_id="s-browser", team="", skill="changelog-digest",
                                      action="create", arguments={"content": content, "category": "writing"},
                                      summary="Draft release notes from the merged pull requests")
    await page.goto(env.url + "/learning")
    card = page.locator(f"#proposal-{proposal}")
    assert "Draft release notes" in await card.inner_text()
    await shot(page, "learning")
    await card.locator("button", has_text="Approve").click()
    await page.wait_for_url(re.compile(r".*/learning\?flash="))
    assert f"proposal #{proposal} approved: created skill 'changelog-digest'" in await flash_text(page)
    skill_file = env.gateway.home.skills_dir / "writing" / "changelog-digest" / "SKILL.md"
    assert "Write release notes from merged PRs." in skill_file.read_text()
    assert await page.locator(f"#proposal-{proposal}").count() == 0


async def test_overview_sessions_and_memory_pages(env: Env, page: Any) -> None:
    env.model.add(tool_calls(("list_files", {"path": "."})), text("Your workspace is **empty**."))
    tg = env.adapters["telegram"]
    await tg.inject("What is in my workspace?", user="u1")
    await tg.wait_for(lambda: any("empty" in t for t in tg.texts()))
    from agent.memory import Scope

    await env.services["memory"].add("memory", Scope(), "Deploys go through CI only")
    await env.services["memory"].add("user", Scope(platform="telegram", user_id="u1"), "Prefers short answers")

    await page.goto(env.url + "/dashboard")
    assert "connected" in await page.locator("tr.adapter[data-name='telegram']").inner_text()
    assert await page.locator("svg.chart rect").count() == 48
    await shot(page, "overview")

    await page.goto(env.url + "/sessions")
    await shot(page, "sessions")
    await page.locator("tr.session a").first.click()
    folded = page.locator("details.tool-call")
    assert await folded.count() == 1 and not await folded.get_attribute("open")
    assert not await folded.locator("pre").first.is_visible()
    await folded.locator("summary").click()
    assert '"path": "."' in await folded.locator("pre").first.inner_text()
    await shot(page, "session")

    await page.goto(env.url + "/memory")
    entry = page.locator("li.entry input[name=new_text]").first
    await entry.fill("Deploys go through CI only, never by hand")
    await page.locator("li.entry button", has_text="Save").first.click()
    await page.wait_for_url(re.compile(r".*/memory\?flash="))
    assert "replace done in MEMORY.md" in await flash_text(page)
    assert "never by hand" in (env.gateway.home.root / "memories" / "MEMORY.md").read_text()
    await shot(page, "memory")
