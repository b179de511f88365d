"""`hermes mcp list`: the configured MCP servers, whether they start, and the tools they offer.

Listing starts every enabled server briefly (as the gateway would), asks for its tools, then
stops it. Module-level imports stay light (click only) so `hermes --help` is fast.
"""

from __future__ import annotations

from typing import Any

import click

from gateway.cli.common import config_option, json_option, load, print_json, run


@click.group()
def mcp() -> None:
    """MCP servers configured in [[mcp.servers]]."""


async def _statuses(config: Any, log_dir: Any) -> list[dict[str, Any]]:
    from agent.mcp.manager import McpManager
    from agent.mcp.tools import tool_name

    manager = McpManager(config.mcp, log_dir=log_dir)
    try:
        await manager.start(supervise=False)
        found = {s.name: s for s in manager.statuses()}
    finally:
        await manager.close()
    rows: list[dict[str, Any]] = []
    for settings in config.mcp.servers:
        status = found.get(settings.name)
        row: dict[str, Any] = {
            "name": settings.name, "transport": settings.transport,
            "target": settings.url or " ".join([settings.command, *settings.args]),
            "state": status.state if status else "disabled",
            "error": status.error if status else "",
            "tools": [tool_name(settings.name, t) for t in status.tools] if status else [],
        }
        rows.append(row)
    return rows


@mcp.command("list")
@config_option
@json_option
def list_servers(config_path: Any, as_json: bool) -> None:
    """Start each enabled server briefly and list its state and tools."""
    config, home = load(config_path)
    rows = run(lambda: _statuses(config, home.logs_dir))
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("No MCP servers configured (add [[mcp.servers]] entries to the config file).")
        return
    for row in rows:
        click.echo(f"{row['name']}  [{row['transport']}]  {row['state']}  {row['target']}")
        if row["error"]:
            click.echo(f"    {row['error']}")
        for name in row["tools"]:
            click.echo(f"    {name}")
