"""Toolsets: which tools a session gets, per platform, team or channel.

    [toolsets]
    default = "chat"                      # sessions nothing below matches; "all" (the default) = every tool
    admin = "all"                         # an admin's turns, unless their channel is assigned below

    [toolsets.sets]
    chat = ["read_file", "write_file", "list_files", "web_*", "skill_*", "memory"]
    public = ["web_search", "web_fetch"]
    ops = ["*", "!delegate"]              # every tool but delegate

    [toolsets.platforms]
    slack = "chat"

    [toolsets.teams]
    ops = "ops"

    [toolsets.channels]
    "discord:123456789" = "public"        # platform:channel id

A set lists tool names or globs (`github__*`); `!pattern` removes what earlier entries added;
`@name` includes another set. The most specific assignment wins: channel, then admin, then
team, then platform, then `default`. An explicit channel assignment beats `admin` on purpose, so
a public channel never gets the terminal even when an admin speaks there. `"all"` is built in.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from pydantic import Field, model_validator

from agent.settings import Section

ALL = "all"


class ToolsetsConfig(Section):
    """`[toolsets]`: named sets of tool patterns and where they apply."""

    default: str = Field(ALL, description='toolset when nothing more specific applies; "all" = every tool')
    admin: str = Field("", description="toolset for admins (outside channels assigned in [toolsets.channels])")
    sets: dict[str, list[str]] = Field(default_factory=dict, description="name -> tool names, globs, !exclusions, @sets")
    platforms: dict[str, str] = Field(default_factory=dict, description="platform -> toolset")
    teams: dict[str, str] = Field(default_factory=dict, description="team name -> toolset")
    channels: dict[str, str] = Field(default_factory=dict, description='"platform:channel" -> toolset')

    @model_validator(mode="after")
    def _references_exist(self) -> ToolsetsConfig:
        known = set(self.sets) | {ALL}
        if ALL in self.sets:
            raise ValueError(f'sets.{ALL}: "{ALL}" is built in (every tool); choose another name')
        refs: list[tuple[str, str]] = [("default", self.default)]
        if self.admin:
            refs.append(("admin", self.admin))
        for table in ("platforms", "teams", "channels"):
            refs.extend((f"{table}.{key}", value) for key, value in getattr(self, table).items())
        for name, patterns in self.sets.items():
            refs.extend((f"sets.{name}", p[1:]) for p in patterns if p.startswith("@"))
        for where, ref in refs:
            if ref not in known:
                raise ValueError(f"{where}: no toolset named {ref!r} (known: {', '.join(sorted(known))})")
        for key in self.channels:
            if ":" not in key:
                raise ValueError(f'channels.{key}: use "platform:channel", e.g. "slack:C0123456"')
        for name in self.sets:
            _expand(self, name, [])  # a set that includes itself is an error now, not at the first turn
        return self


def toolset_name(config: ToolsetsConfig, platform: str, team: str, channel: str, is_admin: bool) -> str:
    """The name of the toolset that applies (most specific assignment first)."""
    if channel and f"{platform}:{channel}" in config.channels:
        return config.channels[f"{platform}:{channel}"]
    if is_admin and config.admin:
        return config.admin
    if team and team in config.teams:
        return config.teams[team]
    if platform in config.platforms:
        return config.platforms[platform]
    return config.default


def _expand(config: ToolsetsConfig, name: str, available: list[str], stack: tuple[str, ...] = ()) -> set[str]:
    if name == ALL:
        return set(available)
    if name in stack:
        raise ValueError(f"toolset {name!r} includes itself (via {' -> '.join(stack)})")
    chosen: set[str] = set()
    for pattern in config.sets.get(name, []):
        if pattern.startswith("@"):
            chosen |= _expand(config, pattern[1:], available, (*stack, name))
        elif pattern.startswith("!"):
            chosen -= set(fnmatch.filter(available, pattern[1:]))
        else:
            chosen |= set(fnmatch.filter(available, pattern))
    return chosen


def tools_for(config: ToolsetsConfig, platform: str, team: str, channel: str, is_admin: bool,
              available: Iterable[str]) -> set[str] | None:
    """The tool names a session may use, or None for every tool (no filtering needed).

    `available` are the registry's tool names; globs are matched against them.
    """
    name = toolset_name(config, platform, team, channel, is_admin)
    if name == ALL:
        return None
    return _expand(config, name, sorted(available))
