"""`hermes backup create --output FILE` and `hermes backup restore FILE`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from gateway.cli.common import config_option, fail


def _store(config_path: Path | None, *, strict: bool) -> tuple[object, object]:
    """(store URL, Home): HERMES_STORE_URL, else the config's [store] url or path, else
    HERMES_HOME/state.db. A config that does not load is fatal for `create` (strict), a warning
    for `restore` (which may be repairing the home), falling back to HERMES_STORE_URL or state.db."""
    from gateway.config import ConfigError, load_config
    from gateway.home import Home
    from gateway.store import configured_url
    from gateway.store.database import display_url, resolve_url

    home = Home.from_env()
    try:
        config = load_config(config_path, home)
        url = configured_url(config, home.state_db)
    except (ConfigError, ValueError) as exc:
        if strict:
            fail(str(exc), code=2)
        try:
            url = resolve_url("", "", home.state_db)
        except ValueError as bad:
            fail(str(bad), code=2)
        click.echo(f"hermes: warning: {exc}\nhermes: warning: restoring the store to {display_url(url)}", err=True)
    return url, home


@click.group()
def backup() -> None:
    """Back up the home (the store on either engine, config, skills, memories) or restore a backup."""


@backup.command("create")
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The .tar.gz file to write.")
@click.option("--include-secrets", is_flag=True, help="Also store secrets.env (keep the archive safe).")
def create(config_path: Path | None, output: Path, include_secrets: bool) -> None:
    """Write a consistent backup (mode 0600); safe while the gateway runs.

    The archive holds config.toml as it is, literal secrets included, and the store's
    transcripts: keep it private. `hermes profile export` is the one to share."""
    from gateway.backup import CONFIG_AS_IS_NOTE, BackupError, create_backup

    url, home = _store(config_path, strict=True)
    try:
        report = asyncio.run(create_backup(home, url, output, include_secrets=include_secrets))  # type: ignore[arg-type]
    except (BackupError, OSError) as exc:
        fail(str(exc))
    click.echo(f"wrote {report.path} ({report.size} bytes, {report.files} files, {report.rows} store rows at "
               f"revision {report.revision or '(empty)'}{', includes secrets.env' if report.includes_secrets else ''})")
    click.echo(f"note: {CONFIG_AS_IS_NOTE}", err=True)


@backup.command("restore")
@config_option
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore even though a gateway is running on this home.")
def restore(config_path: Path | None, archive: Path, force: bool) -> None:
    """Restore ARCHIVE into $HERMES_HOME; what it replaces is kept in pre-restore-<time>/."""
    from gateway.backup import BackupError, restore_backup

    url, home = _store(config_path, strict=False)
    try:
        report = asyncio.run(restore_backup(archive, home, url, force=force))  # type: ignore[arg-type]
    except (BackupError, OSError) as exc:
        fail(str(exc))
    click.echo(f"restored {report.files} files ({', '.join(report.restored)}), store at "
               f"{report.revision or '(empty)'}")
    if report.moved_aside is not None:
        click.echo(f"the previous files are in {report.moved_aside}")
