"""Persistence behind a small async interface; the embedded default is SQLite (aiosqlite)."""

from gateway.store.base import KeepSecret, SessionRecord, Store, UsageTotals
from gateway.store.sqlite import SQLiteStore, open_store

__all__ = ["KeepSecret", "SQLiteStore", "SessionRecord", "Store", "UsageTotals", "open_store"]
