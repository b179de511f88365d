"""`hermes config check`: validate the configuration file and say what is wrong, where.

It runs the same checks as `hermes gateway` at start (`gateway.config_checks`), so a config it
accepts is one the gateway starts with.
"""

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
    """Validate the config file as `hermes gateway` would: unknown keys, bad values, missing ${ENV}
    variables, a weak API token and bad platform sections are errors."""
    from gateway.config_checks import check_startup

    home = Home.from_env()
    file = config_path or home.config_file
    try:
        cfg = load_config(config_path, home)
        check_startup(cfg, file)
    except ConfigError as exc:
        fail(str(exc), code=2)
    where = str(file) if file.exists() else f"{file} (not present: defaults)"
    click.echo(f"ok: {where}")
    click.echo(f"  model: {cfg.model.name or '(not configured)'}")
    hint = _model_name_hint(cfg.model.name, cfg.model.api_base)
    if hint:
        click.echo(f"  warning: {hint}")
    enabled = [name for name in ("telegram", "discord", "slack") if getattr(cfg, name).enabled]
    click.echo(f"  platforms: {', '.join(enabled) or 'none'}; api: "
               f"{'http://%s:%d' % (cfg.api.host, cfg.api.port) if cfg.api.enabled else 'off'}")


def _model_name_hint(name: str, api_base: str) -> str:
    """A model name LiteLLM cannot route (no provider, e.g. `gpt4o-mini`): the gateway starts, but
    every call fails before a request is sent, so say what the name needs."""
    if not name:
        return ""
    import litellm  # only here: `hermes --help` and the other config commands stay quick

    from agent.provider_errors import no_provider_message

    try:
        litellm.get_llm_provider(name)
    except Exception:  # noqa: BLE001 - LiteLLM's BadRequestError: no provider it knows
        return no_provider_message(name, api_base)
    return ""
