"""`hermes setup` as a new user runs it: scripted with flags, and interactively in a terminal (tmux).

The model test is one real call through LiteLLM to the fake model server; what is written is read
back the way the gateway reads it (`hermes config check`), and secrets.env stays the owner's.
"""

from __future__ import annotations

import stat
from pathlib import Path

from tests.cli_support import hermes
from tests.fakes.model_server import FakeModelServer, fault
from tests.terminal_support import Terminal, child_env, hermes_command, require_tmux




def secrets(home: Path) -> dict[str, str]:
    lines = (home / "secrets.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


async def test_scripted_setup_tests_the_model_writes_a_config_the_gateway_accepts_and_is_idempotent(
        home: Path, model_server: FakeModelServer) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("# my notes stay\n[agent]\nmax_iterations = 12\n")
    code, out, err = await hermes("setup", "--yes", "--provider", "vllm", "--api-base", model_server.base_url,
                                  "--model", "fake-model", home=home)
    assert code == 0, err
    assert "✓ openai/fake-model answered" in err
    assert len(model_server.probes) == 1 and model_server.probes[0]["model"] == "fake-model"
    config = (home / "config.toml").read_text()
    assert config.startswith("# my notes stay\n") and "max_iterations = 12" in config
    assert 'name = "openai/fake-model"' in config and 'api_key = "dummy"' in config
    assert 'token = "${HERMES_API_TOKEN}"' in config
    assert stat.S_IMODE((home / "secrets.env").stat().st_mode) == 0o600
    token = secrets(home)["HERMES_API_TOKEN"]
    assert len(token) >= 32 and token not in out + err  # the login hint names the file, not the token
    assert f"grep HERMES_API_TOKEN {home / 'secrets.env'}" in out and "http://127.0.0.1:8765/" in out
    code, out, err = await hermes("config", "check", home=home)
    assert code == 0 and "model: openai/fake-model" in out, err

    # again, now a hosted provider with a key and Telegram: one line per secret, the token kept
    code, out, err = await hermes("setup", "--yes", "--provider", "openai", "--api-key", "sk-first",
                                  "--skip-test", "--platform", "telegram", "--platform-token", "123:abc",
                                  "--user-id", "4242", home=home)
    assert code == 0, err
    code, out, err = await hermes("setup", "--yes", "--provider", "openai", "--api-key", "sk-second",
                                  "--skip-test", home=home)
    assert code == 0, err
    # a script that changes only the model: the key kept in secrets.env is used, not asked for again
    code, out, err = await hermes("setup", "--yes", "--provider", "openai", "--model", "openai/gpt-4.1-mini",
                                  "--skip-test", home=home, env={"OPENAI_API_KEY": ""})
    assert code == 0, err
    assert 'name = "openai/gpt-4.1-mini"' in (home / "config.toml").read_text()
    values = secrets(home)
    assert values["OPENAI_API_KEY"] == "sk-second" and values["HERMES_API_TOKEN"] == token
    assert (home / "secrets.env").read_text().count("OPENAI_API_KEY=") == 1
    config = (home / "config.toml").read_text()
    assert "sk-second" not in config and 'api_key = "${OPENAI_API_KEY}"' in config
    assert 'allow_users = ["4242"]' in config and 'token = "${TELEGRAM_BOT_TOKEN}"' in config
    assert values["TELEGRAM_BOT_TOKEN"] == "123:abc" and "max_iterations = 12" in config


async def test_a_model_that_refuses_the_key_writes_nothing_and_says_what_to_set(
        home: Path, model_server: FakeModelServer) -> None:
    model_server.add(fault(401), purpose="probe")
    code, out, err = await hermes("setup", "--yes", "--provider", "openai-compatible", "--api-base",
                                  model_server.base_url, "--model", "fake-model", "--api-key", "sk-wrong",
                                  home=home)
    assert code == 1
    assert "✗ openai/fake-model did not answer" in err and "api_key" in err and "nothing was written" in err
    assert not (home / "config.toml").exists() and not (home / "secrets.env").exists()
    code, _, err = await hermes("setup", "--yes", "--provider", "vllm", "--api-base", "http://localhost:8000",
                                home=home)
    assert code == 2 and "api_base: an OpenAI-compatible api_base ends in /v1 (try http://localhost:8000/v1)" in err


async def test_interactive_setup_in_a_terminal(home: Path, model_server: FakeModelServer, tmp_path: Path) -> None:
    terminal = await Terminal(require_tmux(), "setup").start(hermes_command("setup"), cwd=tmp_path,
                                                             env=child_env(home))
    try:
        await terminal.wait_for("Number or name")
        await terminal.type("5")                                   # vLLM or LM Studio
        await terminal.wait_for("Model [openai/served-model-name]")
        await terminal.type("fake-model")
        await terminal.wait_for("Server URL (api_base)")
        await terminal.type(model_server.base_url)
        await terminal.wait_for("Connect a chat platform now?")
        await terminal.type("")                                    # none
        await terminal.wait_for("hermes chat")
        screen = await terminal.screen()
        assert "✓ openai/fake-model answered" in screen and "log in with the token" in screen
        assert await terminal.exit_status() == 0
    finally:
        await terminal.close()
    assert 'name = "openai/fake-model"' in (home / "config.toml").read_text()
    assert len(model_server.probes) == 1

    # again: Enter keeps what is there (provider, model, api_base), and now it connects Telegram: its
    # token is typed blind, the user id becomes the allowed admin
    terminal = await Terminal(require_tmux(), "setup-again").start(hermes_command("setup"), cwd=tmp_path,
                                                                   env=child_env(home))
    try:
        await terminal.wait_for("Number or name [5]")
        await terminal.type("")
        await terminal.wait_for("Model [openai/fake-model]")
        await terminal.type("")
        await terminal.wait_for(f"Server URL (api_base) [{model_server.base_url}]")
        await terminal.type("")
        await terminal.wait_for("Connect a chat platform now?")
        await terminal.type("telegram")
        await terminal.wait_for("telegram bot token")
        await terminal.type("123456:typed-blind")
        await terminal.wait_for("Your telegram user id")
        await terminal.type("4242")
        await terminal.wait_for("hermes chat")
        screen = await terminal.screen()
        assert "typed-blind" not in screen  # the token is never echoed
        assert await terminal.exit_status() == 0
    finally:
        await terminal.close()
    config = (home / "config.toml").read_text()
    assert 'allow_users = ["4242"]' in config and 'token = "${TELEGRAM_BOT_TOKEN}"' in config
    assert secrets(home)["TELEGRAM_BOT_TOKEN"] == "123456:typed-blind"
    assert config.count("[model]") == 1 and len(model_server.probes) == 2
    assert 'name = "openai/fake-model"' in config and f'api_base = "{model_server.base_url}"' in config
