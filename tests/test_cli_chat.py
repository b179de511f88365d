"""`hermes chat -q` end to end: the real CLI process, the real LiteLLM, the fake model server."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, fault, text, tool_calls
from tests.store_support import home_store


async def hermes(*args: str, home: Path, timeout: float = 60) -> tuple[int, str, str]:
    env = {**os.environ, "HERMES_HOME": str(home)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(), err.decode()


async def test_one_shot_turn_with_two_tool_calls(home: Path, model_server: FakeModelServer, tmp_path: Path) -> None:
    write_config(home, model_config(model_server))
    model_server.add(
        tool_calls(("write_file", {"path": "notes/todo.txt", "content": "buy milk"})),
        tool_calls(("list_files", {"path": "notes"})),
        text("I saved your note in notes/todo.txt."),
    )
    code, out, err, _ = await hermes_in(tmp_path, "chat", "-q", "Remember to buy milk", home=home)
    assert code == 0, err
    assert out.strip() == "I saved your note in notes/todo.txt."
    assert len(model_server.requests) == 3
    first = model_server.requests[0]
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1] == {"role": "user", "content": "Remember to buy milk"}
    assert {t["function"]["name"] for t in first["tools"]} >= {"read_file", "write_file", "list_files"}
    # the second request carries the first tool's result, the third the listing
    tool_results = [m for m in model_server.requests[2]["messages"] if m["role"] == "tool"]
    assert tool_results[0]["content"].startswith("wrote 8 characters to notes/todo.txt")
    assert "notes/todo.txt (8 bytes)" in tool_results[1]["content"]
    written = list(tmp_path.rglob("todo.txt"))  # the current folder is the workspace
    assert len(written) == 1 and written[0].read_text() == "buy milk"


async def test_no_model_configured_says_how_to_configure(home: Path) -> None:
    code, out, err = await hermes("chat", "-q", "hello", home=home)
    assert code == 2
    assert "No model is configured" in err and "[model]" in err and "--model" in err


async def test_model_flag_overrides_config(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server))
    code, out, err = await hermes("chat", "-q", "hi", "--model", "openai/other-model", home=home)
    assert code == 0, err
    assert model_server.requests[0]["model"] == "other-model"


async def test_bad_config_is_a_clear_error(home: Path) -> None:
    write_config(home, '[model]\nname = "openai/x"\ntemperture = 0.2\n')
    code, out, err = await hermes("config", "check", home=home)
    assert code == 2
    assert "config.toml" in err and "model.temperture: unknown key" in err


async def test_help_is_fast_and_imports_nothing_heavy(home: Path) -> None:
    probe = ("import sys; sys.argv=['hermes','--help']\n"
             "from gateway.cli import cli\n"
             "try:\n    cli.main(prog_name='hermes')\nexcept SystemExit:\n    pass\n"
             "heavy=[m for m in ('litellm','discord','telegram','slack_bolt','openai','aiohttp') if m in sys.modules]\n"
             "print('HEAVY', heavy)")
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", probe, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert "HEAVY []" in out.decode()
    assert "chat" in out.decode()


async def test_doctor_reports_a_reachable_model(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server))
    code, out, err = await hermes("doctor", home=home)
    assert code == 0, out + err
    assert "✓ home:" in out and "✓ config:" in out and "✓ model: openai/fake-model answered" in out


async def test_doctor_says_what_to_fix(home: Path) -> None:
    write_config(home, '[model]\nname = "openai/x"\napi_base = "http://127.0.0.1:9/v1"\napi_key = "k"\n'
                       'max_retries = 0\n[telegram]\nenabled = true\ntoken = ""\n')
    code, out, err = await hermes("doctor", home=home)
    assert code == 1
    assert "✗ model: openai/x did not answer" in out and "fix:" in out
    assert "✗ telegram: enabled but no token" in out


# -- the current folder is the workspace -------------------------------------------------------------
async def hermes_in(folder: Path, *args: str, home: Path, timeout: float = 120) -> tuple[int, str, str, float]:
    env = {**os.environ, "HERMES_HOME": str(home)}
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=env, cwd=folder,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(), err.decode(), time.monotonic() - started


async def test_one_shot_works_in_the_current_folder_and_stays_inside_it(
        home: Path, model_server: FakeModelServer, tmp_path: Path) -> None:
    write_config(home, model_config(model_server))
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("# Demo\nA tiny project.\n")
    (tmp_path / "secret.txt").write_text("the neighbour's secret")
    outside_link = folder / "escape"
    outside_link.symlink_to(tmp_path)
    model_server.add(
        tool_calls(("read_file", {"path": "README.md"})),
        tool_calls(("read_file", {"path": "../secret.txt"}), ("read_file", {"path": "escape/secret.txt"}),
                   ("list_files", {"path": ".."})),
        tool_calls(("write_file", {"path": "SUMMARY.md", "content": "A tiny project."})),
        text("Summarised into SUMMARY.md."),
    )
    code, out, err, _ = await hermes_in(folder, "chat", "-q", "summarise README.md", home=home)
    assert code == 0, err
    assert out.strip() == "Summarised into SUMMARY.md."
    last_chat = model_server.requests_with_purpose("chat")[-1]  # a review may follow the refused reads
    results = [m["content"] for m in last_chat["messages"] if m["role"] == "tool"]
    assert "A tiny project." in results[0]
    assert not any("the neighbour's secret" in r for r in results)
    assert all("outside" in r or "Only files inside" in r for r in results[1:4]), results[1:4]
    assert (folder / "SUMMARY.md").read_text() == "A tiny project."
    # nothing left behind in the home, and the session is named after the question
    assert not (home / "workspaces").exists() or not any((home / "workspaces").iterdir())
    async with home_store(home) as store:
        sessions = await store.sessions_in_order()
    assert [(s.key, s.platform, s.user_id) for s in sessions] == [("cli: summarise README.md", "cli", "local")]


async def test_workspace_option_picks_another_folder(home: Path, model_server: FakeModelServer,
                                                     tmp_path: Path) -> None:
    write_config(home, model_config(model_server))
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    model_server.add(tool_calls(("write_file", {"path": "out.txt", "content": "x"})), text("done"))
    code, out, err, _ = await hermes_in(here, "chat", "-q", "write it", "--workspace", str(there), home=home)
    assert code == 0, err
    assert (there / "out.txt").read_text() == "x" and not (here / "out.txt").exists()
    code, out, err, _ = await hermes_in(here, "chat", "-q", "x", "--workspace", str(tmp_path / "nope"), home=home)
    assert code == 2 and "nope" in err


async def test_missing_key_and_dead_url_fail_fast_and_say_what_to_fix(
        home: Path, model_server: FakeModelServer, tmp_path: Path) -> None:
    # default retries (3, from 1 s): a retried failure would take seconds longer than an answer
    write_config(home, f'[model]\nname = "openai/fake-model"\napi_base = "{model_server.base_url}"\n'
                       'api_key = "sk-test"\n')
    code, out, err, normal = await hermes_in(tmp_path, "chat", "-q", "hello", home=home)
    assert code == 0, err

    write_config(home, f'[model]\nname = "openai/fake-model"\napi_base = "{model_server.base_url}"\n')
    before = len(model_server.requests)
    code, out, err, missing_key = await hermes_in(tmp_path, "chat", "-q", "hello", home=home)
    assert code != 0
    assert "OPENAI_API_KEY is not set: export it or set [model] api_key" in err
    assert "InternalServerError" not in err and "Traceback" not in err
    assert len(model_server.requests) == before
    assert missing_key < normal + 2.0, (missing_key, normal)

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_config(home, f'[model]\nname = "openai/fake-model"\napi_base = "http://127.0.0.1:{port}/v1"\n'
                       'api_key = "sk-test"\n')
    code, out, err, dead_url = await hermes_in(tmp_path, "chat", "-q", "hello", home=home)
    assert code != 0
    assert f"127.0.0.1:{port}" in err and "hermes doctor" in err and "[model] api_base" in err
    assert dead_url < normal + 2.0, (dead_url, normal)


@pytest.mark.parametrize(("status", "words"), [
    (401, "refused the API key"), (403, "denied access"), (404, "has no model"), (400, "rejected the request")])
async def test_provider_errors_that_retrying_cannot_fix_are_not_retried(
        model_server: FakeModelServer, status: int, words: str) -> None:
    from agent.llm import LLMClient, LLMError
    from agent.settings import ModelConfig

    model_server.add(fault(status), text("a retry would get this"))
    config = ModelConfig(name="openai/fake-model", api_base=model_server.base_url, api_key="sk-test",
                         max_retries=3, retry_base_delay=0.01, stream=False)
    with pytest.raises(LLMError) as error:
        await LLMClient(config).complete([{"role": "user", "content": "hi"}])
    assert len(model_server.requests) == 1
    message = str(error.value)
    assert words in message and "openai" in message and "[model]" in message


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_server_errors_are_retried(model_server: FakeModelServer, status: int) -> None:
    from agent.llm import LLMClient
    from agent.settings import ModelConfig

    model_server.add(fault(status, retry_after=0 if status == 429 else None), text("second time lucky"))
    config = ModelConfig(name="openai/fake-model", api_base=model_server.base_url, api_key="sk-test",
                         max_retries=3, retry_base_delay=0.01, stream=False)
    response = await LLMClient(config).complete([{"role": "user", "content": "hi"}])
    assert response.message["content"] == "second time lucky" and len(model_server.requests) == 2


async def test_whoami_names_the_terminal_user_and_its_user_md(home: Path) -> None:
    code, out, err = await hermes("whoami", home=home)
    assert code == 0, err
    assert out.splitlines()[0] == "cli:local"
    assert str(home / "memories" / "users" / "cli" / "local" / "USER.md") in out
