"""Retention pruning removes old transcripts only; usage totals stay; space is given back (both engines)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.config import StoreConfig
from gateway.maintenance import maintenance_loop, prune_transcripts, reclaim_space, run_maintenance
from gateway.store import open_store
from gateway.store.schema import messages, sessions, tool_calls

DAY = 86_400.0


async def _home_store(home: Path):
    """The test home's store: state.db, or the PostgreSQL database of `--store=postgresql`."""
    return await open_store(os.environ.get("HERMES_STORE_URL") or home / "state.db")


async def _age(store, session_id: str, *, archived: bool, age_days: float) -> None:
    """Make a session look `age_days` old (no store method moves time back; Core, in the test only)."""
    stamp = time.time() - age_days * DAY
    await store.db.execute(sessions.update().where(sessions.c.id == session_id).values(
        archived=int(archived), updated_at=stamp, created_at=stamp))
    await store.db.execute(messages.update().where(messages.c.session_id == session_id).values(created_at=stamp))
    await store.db.execute(tool_calls.update().where(tool_calls.c.session_id == session_id).values(created_at=stamp))


async def _session_with_history(store, key: str, *, archived: bool, age_days: float, messages: int = 3):
    session = await store.active_session(key, platform="telegram", user_id=key)
    for i in range(messages):
        await store.add_message(session.id, {"role": "user", "content": f"{key} message {i} " + "x" * 2000})
    await store.record_tool_call(session.id, call_id="c1", name="read_file", arguments="{}", ok=True,
                                 result="y" * 2000, duration_ms=1.0)
    await store.record_usage(session.id, model="m", prompt_tokens=100, completion_tokens=10, cost=0.5)
    await _age(store, session.id, archived=archived, age_days=age_days)
    store.forget_sessions()
    return session


def _header(path: Path, pragma: str) -> int:
    """Read a PRAGMA on a fresh connection (a connection caches some header fields)."""
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute(f"PRAGMA {pragma}").fetchone()[0])
    finally:
        connection.close()


async def _transcript(store, session_id: str) -> tuple[int, int]:
    """(messages, tool calls) the store keeps for a session, compressed-away ones included."""
    stored = await store.db.scalar(sa.select(sa.func.count()).select_from(messages)
                                   .where(messages.c.session_id == session_id))
    calls = await store.db.scalar(sa.select(sa.func.count()).select_from(tool_calls)
                                  .where(tool_calls.c.session_id == session_id))
    return int(stored), int(calls)


async def test_prune_removes_old_transcripts_only(home: Path) -> None:
    store = await _home_store(home)
    try:
        old_archived = await _session_with_history(store, "old-archived", archived=True, age_days=100)
        new_archived = await _session_with_history(store, "new-archived", archived=True, age_days=5)
        old_active = await _session_with_history(store, "old-active", archived=False, age_days=100)
        # compression folded the active session's first message away long ago
        await store.compact_messages(old_active.id, 1, 1, {"role": "system", "content": "summary of message 0"})
        await _age(store, old_active.id, archived=False, age_days=100)
        totals_before = await store.usage_since(0)
        # stored /v1/responses hold whole conversations: the old one goes, the recent one stays
        day = 86_400
        for rid, age in (("resp_old", 100), ("resp_new", 5)):
            await store.api_response_save({"id": rid, "created_at": time.time() - age * day},
                                          [{"role": "user", "content": f"{rid} question"}], token_id="tok")

        report = await prune_transcripts(store, 30)
        assert await store.api_response("resp_old", token_id="tok") is None
        kept = await store.api_response("resp_new", token_id="tok")
        assert kept is not None and kept.messages == [{"role": "user", "content": "resp_new question"}]
        assert report.responses_deleted == 1

        assert await _transcript(store, old_archived.id) == (0, 0)
        assert await store.get_session(old_archived.id) is not None  # the session row stays
        assert await _transcript(store, new_archived.id) == (3, 1)
        # the conversation still in use loads exactly as before; only the folded-away message went
        assert [m["content"][:20] for m in await store.load_messages(old_active.id)] == [
            "summary of message 0", "old-active message 1", "old-active message 2"]
        assert await _transcript(store, old_active.id) == (3, 0)
        assert await store.usage_since(0) == totals_before
        assert (report.sessions_pruned, report.messages_deleted, report.tool_calls_deleted) == (1, 4, 2)

        assert (await prune_transcripts(store, 0)).messages_deleted == 0  # 0 keeps everything
        again = await prune_transcripts(store, 30)
        assert (again.sessions_pruned, again.messages_deleted, again.tool_calls_deleted) == (0, 0, 0)
    finally:
        await store.close()


async def test_reclaim_switches_to_incremental_vacuum_then_frees_pages(home: Path) -> None:
    if os.environ.get("HERMES_STORE_URL"):
        pytest.skip("SQLite's page accounting; PostgreSQL's VACUUM ANALYZE is the next test")
    store = await _home_store(home)
    try:
        first = await reclaim_space(store)
        assert first.switched_to_incremental
        assert _header(home / "state.db", "auto_vacuum") == 2
        for i in range(20):
            await _session_with_history(store, f"s{i}", archived=True, age_days=100, messages=10)
        pages_full = _header(home / "state.db", "page_count")
        report = await run_maintenance(store, StoreConfig(retention_days=30))
        assert not report.switched_to_incremental
        assert report.messages_deleted == 200 and report.pages_freed > 0
        assert _header(home / "state.db", "page_count") < pages_full
        assert _header(home / "state.db", "freelist_count") == 0
        connection = sqlite3.connect(home / "state.db")
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        connection.close()
    finally:
        await store.close()


async def test_postgresql_maintenance_prunes_and_runs_vacuum_analyze(postgres_url: str) -> None:
    store = await open_store(postgres_url)
    try:
        old = await _session_with_history(store, "old", archived=True, age_days=100, messages=10)
        report = await run_maintenance(store, StoreConfig(retention_days=30))
        assert report.messages_deleted == 10 and report.pages_freed == 0
        assert await _transcript(store, old.id) == (0, 0)
        # VACUUM ANALYZE ran: the planner knows the (now empty) table was analysed
        stats = sa.table("pg_stat_user_tables", sa.column("relname"), sa.column("last_vacuum"),
                         sa.column("last_analyze"))
        row = await store.db.one(sa.select(stats.c.last_vacuum, stats.c.last_analyze)
                                 .where(stats.c.relname == "messages"))
        assert row is not None and row.last_vacuum is not None and row.last_analyze is not None
    finally:
        await store.close()


async def test_the_loop_runs_on_schedule_with_the_current_settings(home: Path) -> None:
    store = await _home_store(home)
    settings = {"store": StoreConfig(retention_days=0)}
    try:
        old = await _session_with_history(store, "old", archived=True, age_days=100)
        task = asyncio.create_task(maintenance_loop(store, lambda: settings["store"], interval=0.05, first_delay=0))
        await asyncio.sleep(0.15)
        assert await _transcript(store, old.id) == (3, 1)  # retention 0: kept
        settings["store"] = StoreConfig(retention_days=30)  # what a SIGHUP reload does
        for _ in range(100):
            if await _transcript(store, old.id) == (0, 0):
                break
            await asyncio.sleep(0.02)
        assert await _transcript(store, old.id) == (0, 0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
    finally:
        await store.close()
