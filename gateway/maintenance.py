"""Store upkeep on a schedule: prune old transcripts (`[store].retention_days`, 0 keeps everything),
forget finished outbox rows after a day, give the space back, keep the planner's statistics fresh.

What is pruned and how space is reclaimed on each engine is in `gateway.store.maintenance`; this
module decides when, and reports. `maintenance_loop` is the coroutine the gateway runs in the
background; it reads the retention through a callable so a SIGHUP reload of `[store]` is seen on
the next run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.config import StoreConfig
from gateway.store import StateStore

log = logging.getLogger(__name__)

DAY = 86_400.0
DEFAULT_INTERVAL = 6 * 3600.0
DEFAULT_FIRST_DELAY = 300.0
DEFAULT_VACUUM_PAGES = 20_000  # 80 MB at SQLite's default 4 KB page size


@dataclass
class MaintenanceReport:
    sessions_pruned: int = 0
    messages_deleted: int = 0
    tool_calls_deleted: int = 0
    responses_deleted: int = 0
    pages_freed: int = 0
    switched_to_incremental: bool = False
    outbox_forgotten: int = 0
    seconds: float = 0.0


async def prune_transcripts(store: StateStore, retention_days: int, *, now: float | None = None) -> MaintenanceReport:
    """Delete transcripts older than `retention_days` (stored /v1/responses with them); usage is kept."""
    report = MaintenanceReport()
    if retention_days <= 0:
        return report
    cutoff = (time.time() if now is None else now) - retention_days * DAY
    counts = await store.prune_transcripts(cutoff)
    report.sessions_pruned = counts.sessions_pruned
    report.messages_deleted = counts.messages_deleted
    report.tool_calls_deleted = counts.tool_calls_deleted
    report.responses_deleted = counts.responses_deleted
    return report


async def reclaim_space(store: StateStore, *, vacuum_pages: int = DEFAULT_VACUUM_PAGES,
                        report: MaintenanceReport | None = None) -> MaintenanceReport:
    """Free pages (SQLite) or VACUUM ANALYZE (PostgreSQL); never holds the gateway's connections."""
    report = report or MaintenanceReport()
    reclaimed = await store.reclaim_space(vacuum_pages)
    report.pages_freed, report.switched_to_incremental = reclaimed.pages_freed, reclaimed.switched_to_incremental
    if report.switched_to_incremental:
        log.info("switched the state database to incremental vacuum (one full VACUUM, done once)")
    return report


async def run_maintenance(store: StateStore, settings: StoreConfig, *, now: float | None = None,
                          vacuum_pages: int = DEFAULT_VACUUM_PAGES) -> MaintenanceReport:
    """One pass: prune, forget finished outbox rows older than a day, reclaim, optimize. Logs what it did."""
    started = time.monotonic()
    now = time.time() if now is None else now
    report = await prune_transcripts(store, settings.retention_days, now=now)
    # a delivered, failed or expired outbox row is only read by the process waiting for it
    report.outbox_forgotten = await store.outbox_prune(now - DAY)
    await store.pace_prune(now - DAY)        # an idle chat's pacing row: its next send paces from now anyway
    await reclaim_space(store, vacuum_pages=vacuum_pages, report=report)
    report.seconds = time.monotonic() - started
    log.info("store maintenance: %d old sessions pruned (%d messages, %d tool calls), %d stored API responses "
             "pruned, %d finished outbox rows forgotten, %d pages freed, %.2fs", report.sessions_pruned,
             report.messages_deleted, report.tool_calls_deleted, report.responses_deleted,
             report.outbox_forgotten, report.pages_freed, report.seconds)
    return report


async def maintenance_loop(store: StateStore, settings: Callable[[], StoreConfig], *,
                           interval: float = DEFAULT_INTERVAL, first_delay: float = DEFAULT_FIRST_DELAY,
                           fence: Callable[[], Awaitable[bool]] | None = None) -> None:
    """Run `run_maintenance` every `interval` seconds until cancelled; a failed run is logged, not fatal.
    A cluster duty: `await fence()` before each run says whether this process still owns it."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            if fence is None or await fence():
                await run_maintenance(store, settings())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("store maintenance failed; trying again in %.0fs", interval)
        await asyncio.sleep(interval)
