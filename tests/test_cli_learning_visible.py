"""Learning seen from the terminal: `hermes chat` says what a review learned ("Learned: ..." for a
skill, "Remembered about you: ..." for memory), and a skill command's own text ("always",
"instead") is never taken for the user correcting the agent.

Driven as a person would: keys into a real terminal (tmux), the screen read back, then
`hermes learning log --json` in a second process.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.learning_support import hermes
from tests.terminal_support import Terminal, child_env, hermes_command, require_tmux

PROMPT = "you ›"
pytestmark = pytest.mark.timeout(400)  # a fresh process imports LiteLLM on the first turn

LOG_SKILL = """---
name: log-rotation
description: Rotate application logs by the team's naming rule. Use when asked to rotate or archive logs.
---

# Log rotation

## Procedure
1. List the log folder.
2. Rename each file to NAME-YYYYMMDD.log.
"""


@pytest.fixture
async def terminal() -> AsyncIterator[Callable[[str], Terminal]]:
    tmux = require_tmux()
    opened: list[Terminal] = []

    def make(name: str) -> Terminal:
        opened.append(Terminal(tmux, name))
        return opened[-1]

    yield make
    for term in opened:
        await term.close()


async def test_a_skill_command_is_not_a_correction_and_the_terminal_says_what_was_learned(
        home: Path, model_server: FakeModelServer, tmp_path: Path, terminal: Callable[[str], Terminal]) -> None:
    write_config(home, model_config(model_server))
    body = (Path(__file__).parents[1] / "skills" / "bundled" / "engineering" / "code-review" / "SKILL.md").read_text()
    assert "always" in body.lower() or "instead" in body.lower()  # the words that were taken for a correction
    folder = tmp_path / "project"
    folder.mkdir()
    term = await terminal("learned").start(hermes_command("chat"), cwd=folder, env=child_env(home))
    await term.wait_for(PROMPT)

    # the skill command: one chat answer, then the review of a turn that used a skill
    model_server.add(text("Reviewed: two findings."), purpose="chat")
    model_server.add(text("Accomplished: nothing new to keep."), purpose="checkpoint")
    await term.type("/code-review the diff in PR 12")
    await term.wait_for("Reviewed: two findings.", after="/code-review the diff in PR 12")
    await term.wait_for_last_line(PROMPT)

    # a 9-call task: its review creates a skill, and the terminal hears of it
    model_server.add(*[tool_calls(("list_files", {"path": "."})) for _ in range(9)], text("Rotated."),
                     purpose="chat")
    model_server.add(
        tool_calls(("skill_manage", {"action": "create", "name": "log-rotation", "category": "operations",
                                     "content": LOG_SKILL}),
                   ("memory", {"action": "add", "target": "user", "text": "Keeps rotated logs for 30 days"})),
        text("Accomplished: rotated the logs.\nSkill: created log-rotation\n"
             "Announce: log-rotation: the naming rule for rotated logs"),
        purpose="checkpoint")
    await term.type("rotate the logs in this folder")
    await term.wait_for("Rotated.", after="rotate the logs in this folder")
    screen = await term.wait_for("Learned: created skill `/log-rotation`", after="Rotated.")
    assert "the naming rule for rotated logs" in screen
    # and what it noted about the user, as the web chat's notice words it
    screen = await term.wait_for("Keeps rotated logs for 30 days", after="Rotated.")
    [noted] = [line for line in screen.splitlines() if "Keeps rotated logs for 30 days" in line]
    assert noted.startswith("Remembered about you: "), noted

    await term.type("/exit")
    assert await term.exit_status() == 0

    code, out, err = await hermes("learning", "log", "--json", home=home)
    assert code == 0, err
    entries = json.loads(out)
    causes = sorted(e["cause"] for e in entries)
    assert "correction" not in causes, causes
    assert causes == ["end_of_turn", "end_of_turn"]
    review_requests = model_server.requests_with_purpose("checkpoint")
    first_review = "\n".join(str(m.get("content", "")) for m in review_requests[0]["messages"])
    assert "Possible corrections or preferences stated by the user" not in first_review
    assert "the diff in PR 12" in first_review
