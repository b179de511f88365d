"""`hermes gateway`: run the gateway until SIGTERM or SIGINT (then shut down gracefully, exit 0)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import config_option, fail, load
from gateway.service_install import install_service


BANNER_WAIT = 10.0
"""Seconds the start banner waits for the model's first answer before printing without it."""


def _banner(gateway: object) -> str:
    from gateway.app import Gateway

    assert isinstance(gateway, Gateway)
    lines = ["Hermes gateway is running."]
    if gateway.url:
        lines.append(f"  Web chat:   {gateway.url}")
        lines.append(f"  OpenAI API: {gateway.url}v1  (Authorization: Bearer $HERMES_API_TOKEN)")
        token = gateway.token
        if token is not None and token.generated:
            lines.append(f"  A new API token was generated and saved as HERMES_API_TOKEN in {token.where}")
            lines.append("  (readable by you only). Log in to the web chat with it; show it with:")
            lines.append(f"    grep HERMES_API_TOKEN {token.where}")
        elif token is not None:
            lines.append(f"  Log in with the token from {token.where}.")
    else:
        lines.append("  The HTTP API is disabled ([api] enabled = false).")
    platforms = ", ".join(gateway.adapters) or "none enabled"
    lines.append(f"  Platforms:  {platforms}")
    model = gateway.config.model.name
    check = gateway.model_check
    if not model:
        lines.append("  Model:      not configured: set [model] name in config.toml (the web chat says how)")
    elif check.state == "ok":
        lines.append(f"  Model:      {model} (answered)")
    elif check.state == "failed":
        lines.append(f"  Model:      {model}: DID NOT ANSWER: {check.detail}")
        lines.append(f"              {check.fix}; chats hear it is a setup problem until it is fixed")
    else:
        lines.append(f"  Model:      {model} (still checking; the result follows here and in /healthz)")
    lines.append("Stop with Ctrl-C or SIGTERM.")
    return "\n".join(lines)


def _pregenerate_token(config_path: Path | None) -> object | None:
    """First run with `token = "${HERMES_API_TOKEN}"` and no such variable: create the token first,
    so loading the config finds it (in HERMES_HOME/secrets.env) instead of failing."""
    import os

    from gateway.api.auth import TOKEN_ENV, resolve_token
    from gateway.config import read_secrets_file
    from gateway.home import Home

    home = Home.from_env().ensure()
    file = config_path or home.config_file
    try:
        text = file.read_text(encoding="utf-8")
    except OSError:
        return None
    if "${" + TOKEN_ENV + "}" not in text or os.environ.get(TOKEN_ENV):
        return None
    try:
        if read_secrets_file(home.secrets_file).get(TOKEN_ENV):
            return None
    except Exception:  # noqa: BLE001 - load() reports a broken secrets file properly
        return None
    return resolve_token("", home.secrets_file)


async def _serve(config_path: Path | None, grace: float) -> int:
    generated = _pregenerate_token(config_path)
    from gateway.config import ConfigError
    from gateway.config_checks import check_startup
    from gateway.logging_setup import setup_logging
    from gateway.pidfile import GatewayAlreadyRunning, hold_pidfile

    config, home = load(config_path)
    try:
        check_startup(config, config_path or home.config_file)  # the same checks as `hermes config check`
    except ConfigError as exc:
        fail(str(exc), code=2)
    log_setup = setup_logging(home.logs_dir, config.logging.level)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(log_setup.close)
        try:
            cleanup.enter_context(hold_pidfile(home.root))
        except GatewayAlreadyRunning as exc:
            fail(f"{exc}. {_several_processes_hint(config, home)}")
        return await _run(config, home, config_path, grace, generated)


