"""`hermes status [--json]`: the gateway processes sharing this store, the leader, who owns each duty.

Read from the store (works from any machine that reaches it, gateway running or not). `--json`
prints one object per process: process, host, pid, version, started_at, heartbeat_at, alive,
role (`leader` or `follower`) and the duties it owns. Exit 1 when the store cannot be reached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option, fail, json_option, load, print_json, run


@click.command()
@config_option
@json_option
def status(config_path: Path | None, as_json: bool) -> None:
    """The processes sharing this store, the leader and the owner of each duty."""
    from gateway.cluster.status import cluster_view, render
    from gateway.store import MigrationError, SchemaTooNewError, StoreUnavailableError, open_configured_store
    from gateway.store.database import display_url

    config, home = load(config_path)

    async def read() -> tuple[Any, str]:
        store = await open_configured_store(config, home)
        try:
            return await cluster_view(store), display_url(store.db.url)
        finally:
            await store.close()

    try:
        view, where = run(read)
    except (MigrationError, SchemaTooNewError, StoreUnavailableError, OSError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        print_json([m.as_dict() for m in view.members])
        return
    click.echo(f"Store: {where}")
    click.echo(render(view))
