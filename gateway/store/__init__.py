"""All state behind one layer: SQLAlchemy Core on SQLite (aiosqlite, the default) or PostgreSQL (asyncpg)."""

from gateway.store.base import KeepSecret, RowRejectedError, SessionRecord, UsageTotals
from gateway.store.database import StoreUnavailableError
from gateway.store.store import StateStore, configured_url, open_configured_store, open_store
from gateway.store.upgrade import MigrationError, SchemaTooNewError

__all__ = ["KeepSecret", "MigrationError", "RowRejectedError", "SchemaTooNewError", "SessionRecord", "StateStore",
           "StoreUnavailableError", "UsageTotals", "configured_url", "open_configured_store", "open_store"]
