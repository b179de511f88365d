"""`hermes config check`: validate the configuration file and say what is wrong, where."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import config_option, fail
from gateway.config import ConfigError, load_config
from gateway.home import Home


@click.group()
def config() -> None:
    """Inspect and check the configuration."""


@config.command("check")
@config_option
def check(config_path: Path | None) -> None:
    """Validate the config file: unknown keys, bad values and missing ${ENV} variables are errors."""
    home = Home.from_env()
    file = config_path or home.config_file
    try:
        cfg = load_config(config_path, home)
    except ConfigError as exc:
        fail(str(exc), code=2)
    where = str(file) if file.exists() else f"{file} (not present: defaults)"
    click.echo(f"ok: {where}")
    click.echo(f"  model: {cfg.model.name or '(not configured)'}")
    enabled = [name for name in ("telegram", "discord", "slack") if getattr(cfg, name).enabled]
    click.echo(f"  platforms: {', '.join(enabled) or 'none'}; api: "
               f"{'http://%s:%d' % (cfg.api.host, cfg.api.port) if cfg.api.enabled else 'off'}")
