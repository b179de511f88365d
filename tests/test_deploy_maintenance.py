"""Retention pruning removes old transcripts only; usage totals stay; space is given back."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from gateway.config import StoreConfig
from gateway.maintenance import maintenance_loop, prune_transcripts, reclaim_space, run_maintenance
from gateway.store import open_store

DAY = 86_400.0


async def _session_with_history(store, key: str, *, archived: bool, age_days: float, messages: int = 3):
    session = await store.active_session(key, platform="telegram", user_id=key)
    for i in range(messages):
        await store.add_message(session.id, {"role": "user", "content": f"{key} message {i} " + "x" * 2000})
    await store.record_tool_call(session.id, call_id="c1", name="read_file", arguments="{}", ok=True,
                                 result="y" * 2000, duration_ms=1.0)
    await store.record_usage(session.id, model="m", prompt_tokens=100, completion_tokens=10, cost=0.5)
    stamp = time.time() - age_days * DAY
    await store.execute("UPDATE sessions SET archived = ?, updated_at = ?, created_at = ? WHERE id = ?",
                        (int(archived), stamp, stamp, session.id))
    await store.execute("UPDATE messages SET created_at = ? WHERE session_id = ?", (stamp, session.id))
    await store.execute("UPDATE tool_calls SET created_at = ? WHERE session_id = ?", (stamp, session.id))
    return session


def _header(path: Path, pragma: str) -> int:
    """Read a PRAGMA on a fresh connection (a connection caches some header fields)."""
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute(f"PRAGMA {pragma}").fetchone()[0])
    finally:
        connection.close()


async def _count(store, table: str, session_id: str) -> int:
    return int((await store.fetchone(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", (session_id,)))[0])


async def test_prune_removes_old_transcripts_only(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    try:
        old_archived = await _session_with_history(store, "old-archived", archived=True, age_days=100)
        new_archived = await _session_with_history(store, "new-archived", archived=True, age_days=5)
        old_active = await _session_with_history(store, "old-active", archived=False, age_days=100)
        # a message of the active session that compression folded away long ago
        await store.execute("UPDATE messages SET active = 0 WHERE session_id = ? AND seq = 1", (old_active.id,))
        totals_before = await store.usage_since(0)

        report = await prune_transcripts(store, 30)

        assert await _count(store, "messages", old_archived.id) == 0
        assert await _count(store, "tool_calls", old_archived.id) == 0
        assert await store.get_session(old_archived.id) is not None  # the session row stays
        assert await _count(store, "messages", new_archived.id) == 3
        assert await _count(store, "tool_calls", new_archived.id) == 1
        # the conversation still in use loads exactly as before; only the folded-away message went
        assert [m["content"][:20] for m in await store.load_messages(old_active.id)] == [
            "old-active message 1", "old-active message 2"]
        assert await _count(store, "messages", old_active.id) == 2
        assert await _count(store, "tool_calls", old_active.id) == 0
        assert await store.usage_since(0) == totals_before
        assert (report.sessions_pruned, report.messages_deleted, report.tool_calls_deleted) == (1, 4, 2)

        assert (await prune_transcripts(store, 0)).messages_deleted == 0  # 0 keeps everything
        again = await prune_transcripts(store, 30)
        assert (again.sessions_pruned, again.messages_deleted, again.tool_calls_deleted) == (0, 0, 0)
    finally:
        await store.close()


async def test_reclaim_switches_to_incremental_vacuum_then_frees_pages(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    try:
        first = await reclaim_space(store)
        assert first.switched_to_incremental
        assert _header(tmp_path / "state.db", "auto_vacuum") == 2
        for i in range(20):
            await _session_with_history(store, f"s{i}", archived=True, age_days=100, messages=10)
        pages_full = int((await store.fetchone("PRAGMA page_count"))[0])
        report = await run_maintenance(store, StoreConfig(retention_days=30))
        assert not report.switched_to_incremental
        assert report.messages_deleted == 200 and report.pages_freed > 0
        assert _header(tmp_path / "state.db", "page_count") < pages_full
        assert _header(tmp_path / "state.db", "freelist_count") == 0
        assert (await store.fetchone("PRAGMA integrity_check"))[0] == "ok"
    finally:
        await store.close()


async def test_the_loop_runs_on_schedule_with_the_current_settings(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    settings = {"store": StoreConfig(retention_days=0)}
    try:
        old = await _session_with_history(store, "old", archived=True, age_days=100)
        task = asyncio.create_task(maintenance_loop(store, lambda: settings["store"], interval=0.05, first_delay=0))
        await asyncio.sleep(0.15)
        assert await _count(store, "messages", old.id) == 3  # retention 0: kept
        settings["store"] = StoreConfig(retention_days=30)  # what a SIGHUP reload does
        for _ in range(100):
            if await _count(store, "messages", old.id) == 0:
                break
            await asyncio.sleep(0.02)
        assert await _count(store, "messages", old.id) == 0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
    finally:
        await store.close()
