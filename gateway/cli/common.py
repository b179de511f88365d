"""Helpers every CLI command shares: loading the config, running coroutines, printing errors.

Light on purpose (click only): the config module (pydantic) is imported when a command loads the
config, so `hermes chat` can show its prompt first.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from gateway.wording import plural  # noqa: F401 - the CLI modules take it from here

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.home import Home

T = TypeVar("T")

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Config file (default: $HERMES_HOME/config.toml).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
output_option = click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
                             default=None, help="The file to write.")


def pick_output(positional: Path | None, option: Path | None) -> Path:
    """`--output FILE`, or the older positional FILE (kept as an alias); one of them, not two."""
    if positional is not None and option is not None and positional != option:
        fail(f"two output files given ({positional} and --output {option}): use --output only", code=2)
    chosen = option or positional
    if chosen is None:
        fail("say where to write: --output FILE", code=2)
    return chosen


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error to stderr and exit non-zero."""
    click.echo(f"hermes: error: {message}", err=True)
    sys.exit(code)


def load(config_path: Path | None) -> tuple[Config, Home]:
    """The home (created if missing) and the validated config, or a clear error and exit 2."""
    from gateway.config import ConfigError, load_config
    from gateway.home import Home

    home = Home.from_env().ensure()
    try:
        return load_config(config_path, home), home
    except ConfigError as exc:
        fail(str(exc), code=2)


def run(coroutine_factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coroutine_factory())  # type: ignore[arg-type]


def print_json(rows: list[dict[str, Any]]) -> None:
    click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
