"""`hermes whoami`: the terminal user's id (what `--user` takes) and where their USER.md lives."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def whoami(as_json: bool) -> None:
    """Show who you are to the agent in `hermes chat`: user id cli:local and its USER.md."""
    from gateway.cli.identity import CLI_PLATFORM, CLI_USER, CLI_USER_ID, user_md_path
    from gateway.home import Home

    home = Home.from_env()
    path = user_md_path(home.root)
    if as_json:
        click.echo(json.dumps({"id": CLI_USER_ID, "platform": CLI_PLATFORM, "user_id": CLI_USER,
                               "user_md": str(path), "exists": path.is_file()}))
        return
    click.echo(CLI_USER_ID)
    click.echo(f"  the terminal user of `hermes chat` (platform {CLI_PLATFORM}, user id {CLI_USER})")
    click.echo(f"  USER.md: {path}" + ("" if path.is_file() else " (nothing remembered yet)"))
    click.echo(f"  show it: hermes memory show --user {CLI_USER_ID}")
