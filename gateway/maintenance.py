"""State database upkeep: prune old transcripts, give the space back, keep the planner's statistics fresh.

Pruning (`[store].retention_days`, 0 keeps everything):
- archived sessions last updated before the cutoff lose their messages and tool calls; the
  session row stays (title, team, dates) and so do the `usage` rows, so token and cost totals
  never change;
- sessions still in use keep their conversation; only what the agent no longer loads goes:
  messages compressed away (`active = 0`) and tool-call records older than the cutoff.

Space: on its first run `run_maintenance` switches the database to `auto_vacuum = INCREMENTAL`
(one full `VACUUM`, logged); after that each run frees at most `vacuum_pages` pages with
`PRAGMA incremental_vacuum`, so no run blocks the gateway for long. Then `PRAGMA optimize` and a
WAL checkpoint that truncates the `-wal` file.

`maintenance_loop` is the coroutine the gateway runs in the background; it reads the retention
through a callable so a SIGHUP reload of `[store]` is seen on the next run.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import StoreConfig
from gateway.store import StateStore

log = logging.getLogger(__name__)

DAY = 86_400.0
DEFAULT_INTERVAL = 6 * 3600.0
DEFAULT_FIRST_DELAY = 300.0
DEFAULT_VACUUM_PAGES = 20_000  # 80 MB at the default 4 KB page size
INCREMENTAL = 2


@dataclass
class MaintenanceReport:
    sessions_pruned: int = 0
    messages_deleted: int = 0
    tool_calls_deleted: int = 0
    pages_freed: int = 0
    switched_to_incremental: bool = False
    seconds: float = 0.0


async def prune_transcripts(store: StateStore, retention_days: int, *, now: float | None = None) -> MaintenanceReport:
    """Delete transcripts older than `retention_days` (see the module docstring); usage is kept."""
    report = MaintenanceReport()
    if retention_days <= 0:
        return report
    cutoff = (time.time() if now is None else now) - retention_days * DAY
    old_archived = ("SELECT id FROM sessions WHERE archived = 1 AND updated_at < ?")
    rows = await store.fetchall(
        f"SELECT COUNT(*) FROM sessions WHERE id IN ({old_archived})"
        " AND (EXISTS (SELECT 1 FROM messages m WHERE m.session_id = sessions.id)"
        "      OR EXISTS (SELECT 1 FROM tool_calls t WHERE t.session_id = sessions.id))", (cutoff,))
    report.sessions_pruned = int(rows[0][0]) if rows else 0
    # Four autocommit statements, no explicit transaction: the gateway shares this connection, and a
    # turn's writes must never ride on (or be rolled back with) a maintenance transaction.
    report.messages_deleted = await store.execute_rowcount(
        f"DELETE FROM messages WHERE session_id IN ({old_archived})", (cutoff,))
    report.tool_calls_deleted = await store.execute_rowcount(
        f"DELETE FROM tool_calls WHERE session_id IN ({old_archived})", (cutoff,))
    report.messages_deleted += await store.execute_rowcount(
        "DELETE FROM messages WHERE active = 0 AND created_at < ?", (cutoff,))
    report.tool_calls_deleted += await store.execute_rowcount(
        "DELETE FROM tool_calls WHERE created_at < ?", (cutoff,))
    # finished learning reviews keep the transcript slice they saw no longer than the transcripts
    await store.execute(
        "UPDATE learning_reviews SET slice = '[]' WHERE status IN ('done', 'failed', 'capped', 'merged')"
        " AND updated_at < ? AND slice != '[]'", (cutoff,))
    return report


def _reclaim_blocking(path: str, vacuum_pages: int) -> tuple[int, bool]:
    """On its own connection: (pages freed, switched to incremental). Runs in a worker thread."""
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        def pragma(name: str) -> int:
            return int(connection.execute(f"PRAGMA {name}").fetchone()[0])

        free_before = pragma("freelist_count")
        switched = False
        if pragma("auto_vacuum") != INCREMENTAL:
            connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
            connection.execute("VACUUM")
            switched = True
        else:
            # Python's execute() steps a row-less PRAGMA once, and incremental_vacuum frees one page per
            # step; executescript steps each statement to the end.
            connection.executescript(f"PRAGMA incremental_vacuum({int(vacuum_pages)});")
        freed = max(0, free_before - pragma("freelist_count"))
        connection.execute("PRAGMA optimize")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return freed, switched
    finally:
        connection.close()


async def reclaim_space(store: StateStore, *, vacuum_pages: int = DEFAULT_VACUUM_PAGES,
                        report: MaintenanceReport | None = None) -> MaintenanceReport:
    """Free pages (incremental vacuum; one full VACUUM the first time), optimize, truncate the WAL.

    Uses a connection of its own in a worker thread, so the gateway's connection is never held."""
    report = report or MaintenanceReport()
    report.pages_freed, report.switched_to_incremental = await asyncio.to_thread(
        _reclaim_blocking, str(store.path), vacuum_pages)
    if report.switched_to_incremental:
        log.info("switched the state database to incremental vacuum (one full VACUUM, done once)")
    return report


async def run_maintenance(store: StateStore, settings: StoreConfig, *, now: float | None = None,
                          vacuum_pages: int = DEFAULT_VACUUM_PAGES) -> MaintenanceReport:
    """One pass: prune, reclaim, optimize. Logs what it did."""
    started = time.monotonic()
    report = await prune_transcripts(store, settings.retention_days, now=now)
    await reclaim_space(store, vacuum_pages=vacuum_pages, report=report)
    report.seconds = time.monotonic() - started
    log.info("store maintenance: %d old sessions pruned (%d messages, %d tool calls), %d pages freed, %.2fs",
             report.sessions_pruned, report.messages_deleted, report.tool_calls_deleted, report.pages_freed,
             report.seconds)
    return report


async def maintenance_loop(store: StateStore, settings: Callable[[], StoreConfig], *,
                           interval: float = DEFAULT_INTERVAL, first_delay: float = DEFAULT_FIRST_DELAY) -> None:
    """Run `run_maintenance` every `interval` seconds until cancelled; a failed run is logged, not fatal."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            await run_maintenance(store, settings())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("store maintenance failed; trying again in %.0fs", interval)
        await asyncio.sleep(interval)
