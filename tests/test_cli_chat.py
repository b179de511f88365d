"""`hermes chat -q` end to end: the real CLI process, the real LiteLLM, the fake model server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, text, tool_calls


async def hermes(*args: str, home: Path, timeout: float = 60) -> tuple[int, str, str]:
    env = {**os.environ, "HERMES_HOME": str(home)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(), err.decode()


async def test_one_shot_turn_with_two_tool_calls(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server))
    model_server.add(
        tool_calls(("write_file", {"path": "notes/todo.txt", "content": "buy milk"})),
        tool_calls(("list_files", {"path": "notes"})),
        text("I saved your note in notes/todo.txt."),
    )
    code, out, err = await hermes("chat", "-q", "Remember to buy milk", home=home)
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
    written = list((home / "workspaces").rglob("todo.txt"))
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