def _several_processes_hint(config: Any, home: Any) -> str:
    """What to do to run several gateways: PostgreSQL, and one home per process."""
    from gateway.store.store import configured_url

    try:
        sqlite = configured_url(config, home.state_db).get_backend_name() == "sqlite"
    except ValueError:
        sqlite = True
    if sqlite:
        return ("Several gateway processes need a PostgreSQL store shared by all of them "
                "([store] url = \"postgresql+asyncpg://USER@HOST:PORT/DB\"), each process with its own HERMES_HOME")
    return ("Each gateway process on this PostgreSQL store needs its own HERMES_HOME "
            "(deploy/hermes-gateway@.service gives every instance one)")


async def _run(config: Any, home: Any, config_path: Path | None, grace: float, generated: object | None) -> int:
    from gateway.api.auth import WeakTokenError
    from gateway.app import Gateway
    from gateway.store import MigrationError, SchemaTooNewError, StoreUnavailableError

    try:
        gateway = Gateway(config, home, grace=grace)
    except ValueError as exc:
        fail(f"{config_path or home.config_file}: {exc}", code=2)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            click.echo("hermes: stopping (finishing running turns; signal again to stop them now)", err=True)
            stop.set()
        else:
            gateway.grace = 0.0
            if hasattr(gateway, "dispatcher"):
                for key in list(gateway.dispatcher._slots):
                    gateway.dispatcher.stop(key)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await gateway.start()
    except WeakTokenError as exc:
        fail(str(exc), code=2)
    except (SchemaTooNewError, MigrationError, StoreUnavailableError, OSError) as exc:
        fail(str(exc))
    from gateway.reload import install_sighup

    install_sighup(loop, gateway, config_path)  # SIGHUP: reload the configuration
    if generated is not None:
        gateway.token = generated  # type: ignore[assignment]
    warm_up = asyncio.create_task(_warm_up(gateway), name="warm-up")
    checked = asyncio.create_task(_check_model_after(warm_up, gateway), name="model-check")
    await asyncio.wait({checked}, timeout=BANNER_WAIT)  # a refused key is in the banner, not the first chat
    click.echo(_banner(gateway))
    sys.stdout.flush()
    if not checked.done():
        checked.add_done_callback(_print_late_check)
    await stop.wait()
    checked.cancel()
    warm_up.cancel()
    await gateway.stop()
    click.echo("hermes: gateway stopped.", err=True)
    return 0


async def _check_model_after(warm_up: asyncio.Task[None], gateway: Any) -> Any:
    """The model probe, once LiteLLM is imported (off the event loop) by the warm-up."""
    await asyncio.wait({warm_up}, timeout=BANNER_WAIT)
    if gateway.config.model.name:
        return await gateway.check_model()
    return None


def _print_late_check(task: asyncio.Task[Any]) -> None:
    if task.cancelled() or task.exception() is not None or task.result() is None:
        return
    check = task.result()
    click.echo(f"hermes: model check: {check.line()}", err=not check.ok)


async def _warm_up(gateway: Any) -> None:
    """Import LiteLLM in a thread now rather than during the first message (seconds), then keep
    the garbage collector off the start-up heap (see `agent.heap`)."""
    from agent.heap import freeze_heap
    from agent.llm import import_litellm

    try:
        if gateway.runtime.model_pool is None:  # model calls run in this process
            await asyncio.to_thread(import_litellm)
        await gateway.runtime.llm.context_window_async()
    except Exception as exc:  # noqa: BLE001 - the first turn reports model problems properly
        logging.getLogger(__name__).warning("could not look up the model's context window: %s", exc)
    freeze_heap()


@click.group(invoke_without_command=True)
@config_option
@click.option("--grace", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds running turns may take to finish after SIGTERM.")
@click.pass_context
def gateway(ctx: click.Context, config_path: Path | None, grace: float) -> None:
    """Run the gateway (platforms, web chat, API) until SIGTERM or Ctrl-C.

    SIGHUP reloads the configuration. `hermes gateway install-service` writes a systemd unit.
    """
    if ctx.invoked_subcommand is None:
        sys.exit(asyncio.run(_serve(config_path, grace)))


gateway.add_command(install_service)
