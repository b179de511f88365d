"""A second store client on a test home (SQLite file or the run's PostgreSQL database), for tests
that read what a gateway stored through the store's own methods instead of SQL text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from agent.redact import Redactor
from gateway.store import StateStore, open_store
from gateway.store.database import resolve_url


@asynccontextmanager
async def home_store(home: Path, redactor: Redactor | None = None, *,
                     migrate: bool = False) -> AsyncIterator[StateStore]:
    """The store of `home` as the gateway opened it (HERMES_STORE_URL under --store=postgresql);
    `migrate=True` creates it when the gateway has not yet."""
    store = await open_store(resolve_url("", "", home / "state.db"), redactor, migrate=migrate)
    try:
        yield store
    finally:
        await store.close()
