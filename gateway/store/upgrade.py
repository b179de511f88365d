"""Bringing a database to the schema this code knows: Alembic revisions, applied at start.

- A fresh database gets every revision.
- A SQLite home made before Alembic (tables present, `PRAGMA user_version` set, no
  `alembic_version`) runs the legacy SQL files it lacks and is stamped at the baseline, 0001,
  then upgraded like any other: nothing in it is rewritten.
- A database at a revision this code does not know (written by a newer Hermes) is refused with
  the revision named.

The whole upgrade is one transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: DDL is
transactional, and `pg_advisory_xact_lock` keeps two processes starting at once from racing), so a
failed revision leaves the database at the revision it had. SQLite runs it with foreign keys off,
as batch mode's table copies need.

Opening a store that is already at the latest revision (every start but the first after an
upgrade) costs one SELECT of `alembic_version` on the store's own pool: `at_head` compares it with
the newest revision file's number, so Alembic is imported only when there is something to do.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.database import create_engine_for, display_url
from gateway.store.legacy import last_legacy_version, legacy_migrations, split_sql

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

SCRIPT_LOCATION = "gateway.store:alembic"
BASELINE = "0001"
MIGRATION_LOCK_KEY = 0x4E524D45  # pg_advisory_xact_lock key of "hermes store migrate"
VERSIONS = Path(__file__).parent / "alembic" / "versions"
REVISION_FILE = re.compile(r"(\d{4})_\w+\.py")    # revision "0011" lives in 0011_<what>.py

log = logging.getLogger(__name__)


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer Hermes than this one."""


class MigrationError(RuntimeError):
    """A revision failed; the database stays at the revision it had."""


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # None: an empty database (or a legacy one not yet stamped)
    head: str
    legacy_version: int | None  # PRAGMA user_version of a home made before Alembic

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def script_directory() -> ScriptDirectory:
    """Alembic's view of our revisions (imported here: opening a current store never needs it)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    assert head is not None
    return head


@cache
def newest_revision_file() -> str:
    """The number of the newest revision file: the head, as the revisions are numbered in a line
    (tests/test_store_cli.py checks that it is Alembic's head)."""
    found = [m.group(1) for p in VERSIONS.iterdir() if (m := REVISION_FILE.fullmatch(p.name))]
    return max(found)


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database already is at this code's latest revision (a missing table, an older or
    a newer revision: False, and `upgrade_database` says what to do)."""
    try:
        async with engine.connect() as connection:
            found = (await connection.exec_driver_sql("SELECT version_num FROM alembic_version")).scalars().all()
    except sa.exc.DBAPIError:
        return False
    return list(found) == [newest_revision_file()]


def _legacy_version(connection: sa.Connection) -> int | None:
    if connection.dialect.name != "sqlite":
        return None
    tables = set(sa.inspect(connection).get_table_names())
    if "alembic_version" in tables or "sessions" not in tables:
        return None
    return int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)


def _status(connection: sa.Connection) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext

    current = MigrationContext.configure(connection).get_current_revision()
    return SchemaStatus(current, head_revision(), _legacy_version(connection))


def _refuse_unknown(status: SchemaStatus, where: str) -> None:
    if status.current is None:
        return
    script = script_directory()
    try:
        script.get_revision(status.current)
    except Exception:
        raise SchemaTooNewError(
            f"{where}: the database is at revision {status.current}, newer than this Hermes knows "
            f"(latest {status.head}); upgrade hermes-gateway") from None


def _upgrade(connection: sa.Connection, where: str, target: str) -> SchemaStatus:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    status = _status(connection)
    _refuse_unknown(status, where)
    config = alembic_config()
    config.attributes["connection"] = connection
    if status.legacy_version is not None:
        if status.legacy_version > last_legacy_version():
            raise SchemaTooNewError(f"{where}: schema version {status.legacy_version} is newer than this "
                                    f"Hermes knows ({last_legacy_version()}); upgrade hermes-gateway")
        for number, sql in legacy_migrations():
            if number > status.legacy_version:
                for statement in split_sql(sql):
                    connection.exec_driver_sql(statement)
                connection.exec_driver_sql(f"PRAGMA user_version = {number}")
        command.stamp(config, BASELINE)
    before = _status(connection).current
    if before != target:
        command.upgrade(config, target)
        log.info("store %s: schema upgraded from revision %s to %s", where, before or "(empty)", target)
    return _status(connection)


async def upgrade_database(url: URL, target: str = "head") -> SchemaStatus:
    """Apply what the database lacks (see the module docstring); returns the new status."""
    where = display_url(url)
    engine = create_engine_for(url, foreign_keys=False, pool_size=1)
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection = await connection.execution_options(hermes_begin="BEGIN IMMEDIATE")
            try:
                async with connection.begin():
                    return await connection.run_sync(
                        lambda sync: _upgrade(sync, where, head_revision() if target == "head" else target))
            except SchemaTooNewError:
                raise
            except sa.exc.OperationalError as exc:
                if "unable to open database" in str(exc) or "could not" in str(exc):
                    raise
                raise MigrationError(f"{where}: migration failed, the database stays at its previous "
                                     f"revision: {exc.orig}") from exc
    finally:
        await engine.dispose()


async def schema_status(url: URL) -> SchemaStatus:
    engine = create_engine_for(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_status)
    finally:
        await engine.dispose()


def is_known_revision(revision: str | None) -> bool:
    """Whether this code knows `revision` (None, an empty database, counts as known)."""
    if revision is None:
        return True
    try:
        return script_directory().get_revision(revision) is not None
    except Exception:
        return False


def pending_revisions(current: str | None) -> list[tuple[str, str]]:
    """(revision, first line of its docstring) of each revision above `current`, oldest first."""
    script = script_directory()
    found = [(r.revision, (r.doc or "").strip().splitlines()[0] if r.doc else "")
             for r in script.walk_revisions(base="base", head="heads")]
    found.reverse()
    if current is None:
        return found
    names = [name for name, _ in found]
    return found[names.index(current) + 1:] if current in names else []
