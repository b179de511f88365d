"""`hermes memory show`: what the agent remembers (a team's MEMORY.md, a user's USER.md).

Module-level imports stay light (click only) so `hermes --help` is fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option, fail, json_option, load, plural, print_json


@click.group()
def memory() -> None:
    """Show the agent's memory files (HERMES_HOME/memories, HERMES_HOME/teams/TEAM/memories)."""


def _user_files(root: Path, user: str, platform: str) -> list[tuple[str, str, Path]]:
    """(platform, user id, USER.md) for `user` (`ID` or `PLATFORM:ID`) on one or every platform."""
    from urllib.parse import quote, unquote

    from agent.memory import USER_FILE, _component

    if ":" in user and not platform:
        platform, user = user.split(":", 1)
    users_dir = root / "memories" / "users"
    if platform:
        return [(platform, user, users_dir / _component(platform) / _component(user) / USER_FILE)]
    found = sorted(users_dir.glob(f"*/{_component(user)}/{USER_FILE}")) if users_dir.is_dir() else []
    if not found:
        return [("local", user, users_dir / "local" / quote(user, safe="-_.@+") / USER_FILE)]
    return [(unquote(p.parent.parent.name), user, p) for p in found]


@memory.command("show")
@click.option("--team", default="", help="The team's MEMORY.md (default: the library without a team).")
@click.option("--user", "user", default="", help="Also show this user's USER.md (ID or PLATFORM:ID).")
@click.option("--platform", default="", help="The platform of --user (default: every platform).")
@json_option
@config_option
def show(team: str, user: str, platform: str, as_json: bool, config_path: Path | None) -> None:
    """Print MEMORY.md (and USER.md with --user), with how full each file is."""
    from agent.memory import MemoryOpError, MemoryStore, parse_entries
    from agent.redact import Redactor
    from skills.paths import PathEscapeError

    config, home = load(config_path)
    store = MemoryStore(home.root, config.memory.memory_chars, config.memory.user_chars, Redactor())
    rows: list[dict[str, Any]] = []
    try:
        files = [("MEMORY.md", team, "", "", store.memory_path(team), store.memory_chars)]
        if user:
            files += [("USER.md", team, p, u, path, store.user_chars)
                      for p, u, path in _user_files(home.root, user, platform)]
            for _name, _team, p, u, path, _limit in files[1:]:
                store.user_path(p, u)  # refuses ids that would leave the home
    except (MemoryOpError, PathEscapeError) as exc:
        fail(str(exc), code=2)
    for name, file_team, file_platform, file_user, path, limit in files:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        rows.append({"name": name, "team": file_team, "platform": file_platform, "user_id": file_user,
                     "path": str(path), "chars": len(text), "limit": limit,
                     "entries": [{"date": e.date, "text": e.text} for e in parse_entries(text)]})
    if as_json:
        print_json(rows)
        return
    for row in rows:
        who = f" for {row['platform']}:{row['user_id']}" if row["name"] == "USER.md" else (
            f" (team {row['team']})" if row["team"] else "")
        entries = plural(len(row["entries"]), "entry", "entries")
        click.echo(f"{row['name']}{who}: {row['chars']}/{row['limit']} characters, {entries} "
                   f"({row['path']})")
        for entry in row["entries"]:
            click.echo(f"  - {entry['date'] + ' ' if entry['date'] else ''}{entry['text']}")
        if not row["entries"]:
            click.echo("  (nothing remembered yet)")
