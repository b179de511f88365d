"""Interactive `hermes chat` in a real terminal (tmux): the prompt, every slash command, Ctrl-C at an
idle prompt and during a turn, Ctrl-D, the status line, streaming, typing ahead, and --continue.

Everything a test asserts is read off the screen (capture-pane) or off the fake model's requests.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agent.prompt import BASE_PROMPT
from gateway.commands import BUILTIN_COMMANDS
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.terminal_support import Terminal, child_env, hermes_command, require_tmux

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
PROMPT = "you ›"
pytestmark = pytest.mark.timeout(400)  # a fresh process imports LiteLLM on the first turn: slow on a busy machine


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


def user_messages(server: FakeModelServer) -> list[str]:
    """The user's messages in the last chat request (not a background checkpoint's)."""
    chats = [r for r in server.requests if str(r["messages"][0].get("content", "")).startswith(BASE_PROMPT[:40])]
    return [m["content"] for m in chats[-1]["messages"] if m["role"] == "user"]


async def test_every_chat_command_works_in_the_terminal(home: Path, model_server: FakeModelServer, tmp_path: Path,
                                                        terminal: Callable[[str], Terminal]) -> None:
    write_config(home, model_config(model_server))
    user_md = home / "memories" / "users" / "cli" / "local" / "USER.md"
    user_md.parent.mkdir(parents=True)
    user_md.write_text("- 2026-01-01 prefers metric units\n")
    folder = tmp_path / "project"
    folder.mkdir()
    term = await terminal("commands").start(hermes_command("chat"), cwd=folder, env=child_env(home))
    await term.wait_for(PROMPT)

    await term.type("/help")
    screen = await term.wait_for("Ctrl-C stops a running answer", after=f"{PROMPT} /help")
    listed = screen.rsplit(f"{PROMPT} /help", 1)[1]
    for name, _ in BUILTIN_COMMANDS:
        assert f"/{name} " in listed, name
    assert "/exit " in listed
    assert "/daily-report " in listed and "/log-triage " in listed  # every skill is a command
    assert all(len(line) <= 110 for line in listed.splitlines())  # cut to the terminal's width

    answers = {
        "/skills": "skills (run one with /name",
        "/memory": "prefers metric units",        # the terminal user is cli:local: its USER.md
        "/model": "Model: openai/fake-model",
        "/usage": "This conversation: 0 model calls",
        "/stop": "Nothing is running",
        "/approve": "No skill proposals are waiting",
        "/deny": "Nothing is waiting for approval here",
        "/reject": "Usage: /reject ID",
        "/no-such-command": "Unknown command /no-such-command",
    }
    for command, expected in answers.items():
        await term.type(command)
        await term.wait_for(expected, after=f"{PROMPT} {command}")
    assert model_server.requests == []  # none of them asked the model

    await term.type("/new")
    await term.wait_for("Started a fresh conversation. (session ", after=f"{PROMPT} /new")

    model_server.add(text("Report written."))
    await term.type("/daily-report for today")
    await term.wait_for("Report written.", after="/daily-report for today")
    await term.wait_for_last_line(PROMPT)
    assert user_messages(model_server)[-1].startswith("Follow the skill daily-report")
    assert "Request: for today" in user_messages(model_server)[-1]

    await term.type("/exit")
    assert await term.exit_status() == 0


async def test_ctrl_c_at_the_prompt_clears_then_quits_and_nothing_is_lost(
        home: Path, model_server: FakeModelServer, tmp_path: Path, terminal: Callable[[str], Terminal]) -> None:
    write_config(home, model_config(model_server))
    term = await terminal("idle").start(hermes_command("chat"), cwd=tmp_path, env=child_env(home))
    await term.wait_for(PROMPT)

    await term.type("half a thought", enter=False)
    await term.wait_for("half a thought")
    await term.keys("C-c")                                     # clears the line, keeps running
    screen = await term.wait_for_last_line(PROMPT)
    assert "HERMES-EXIT" not in screen
    await term.keys("Up")                                      # what was cleared is not lost
    await term.wait_for(f"{PROMPT} half a thought")
    await term.keys("Enter")
    await term.wait_for("ok", after=f"{PROMPT} half a thought")
    await term.wait_for_last_line(PROMPT)                      # the turn is over
    assert user_messages(model_server)[-1] == "half a thought"

    await term.keys("C-c")                                     # empty prompt: asks once
    await term.wait_for("press Ctrl-C again or Ctrl-D to quit")
    await term.type("still here")                              # typing goes on normally
    await term.wait_for("ok", after=f"{PROMPT} still here")
    await term.wait_for_last_line(PROMPT)
    assert user_messages(model_server)[-1] == "still here"

    await term.keys("C-c")
    await term.wait_for("press Ctrl-C again", after="still here")
    await term.keys("C-c")                                     # the second one quits at once, status 0
    assert await term.exit_status(timeout=20) == 0


async def test_a_turn_shows_status_streams_stops_on_ctrl_c_and_keeps_typeahead(
        home: Path, model_server: FakeModelServer, tmp_path: Path, terminal: Callable[[str], Terminal]) -> None:
    write_config(home, model_config(model_server) + "[tools.terminal]\nenabled = true\n")
    term = await terminal("turn").start(hermes_command("chat"), cwd=tmp_path, env=child_env(home))
    await term.wait_for(PROMPT)

    # the status line while the model thinks, then the answer word by word
    model_server.add(text("alpha beta gamma delta epsilon zeta eta theta", delay=2.0, word_delay=0.6))
    await term.type("hello")
    screen = await term.wait_for("thinking", after=f"{PROMPT} hello")
    assert re.search(f"[{SPINNER}] thinking", screen), screen
    screen = await term.wait_for("alpha beta", after=f"{PROMPT} hello")
    assert "theta" not in screen.rsplit(f"{PROMPT} hello", 1)[1]  # not all at once: streamed
    await term.wait_for("theta", after=f"{PROMPT} hello")
    await term.wait_for_last_line(PROMPT)

    # which tool runs, and Ctrl-C stops the turn (not the program)
    model_server.add(tool_calls(("terminal", {"command": "sleep 30"})), text("should not be needed"))
    await term.type("wait a while")
    screen = await term.wait_for("running terminal", after=f"{PROMPT} wait a while")
    assert re.search(f"[{SPINNER}] running terminal", screen), screen
    await term.keys("C-c")
    await term.wait_for("Stopped.", after=f"{PROMPT} wait a while", timeout=20)
    await term.wait_for_last_line(PROMPT)
    assert "should not be needed" not in await term.screen()   # the turn ended there
    model_server.script.clear()

    # what is typed while the model works is neither echoed over the answer nor lost
    model_server.add(text("slow answer", delay=2.5))
    await term.type("third")
    await term.wait_for("thinking", after=f"{PROMPT} third")
    await term.type("typed meanwhile", enter=False)
    screen = await term.wait_for("slow answer", after=f"{PROMPT} third")
    await term.wait_for(f"{PROMPT} typed meanwhile", after="slow answer")
    assert "typed meanwhile" not in screen.rsplit(f"{PROMPT} third", 1)[1].split("slow answer")[0]
    await term.keys("Enter")
    await term.wait_for("ok", after=f"{PROMPT} typed meanwhile")
    await term.wait_for_last_line(PROMPT)
    assert user_messages(model_server)[-1] == "typed meanwhile"

    await term.keys("C-d")                                     # Ctrl-D at an empty prompt quits, status 0
    assert await term.exit_status(timeout=20) == 0


async def test_chat_starts_a_new_session_and_continue_resumes_the_last(
        home: Path, model_server: FakeModelServer, tmp_path: Path, terminal: Callable[[str], Terminal]) -> None:
    write_config(home, model_config(model_server))
    env = child_env(home)

    async def session_of(name: str, *args: str, say: str) -> str:
        term = await terminal(name).start(hermes_command("chat", *args), cwd=tmp_path, env=env)
        await term.wait_for(PROMPT)
        await term.type(say)
        await term.wait_for("ok", after=f"{PROMPT} {say}")
        await term.wait_for_last_line(PROMPT)
        await term.keys("C-d")
        assert await term.exit_status() == 0
        return re.search(r"Session (\w+) saved", await term.screen()).group(1)  # type: ignore[union-attr]

    first = await session_of("first", say="my name is Ada")
    second = await session_of("second", say="who am I")
    assert second != first
    assert user_messages(model_server) == ["who am I"]  # a new session starts empty

    resumed = await session_of("third", "-c", say="and again")
    assert resumed == second
    assert user_messages(model_server) == ["who am I", "and again"]


async def test_a_config_the_prompt_outran_is_still_refused_with_its_reason(
        home: Path, model_server: FakeModelServer, tmp_path: Path, terminal: Callable[[str], Terminal]) -> None:
    # the prompt shows before the config is validated (pydantic loads in the background): a bad key
    # must still stop the chat with the reason and status 2, before anything is sent
    write_config(home, model_config(model_server) + "[api]\nno_such_key = 1\n")
    term = await terminal("bad-config").start(hermes_command("chat"), cwd=tmp_path, env=child_env(home))
    assert await term.exit_status(timeout=90) == 2
    screen = await term.screen()
    assert "api.no_such_key: unknown key" in screen
    assert model_server.requests == []
