"""Configuration: errors name the file and key; ${ENV} interpolation; secrets file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config
from gateway.home import Home


def parse(text: str, env: dict[str, str] | None = None):
    return parse_config(text, Path("/etc/hermes.toml"), env or {})


def test_defaults_match_the_contract() -> None:
    config = parse("")
    assert config.api.host == "127.0.0.1" and config.api.port == 8765 and config.api.enabled
    assert config.learning.checkpoint_every == 15 and config.learning.auto_skills == "on"
    assert config.telegram.enabled is False


def test_unknown_key_is_an_error_naming_file_and_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse("[telegram]\nenabeld = true\n")
    assert "/etc/hermes.toml" in str(info.value) and "telegram.enabeld: unknown key" in str(info.value)


def test_unknown_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match="telegramm: unknown key"):
        parse("[telegramm]\nenabled = true\n")


def test_bad_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"learning.auto_skills: .*'sometimes'"):
        parse('[learning]\nauto_skills = "sometimes"\n')


def test_invalid_toml_names_the_file() -> None:
    with pytest.raises(ConfigError, match="/etc/hermes.toml:1:7: not valid TOML"):
        parse("[model\nname=1")


def test_env_interpolation() -> None:
    config = parse('[telegram]\nenabled = true\ntoken = "${TG}"\n', {"TG": "123:abc"})
    assert config.telegram.token == "123:abc"


def test_missing_env_in_enabled_section_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse('[telegram]\nenabled = true\ntoken = "${TELEGRAM_BOT_TOKEN}"\n')
    assert "telegram.token" in str(info.value) and "TELEGRAM_BOT_TOKEN is not set" in str(info.value)


def test_missing_env_in_disabled_section_is_empty() -> None:
    config = parse('[telegram]\nenabled = false\ntoken = "${TELEGRAM_BOT_TOKEN}"\n')
    assert config.telegram.token == ""


def test_secrets_file_feeds_interpolation(tmp_path: Path) -> None:
    home = Home(tmp_path).ensure()
    (tmp_path / "secrets.env").write_text("# secrets\nMY_TOKEN=from-file\n")
    (tmp_path / "config.toml").write_text('[telegram]\nenabled = true\ntoken = "${MY_TOKEN}"\n')
    env: dict[str, str] = {}
    config = load_config(None, home, env)
    assert config.telegram.token == "from-file" and env["MY_TOKEN"] == "from-file"


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    config = parse_config(example.read_text(), example, {"OPENAI_API_KEY": "sk-x", "HERMES_API_TOKEN": "t" * 32})
    assert config.model.name


def test_empty_environment_variable_does_not_hide_the_secrets_file(tmp_path: Path) -> None:
    home = Home(tmp_path).ensure()
    (tmp_path / "secrets.env").write_text("MY_TOKEN=from-file\n")
    (tmp_path / "config.toml").write_text('[api]\ntoken = "${MY_TOKEN}"\n')
    config = load_config(None, home, {"MY_TOKEN": ""})
    assert config.api.token == "from-file"
