"""`hermes pairing list|approve CODE|revoke USER`: who may DM the bot beyond the allowlist."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.cli.common import config_option, fail, json_option, load, print_json

T = TypeVar("T")


def _with_pairing(config_path: Path | None, work: Callable[[Any], Awaitable[T]]) -> T:
    from gateway.pairing import Pairing, PairingError
    from gateway.store import open_configured_store

    config, home = load(config_path)
    where: list[str] = []

    async def run() -> T:
        store = await open_configured_store(config, home)
        where.append(store.describe())
        try:
            return await work(Pairing(store))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except PairingError as exc:
        # name the home searched: a code from another HERMES_HOME (or --config) is the usual cause
        searched = f"HERMES_HOME={home.root}" + (f", store {where[0]}" if where else "")
        fail(f"{exc}; searched {searched}")


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


@click.group()
def pairing() -> None:
    """Approve or revoke users who asked to talk to the bot (deny by default)."""


@pairing.command("list")
@config_option
@json_option
def list_(config_path: Path | None, as_json: bool) -> None:
    """Pending pairing codes and approved users."""
    async def work(p: Any) -> list[dict[str, Any]]:
        return [r.as_dict() for r in await p.pending()] + [g.as_dict() for g in await p.grants()]

    rows = _with_pairing(config_path, work)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("No pending pairing requests and no approved users.")
        return
    for row in rows:
        who = f"{row['platform']}:{row['user_id']}" + (f" ({row['display_name']})" if row["display_name"] else "")
        if row["status"] == "pending":
            click.echo(f"pending   {row['code']}  {who}  asked {_when(row['created_at'])}")
        else:
            click.echo(f"approved  {who}  since {_when(row['created_at'])}")


@pairing.command()
@click.argument("code")
@config_option
def approve(code: str, config_path: Path | None) -> None:
    """Approve the user who received CODE."""
    grant = _with_pairing(config_path, lambda p: p.approve(code))
    click.echo(f"Approved {grant.platform}:{grant.user_id}"
               + (f" ({grant.display_name})" if grant.display_name else "") + ".")


@pairing.command()
@click.argument("code")
@config_option
def reject(code: str, config_path: Path | None) -> None:
    """Refuse the pending request with CODE (the user stays unknown)."""
    request = _with_pairing(config_path, lambda p: p.reject(code))
    click.echo(f"Rejected {request.platform}:{request.user_id}.")


@pairing.command()
@click.argument("user")
@click.option("--platform", default=None, help="Only on this platform (telegram, discord, slack).")
@config_option
def revoke(user: str, platform: str | None, config_path: Path | None) -> None:
    """Remove USER's access (USER is an id or platform:id)."""
    removed = _with_pairing(config_path, lambda p: p.revoke(user, platform))
    for grant in removed:
        click.echo(f"Revoked {grant.platform}:{grant.user_id}.")
