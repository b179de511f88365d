"""Store upkeep on either engine: prune old transcripts, give space back, refresh the planner's statistics.

Pruning (`prune_transcripts(cutoff)`):
- archived sessions last updated before the cutoff lose their messages and tool calls; the
  session row stays (title, team, dates) and so do the `usage` rows, so totals never change;
- sessions still in use keep their conversation; only what the agent no longer loads goes:
  messages compressed away (`active = 0`) and tool-call records older than the cutoff;
- finished learning reviews keep the transcript slice they saw no longer than the transcripts.
Each delete is its own short transaction, so a turn's writes never wait on (or roll back with) a
long maintenance transaction.

Space (`reclaim_space`): on SQLite the first run switches the file to `auto_vacuum = INCREMENTAL`
(one full `VACUUM`), later runs free at most `vacuum_pages` pages with `PRAGMA incremental_vacuum`,
then `PRAGMA optimize` and a WAL checkpoint that truncates the `-wal` file; all on a connection of
its own in a worker thread. On PostgreSQL it is `VACUUM ANALYZE` on an autocommit connection (the
server reuses dead space itself; nothing is given back to the file system).
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import api_responses, learning_reviews, messages, sessions, tool_calls

INCREMENTAL = 2
FINISHED_REVIEWS = ("done", "failed", "capped", "merged")


@dataclass(frozen=True)
class PruneCounts:
    sessions_pruned: int
    messages_deleted: int
    tool_calls_deleted: int
    responses_deleted: int = 0        # stored /v1/responses (each holds its whole conversation)


@dataclass(frozen=True)
class SpaceReclaimed:
    pages_freed: int
    switched_to_incremental: bool


def _sqlite_reclaim(path: str, vacuum_pages: int) -> SpaceReclaimed:
    """On its own connection, in a worker thread (see the module docstring)."""
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
            # execute() steps a row-less PRAGMA once and incremental_vacuum frees one page per step;
            # executescript steps each statement to the end.
            connection.executescript(f"PRAGMA incremental_vacuum({int(vacuum_pages)});")
        freed = max(0, free_before - pragma("freelist_count"))
        connection.execute("PRAGMA optimize")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return SpaceReclaimed(freed, switched)
    finally:
        connection.close()


class MaintenanceStore:
    """Mixin of the store: retention pruning and space reclaiming."""

    db: Database

    async def prune_transcripts(self, cutoff: float) -> PruneCounts:
        old_archived = (sa.select(sessions.c.id)
                        .where(sessions.c.archived == 1, sessions.c.updated_at < cutoff).scalar_subquery())
        has_transcript = sa.or_(
            sa.exists().where(messages.c.session_id == sessions.c.id),
            sa.exists().where(tool_calls.c.session_id == sessions.c.id))
        pruned = await self.db.scalar(sa.select(sa.func.count()).select_from(sessions).where(
            sessions.c.archived == 1, sessions.c.updated_at < cutoff, has_transcript))
        deleted_messages = (await self.db.execute(
            messages.delete().where(messages.c.session_id.in_(old_archived)))).rowcount
        deleted_calls = (await self.db.execute(
            tool_calls.delete().where(tool_calls.c.session_id.in_(old_archived)))).rowcount
        deleted_messages += (await self.db.execute(
            messages.delete().where(messages.c.active == 0, messages.c.created_at < cutoff))).rowcount
        deleted_calls += (await self.db.execute(
            tool_calls.delete().where(tool_calls.c.created_at < cutoff))).rowcount
        await self.db.execute(learning_reviews.update().where(
            learning_reviews.c.status.in_(FINISHED_REVIEWS), learning_reviews.c.updated_at < cutoff,
            learning_reviews.c.slice != "[]").values(slice="[]"))
        deleted_responses = (await self.db.execute(
            api_responses.delete().where(api_responses.c.created_at < cutoff))).rowcount
        return PruneCounts(int(pruned or 0), int(deleted_messages), int(deleted_calls), int(deleted_responses))

    async def journal_mode(self) -> str | None:
        """SQLite's journal mode (`wal` once the store opened the file), None on PostgreSQL."""
        if not self.db.is_sqlite:
            return None
        return str(await self.db.scalar(sa.text("PRAGMA journal_mode")))

    async def reclaim_space(self, vacuum_pages: int) -> SpaceReclaimed:
        if self.db.is_sqlite:
            return await asyncio.to_thread(_sqlite_reclaim, str(self.db.url.database), vacuum_pages)
        async with self.db.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("VACUUM ANALYZE")
        return SpaceReclaimed(0, False)
