"""The skill library the `hermes skills` commands work on, and running a change through the store.

Shared by the library commands (skills_cmd.py) and the hub commands (hub_cmd.py); imports stay
inside the functions so `hermes --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from gateway.cli.common import fail, run

if TYPE_CHECKING:
    from skills.library import SkillLibrary

T = TypeVar("T")


def open_library(ctx: click.Context) -> SkillLibrary:
    """The library `hermes skills` works on: the home's, or --team's, with the bundled skills in."""
    from gateway.config import ConfigError, SkillsConfig, load_config
    from gateway.home import Home
    from gateway.skills_wiring import library_root
    from skills.bundled_install import install_bundled
    from skills.library import SkillLibrary
    from skills.paths import PathEscapeError

    options = ctx.obj or {}
    home = Home.from_env().ensure()
    try:
        settings = load_config(options.get("config_path"), home).skills
    except ConfigError:
        settings = SkillsConfig()
    try:
        root = library_root(home, options.get("team") or "")
    except PathEscapeError as exc:
        fail(f"bad team name: {exc}")
    library = SkillLibrary(root, rescan_interval=0)
    if settings.install_bundled:
        try:
            install_bundled(library)
        except OSError as exc:
            click.echo(f"hermes: warning: could not install bundled skills: {exc}", err=True)
    return library


def in_store(ctx: click.Context, library: SkillLibrary, op: Callable[[], Awaitable[T]]) -> T:
    """Run `op` with the home's store as the library's source of truth (as in the gateway), so a
    change made here is a version of the store, not an edit the gateway would find in the files."""
    from gateway.config import ConfigError, load_config
    from gateway.home import Home
    from gateway.store import MigrationError, SchemaTooNewError, StoreUnavailableError, configured_url, open_store
    from gateway.store.database import resolve_url

    options = ctx.obj or {}
    home = Home.from_env().ensure()
    try:
        url = configured_url(load_config(options.get("config_path"), home), home.state_db)
    except ConfigError:
        url = resolve_url("", "", home.state_db)

    async def work() -> T:
        store = await open_store(url)
        library.versions = store.skill_versions(options.get("team") or "")
        try:
            return await op()
        finally:
            library.versions = None
            await store.close()

    try:
        return run(work)
    except (StoreUnavailableError, SchemaTooNewError, MigrationError) as exc:
        fail(str(exc))
        raise
