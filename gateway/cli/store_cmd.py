"""`hermes store status|migrate|copy`: the store's schema revision, upgrading it, and copying a
whole store into another database (SQLite -> PostgreSQL), verified table by table.

Every URL printed has its password masked. Exit codes: 0 when all is well; 1 when the store is
behind or ahead of this Hermes (status), a migration failed, the database cannot be reached, or a
copy found a mismatch or a non-empty target; 2 for a bad config or URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option, fail, load, run


def _home_url(config_path: Path | None) -> Any:
    from gateway.store.store import configured_url

    config, home = load(config_path)
    try:
        return configured_url(config, home.state_db)
    except ValueError as exc:
        fail(str(exc), code=2)


async def _reachable(url: Any) -> None:
    from gateway.store.database import check_reachable, create_engine_for

    if url.get_backend_name() == "sqlite":
        return
    engine = create_engine_for(url, pool_size=1)
    try:
        await check_reachable(engine, url)
    finally:
        await engine.dispose()


def _store_errors() -> tuple[type[BaseException], ...]:
    from gateway.store import MigrationError, SchemaTooNewError, StoreUnavailableError
    from gateway.store.snapshot import SnapshotError

    return (MigrationError, SchemaTooNewError, StoreUnavailableError, SnapshotError, OSError)


@click.group()
def store() -> None:
    """The state store: schema revision, migrations, copying it to PostgreSQL."""


@store.command("status")
@config_option
def status(config_path: Path | None) -> None:
    """Engine, URL, current and latest revision; exits 1 when the store is behind or ahead."""
    from gateway.store.database import display_url
    from gateway.store.upgrade import is_known_revision, schema_status

    url = _home_url(config_path)

    async def read() -> Any:
        await _reachable(url)
        return await schema_status(url)

    try:
        found = run(read)
    except _store_errors() as exc:
        fail(str(exc))
    click.echo(f"engine: {url.get_backend_name()}")
    click.echo(f"url: {display_url(url)}")
    current = found.current or ("none (legacy schema version "
                                f"{found.legacy_version})" if found.legacy_version is not None else "none (empty)")
    click.echo(f"current revision: {current}")
    click.echo(f"latest revision: {found.head}")
    if found.up_to_date:
        click.echo("up to date")
        return
    if not is_known_revision(found.current):
        click.echo(f"ahead: revision {found.current} was written by a newer Hermes; upgrade hermes-gateway")
    else:
        click.echo("behind: run `hermes store migrate` (the gateway also does at start)")
    raise SystemExit(1)


@store.command("migrate")
@config_option
def migrate(config_path: Path | None) -> None:
    """Upgrade the store to the latest revision, one line per revision applied."""
    from gateway.store.database import display_url
    from gateway.store.upgrade import pending_revisions, schema_status, upgrade_database

    url = _home_url(config_path)

    async def upgrade() -> list[tuple[str, str]]:
        await _reachable(url)
        before = await schema_status(url)
        if before.up_to_date:
            return []
        pending = pending_revisions(before.current)
        if before.current is not None and not pending:
            await upgrade_database(url)  # refuses an unknown (newer) revision with its name
        done = []
        for revision, doc in pending:
            await upgrade_database(url, revision)
            done.append((revision, doc))
            click.echo(f"applied {revision}: {doc}")
        return done

    try:
        done = run(upgrade)
    except _store_errors() as exc:
        fail(str(exc))
    if not done:
        click.echo(f"{display_url(url)} is at the latest revision already")
    else:
        click.echo(f"{display_url(url)} is at revision {done[-1][0]}")


def _table(report: Any) -> list[str]:
    width = max([len("table")] + [len(t.name) for t in report.tables])
    lines = [f"{'table':<{width}}  {'source rows':>11}  {'target rows':>11}  checksum      result"]
    for check in report.tables:
        target_rows = check.target.rows if check.target is not None else "-"
        lines.append(f"{check.name:<{width}}  {check.source.rows:>11}  {target_rows!s:>11}  "
                     f"{check.source.checksum[:12]}  {'ok' if check.ok else 'MISMATCH'}")
    return lines


@store.command("copy")
@config_option
@click.option("--to", "to", required=True, metavar="URL",
              help="The target database, e.g. postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB.")
@click.option("--force", is_flag=True, help="Replace what the target already holds.")
def copy(config_path: Path | None, to: str, force: bool) -> None:
    """Copy this home's whole store into the database at --to and verify every table
    (row count and checksum); exits 1 on any mismatch. The target must be empty unless --force."""
    from gateway.store.copy import copy_store
    from gateway.store.database import database_url, display_url

    source = _home_url(config_path)
    try:
        target = database_url(to, "--to")
    except ValueError as exc:
        fail(str(exc), code=2)

    async def work() -> Any:
        await _reachable(source)
        await _reachable(target)
        return await copy_store(source, target, replace=force)

    try:
        report = run(work)
    except _store_errors() as exc:
        fail(str(exc))
    for line in _table(report):
        click.echo(line)
    click.echo(f"copied {report.rows} rows of {len(report.tables)} tables in {report.seconds:.2f}s from "
               f"{report.source} to {display_url(target)} (revision {report.revision})")
    if not report.ok:
        bad = [t.name for t in report.tables if not t.ok]
        fail(f"the copy does not match the source in {', '.join(bad)}")
