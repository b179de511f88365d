"""`hermes setup`: the first-run step. Choose a provider, test the model with one real call, write
config.toml and secrets.env (0600), optionally connect a chat platform, then say how to log in.

Interactive by default; every question has a flag, and `--yes` asks nothing (for scripts: a
missing answer is an error naming the flag). Running it again changes only what it is told to.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from gateway.cli.common import config_option

PROVIDER_CHOICES = ["openai", "anthropic", "openrouter", "ollama", "vllm", "openai-compatible"]


def _ask(value: str | None, question: str, *, default: str = "", interactive: bool, hide: bool = False,
         flag: str = "") -> str:
    if value is not None:
        return value
    if not interactive:
        if default or flag == "":
            return default
        raise click.UsageError(f"{flag} is required with --yes")
    return str(click.prompt(question, default=default or None, hide_input=hide, show_default=not hide,
                            err=True) or "")


def _choose_provider(value: str | None, interactive: bool, current: str = "") -> str:
    from gateway.setup_flow import PROVIDERS

    if value is not None:
        return value
    if not interactive:
        raise click.UsageError("--provider is required with --yes")
    click.echo("Which model provider?", err=True)
    for number, key in enumerate(PROVIDER_CHOICES, start=1):
        now = "  (now)" if key == current else ""
        click.echo(f"  {number}. {PROVIDERS[key].label} ({key}){now}", err=True)
    default = str(PROVIDER_CHOICES.index(current) + 1) if current in PROVIDER_CHOICES else "1"
    picked = click.prompt("Number or name", default=default, err=True).strip().lower()
    if picked.isdigit() and 1 <= int(picked) <= len(PROVIDER_CHOICES):
        return PROVIDER_CHOICES[int(picked) - 1]
    return picked


@click.command("setup")
@click.option("--provider", type=click.Choice(PROVIDER_CHOICES), default=None, help="Where the model runs.")
@click.option("--model", "model", default=None, help="LiteLLM model string (default: the provider's suggestion).")
@click.option("--api-base", default=None, help="The server's URL (Ollama, vLLM, LM Studio, a proxy).")
@click.option("--api-key", default=None, envvar="HERMES_SETUP_API_KEY",
              help="The provider's key (stored in secrets.env, not in config.toml); or $HERMES_SETUP_API_KEY.")
@click.option("--platform", type=click.Choice(["none", "telegram", "discord", "slack"]), default=None,
              help="Also connect a chat platform.")
@click.option("--platform-token", default=None, envvar="HERMES_SETUP_PLATFORM_TOKEN",
              help="The bot token of --platform (or $HERMES_SETUP_PLATFORM_TOKEN).")
@click.option("--user-id", default=None, help="Your user id on --platform: allowed and admin from the start.")
@click.option("--skip-test", is_flag=True, help="Write the config without calling the model first.")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Ask nothing: take flags and defaults (for scripts).")
@config_option
def setup(provider: str | None, model: str | None, api_base: str | None, api_key: str | None,
          platform: str | None, platform_token: str | None, user_id: str | None, skip_test: bool,
          assume_yes: bool, config_path: Path | None) -> None:
    """Set up the model (tested with one call), a platform, and the web chat login."""
    from gateway.config import read_secrets_file
    from gateway.home import Home
    from gateway.setup_flow import (PROVIDERS, SetupChoices, SetupError, current_model, resolve, write_config,
                                    write_secrets)

    interactive = not assume_yes
    if interactive and not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask questions on: pass --yes and the flags (see --help)")
    home = Home.from_env().ensure()
    config_file = config_path or home.config_file
    stored = read_secrets_file(home.secrets_file)
    # run again, the questions start from what is there: Enter keeps the provider, model and api_base
    now_provider, now_model, now_base = current_model(config_file)
    provider = _choose_provider(provider, interactive, now_provider)
    if provider not in PROVIDERS:
        raise click.UsageError(f"unknown provider {provider!r}; one of: {', '.join(PROVIDER_CHOICES)}")
    chosen = PROVIDERS[provider]
    same = provider == now_provider
    model = _ask(model, "Model", default=now_model if same else chosen.model, interactive=interactive)
    if chosen.api_base or api_base:
        api_base = _ask(api_base, "Server URL (api_base)", interactive=interactive,
                        default=now_base if same and now_base else chosen.api_base)
    if chosen.key_env and api_key is None and interactive:
        where = "the environment" if os.environ.get(chosen.key_env) else \
            str(home.secrets_file) if stored.get(chosen.key_env) else ""
        if where and click.confirm(f"Keep ${chosen.key_env} from {where}?", default=True, err=True):
            api_key = ""
        else:
            api_key = click.prompt(f"{chosen.label} API key (stored in secrets.env)", hide_input=True, err=True)
    if platform is None and interactive:
        platform = click.prompt("Connect a chat platform now?", default="none", err=True,
                                type=click.Choice(["none", "telegram", "discord", "slack"]))
    platform = "" if platform in (None, "none") else platform
    if platform:
        platform_token = _ask(platform_token, f"{platform} bot token", interactive=interactive, hide=True,
                              flag="--platform-token")
        user_id = _ask(user_id, f"Your {platform} user id (empty: approve yourself later with hermes pairing)",
                       default="", interactive=interactive)
    choices = SetupChoices(provider, model or "", api_base, api_key or "", platform, platform_token or "",
                           (user_id or "").strip(), stored_secrets=stored)
    try:
        model_table, secrets = resolve(choices)
    except SetupError as exc:
        click.echo(f"hermes: error: {exc}", err=True)
        sys.exit(2)

    if not skip_test:
        check = asyncio.run(_test_model(model_table, chosen.key_env, secrets, stored))
        if check.ok:
            click.echo(f"✓ {check.summary}", err=True)
        else:
            click.echo(f"✗ {check.line()}", err=True)
            if not interactive or not click.confirm("Save this configuration anyway?", default=False, err=True):
                click.echo("hermes: nothing was written (--skip-test writes without the test)", err=True)
                sys.exit(1)

    from gateway.api.auth import TOKEN_ENV, resolve_token

    try:
        if secrets:
            write_secrets(home.secrets_file, secrets)
        write_config(config_file, model_table, platform, choices.platform_user)
        if not (os.environ.get(TOKEN_ENV) or read_secrets_file(home.secrets_file).get(TOKEN_ENV)):
            resolve_token("", home.secrets_file, environ={})
    except (SetupError, OSError) as exc:
        click.echo(f"hermes: error: {exc}", err=True)
        sys.exit(1)
    click.echo(_next_steps(config_file, home.secrets_file, sorted(secrets), platform, choices.platform_user))


async def _test_model(model_table: dict[str, object], key_env: str, secrets: dict[str, str],
                      stored: dict[str, str]) -> object:
    """One real call with the key the gateway would use: the one typed now, else the environment's,
    else the one kept in secrets.env (the environment wins over secrets.env, as in the gateway)."""
    from agent.llm import import_litellm
    from agent.settings import ModelConfig
    from gateway.model_check import check_model

    await asyncio.to_thread(import_litellm)
    key = str(model_table.get("api_key") or "")
    if key.startswith("${"):
        key = secrets.get(key_env) or os.environ.get(key_env) or stored.get(key_env, "")
    config = ModelConfig(name=str(model_table["name"]), api_base=str(model_table.get("api_base") or ""),
                         api_key=key)
    return await check_model(config, timeout=30.0)


def _next_steps(config_file: Path, secrets_file: Path, secret_names: list[str], platform: str, user_id: str) -> str:
    from gateway.config import load_config
    from gateway.home import Home

    try:
        api = load_config(config_file, Home.from_env()).api
        host, port = api.host, api.port
    except Exception:  # noqa: BLE001 - the hint below still helps
        host, port = "127.0.0.1", 8765
    lines = [f"Wrote {config_file}" + (f" and {', '.join(secret_names)} to {secrets_file} (mode 0600)"
                                       if secret_names else "") + ".",
             "Next:",
             "  hermes gateway                     # runs the web chat, API and platforms",
             f"  open http://{host}:{port}/ and log in with the token:  grep HERMES_API_TOKEN {secrets_file}",
             "  hermes chat                        # or talk to it in this terminal"]
    if platform and not user_id:
        lines.append(f"  write to your {platform} bot, then approve yourself:  hermes pairing list; "
                     "hermes pairing approve CODE")
    return "\n".join(lines)
