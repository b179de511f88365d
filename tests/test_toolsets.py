"""Toolsets resolve per channel, admin, team, platform and default, with globs and exclusions."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config
from gateway.home import Home
from gateway.toolsets import ToolsetsConfig, tools_for
from tests.conftest import write_config

AVAILABLE = ["read_file", "write_file", "list_files", "terminal", "web_fetch", "web_search", "delegate",
             "skill_view", "skill_manage", "memory", "github__create_issue", "github__search"]

CONFIG = """
[toolsets]
default = "chat"
admin = "all"

[toolsets.sets]
chat = ["read_file", "write_file", "list_files", "web_*", "skill_*", "memory"]
public = ["web_search", "web_fetch"]
ops = ["*", "!delegate", "!github__create_issue"]
dev = ["@chat", "github__*"]

[toolsets.platforms]
discord = "public"

[toolsets.teams]
ops = "ops"

[toolsets.channels]
"discord:42" = "public"
"slack:C-DEV" = "dev"
"""


@pytest.fixture
def toolsets(home: Path) -> ToolsetsConfig:
    write_config(home, CONFIG)
    return load_config(None, Home.from_env()).toolsets


def test_admin_dm_gets_everything_public_channel_no_terminal(toolsets: ToolsetsConfig) -> None:
    assert tools_for(toolsets, "telegram", "", "12345", True, AVAILABLE) is None  # every tool
    public = tools_for(toolsets, "discord", "", "42", True, AVAILABLE)  # even an admin, in the public channel
    assert public == {"web_search", "web_fetch"}


def test_default_team_platform_and_channel(toolsets: ToolsetsConfig) -> None:
    chat = tools_for(toolsets, "telegram", "", "999", False, AVAILABLE)
    assert chat == {"read_file", "write_file", "list_files", "web_fetch", "web_search", "skill_view",
                    "skill_manage", "memory"}
    assert "terminal" not in chat
    ops = tools_for(toolsets, "slack", "ops", "C-OPS", False, AVAILABLE)
    assert ops == set(AVAILABLE) - {"delegate", "github__create_issue"}
    assert tools_for(toolsets, "discord", "", "77", False, AVAILABLE) == {"web_search", "web_fetch"}
    dev = tools_for(toolsets, "slack", "ops", "C-DEV", False, AVAILABLE)  # channel beats team
    assert dev == chat | {"github__create_issue", "github__search"}


def test_no_toolsets_configured_means_no_filter() -> None:
    assert tools_for(ToolsetsConfig(), "telegram", "", "1", False, AVAILABLE) is None


@pytest.mark.parametrize("text,message", [
    ('[toolsets]\ndefault = "nope"\n', "default: no toolset named 'nope'"),
    ('[toolsets.channels]\n"C123" = "all"\n', 'use "platform:channel"'),
    ('[toolsets.sets]\na = ["@b"]\nb = ["@a"]\n', "includes itself"),
    ('[toolsets.teams]\nops = "opz"\n', "teams.ops: no toolset named 'opz'"),
])
def test_bad_toolsets_are_errors(home: Path, text: str, message: str) -> None:
    write_config(home, text)
    with pytest.raises(ConfigError, match="toolsets") as error:
        load_config(None, Home.from_env())
    assert message in str(error.value)
