"""The README's first screen stays true: its sections come in the order a new user needs them (the
two commands, `hermes setup`, logging in, "Point it at a model", Troubleshooting, and only then how
the learning works), each minimal model config it shows is one `hermes config check` accepts, and
the tap syntax it gives is the command's.

The configs are checked by a real `hermes config check` process on a fresh home each.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli_support import hermes
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else len(README)]


def test_the_first_screen_comes_in_the_order_a_new_user_needs_it() -> None:
    headings = re.findall(r"^## (.+)$", README, re.MULTILINE)
    first = ["Start", "First run: `hermes setup`", "Log in to the web chat", "Point it at a model",
             "Troubleshooting"]
    assert headings[:len(first)] == first, headings[:8]
    assert headings[len(first)] == "How it learns"  # internals come after the first hour's questions
    start = section("Start")
    assert start.count("```sh") == 2  # the two commands
    # and how long the tests take
    assert "hermes gateway" in start and "pytest" in start and "minutes" in start
    assert "grep HERMES_API_TOKEN ~/.hermes/secrets.env" in section("Log in to the web chat")
    trouble = section("Troubleshooting")
    for needed in ("~/.hermes/logs/hermes.jsonl", "hermes doctor", "openai/gpt4o-mini", "/v1", "[api] port"):
        assert needed in trouble, needed


CONFIGS = re.findall(r"```toml\n(.*?)```", section("Point it at a model"), re.DOTALL)


def model_name(config: str) -> str:
    found = re.search(r'^name = "([^"]+)"', config, re.MULTILINE)
    assert found is not None, config
    return found.group(1)


def test_it_shows_the_three_minimal_configs() -> None:
    names = [model_name(c) for c in CONFIGS]
    assert len(CONFIGS) == 3 and names[0].startswith("openai/")
    assert names[1].startswith("ollama_chat/")  # ollama/ has no tools
    assert 'api_base = "http://localhost:8000/v1"' in CONFIGS[2] and 'api_key = "dummy"' in CONFIGS[2]


@pytest.mark.parametrize("index", range(3), ids=["openai", "ollama", "openai-compatible"])
async def test_each_minimal_config_is_one_the_gateway_accepts(index: int, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(CONFIGS[index], encoding="utf-8")
    (home / "secrets.env").write_text("OPENAI_API_KEY=sk-from-secrets\n", encoding="utf-8")
    (home / "secrets.env").chmod(0o600)
    code, out, err = await hermes("config", "check", home=home)
    assert code == 0 and f"model: {model_name(CONFIGS[index])}" in out, err


async def test_the_tap_syntax_it_gives_is_the_commands(home: Path) -> None:
    assert "hermes skills tap add URL --name team" in section("Troubleshooting")
    code, out, err = await hermes("skills", "tap", "add", "--help", home=home)
    assert code == 0, err
    assert "Usage: hermes skills tap add [OPTIONS] SOURCE" in out and "--name" in out
