"""The store: one `Database` and the concern modules over it, opened and migrated in one call.

`StateStore` is composed of one mixin per concern (sessions and messages, usage, ...), each in
its own module of this package and each running its statements on the shared `self.db`: one pool,
one transaction scope, one redaction point (Synapse's storage layout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from agent.redact import Redactor
from gateway.store.api_responses import ApiStore
from gateway.store.approvals import ApprovalsStore
from gateway.store.cron import CronStore
from gateway.store.database import Database, check_reachable, create_engine_for, display_url, resolve_url
from gateway.store.delivery import DeliveryStore
from gateway.store.inbox import InboxStore
from gateway.store.learning import LearningStore
from gateway.store.leases import LeasesStore
from gateway.store.maintenance import MaintenanceStore
from gateway.store.memory import MemoryFilesStore
from gateway.store.notify import NotifyStore
from gateway.store.outbox import OutboxStore
from gateway.store.pacing import PacingStore
from gateway.store.pairing import PairingStore
from gateway.store.proposals import ProposalsStore
from gateway.store.sessions import SessionsStore
from gateway.store.sessions_query import SessionQueriesStore
from gateway.store.skills import SkillsStore
from gateway.store.turns import TurnClaimsStore
from gateway.store.upgrade import SchemaStatus, at_head, schema_status, upgrade_database
from gateway.store.usage import UsageStore
from gateway.store.web_logins import WebLoginsStore


class StateStore(SessionsStore, UsageStore, InboxStore, DeliveryStore, LearningStore, ProposalsStore,
                 LeasesStore, MaintenanceStore, SkillsStore, MemoryFilesStore, WebLoginsStore, ApiStore,
                 SessionQueriesStore,
                 CronStore, ApprovalsStore, PairingStore, OutboxStore, TurnClaimsStore, NotifyStore, PacingStore):
    """Every piece of state the gateway keeps, on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._init_sessions()

    @property
    def redactor(self) -> Redactor:
        return self.db.redactor

    @property
    def url(self) -> URL:
        return self.db.url

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None on a server database."""
        return Path(self.db.url.database) if self.db.is_sqlite and self.db.url.database else None

    def describe(self) -> str:
        return display_url(self.db.url)

    async def schema_status(self) -> SchemaStatus:
        return await schema_status(self.db.url)

    async def close(self) -> None:
        self._active.clear()
        await self.db.close()


def as_url(target: Path | URL | str) -> URL:
    if isinstance(target, URL):
        return target
    if isinstance(target, Path):
        return URL.create("sqlite+aiosqlite", database=str(target))
    return resolve_url(target, "", Path("state.db"))


async def open_store(target: Path | URL | str, redactor: Redactor | None = None, *,
                     migrate: bool = True) -> StateStore:
    """Open the store at `target` (a SQLite file or a database URL), migrated to this code's schema.

    `redactor` masks secrets in what is written (default: the environment's secrets and shapes;
    the Runtime passes one that also knows the config's literal secrets)."""
    url = as_url(target)
    engine = create_engine_for(url)
    try:
        if url.get_backend_name() != "sqlite":
            await check_reachable(engine, url)
        if migrate and not await at_head(engine):
            await upgrade_database(url)
    except BaseException:
        await engine.dispose()
        raise
    return StateStore(Database(engine, url, redactor or Redactor.from_environ()))


def configured_url(config: Any, state_db: Path) -> URL:
    """The URL the config (and HERMES_STORE_URL) names for a home whose SQLite file is `state_db`."""
    return resolve_url(getattr(config.store, "url", ""), config.store.path, state_db)


async def open_configured_store(config: Any, home: Any, redactor: Redactor | None = None) -> StateStore:
    """The store of a home as its config says (`[store] url`, HERMES_STORE_URL, or state.db)."""
    return await open_store(configured_url(config, home.state_db), redactor)
