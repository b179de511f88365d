"""The durable side of the learning loop: the review queue, the per-session counters, budget notices.

Tables come from migration `0007_learning_reviews.sql`; everything goes through the store's
`execute`/`fetchall`, so another backend only has to run the same statements.

- A due review is a `learning_reviews` row (the slice it sees, why, which team) before it starts.
  `claim` marks it `running` with this process as owner; `requeue_orphans` puts back every
  `running` row whose owner process is gone (SIGKILL, power loss) or that this process left at
  shutdown, so it runs again after a restart. The row keeps a journal of the writes a run made
  (`record_write`), so a re-run is told what is already done and never writes it twice.
- `learning_counters` holds, per session, the tool calls and user turns not reviewed yet and the
  last message seq a review covered: they survive a restart.
- `learning_notices` remembers the one "learning paused" notice a day per team chat.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.redact import Redactor
from gateway.store import StateStore

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str:
    try:
        return BOOT_ID_FILE.read_text(encoding="ascii").strip()
    except OSError:
        return "no-boot-id"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), '' if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def process_token(pid: int | None = None) -> str:
    """Who runs a review: boot id, pid and start time, so a reused pid is not mistaken for the owner."""
    pid = os.getpid() if pid is None else pid
    return f"{_boot_id()}/{pid}/{_start_time(pid)}"


def owner_alive(token: str) -> bool:
    """Whether the process named by `token` still runs (same boot, same pid, same start time)."""
    boot, _, rest = token.partition("/")
    pid_text, _, started = rest.partition("/")
    if boot != _boot_id() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if started:
        return _start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Review:
    id: int
    session_id: str
    team: str
    reason: str
    messages: list[dict[str, Any]]
    context: dict[str, Any]
    status: str
    attempts: int
    writes: list[dict[str, Any]]
    checkpoint_id: int | None
    created_at: float


@dataclass
class Counters:
    session_id: str
    team: str = ""
    tool_calls: int = 0
    user_turns: int = 0
    reviewed_seq: int = 0
    turn_seq: int = 0
    task_review: int = 0
    last_activity: float = 0.0


def _redacted(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, list):
        return [_redacted(v, redactor) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v, redactor) for k, v in value.items()}
    return value


def _review(row: Any) -> Review:
    return Review(row["id"], row["session_id"], row["team"], row["reason"], json.loads(row["slice"]),
                  json.loads(row["context"] or "{}"), row["status"], row["attempts"],
                  json.loads(row["writes"] or "[]"), row["checkpoint_id"], row["created_at"])


class ReviewQueue:
    """Reviews, counters and notices on the store."""

    def __init__(self, store: StateStore, redactor: Redactor | None = None, owner: str | None = None) -> None:
        self.store = store
        self.redactor = redactor or Redactor.from_environ()
        self.owner = owner or process_token()

    def _json(self, value: Any) -> str:
        """JSON of `value` with every string redacted (a slice holds what users pasted)."""
        return json.dumps(_redacted(value, self.redactor), ensure_ascii=False, default=str)

    # -- reviews ----------------------------------------------------------------------------------
    async def enqueue(self, session_id: str, team: str, reason: str, messages: list[dict[str, Any]],
                      context: dict[str, Any]) -> int:
        now = time.time()
        return await self.store.execute(
            "INSERT INTO learning_reviews (session_id, team, reason, slice, context, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, team, reason, self._json(messages), self._json(context), now, now))

    async def get(self, review_id: int) -> Review | None:
        row = await self.store.fetchone("SELECT * FROM learning_reviews WHERE id = ?", (review_id,))
        return _review(row) if row else None

    async def claim(self, review_id: int) -> Review | None:
        """Mark a queued (or deferred) review as ours and running; None when someone else has it."""
        count = await self.store.execute_rowcount(
            "UPDATE learning_reviews SET status = 'running', owner = ?, attempts = attempts + 1, updated_at = ?"
            " WHERE id = ? AND status IN ('queued', 'deferred')", (self.owner, time.time(), review_id))
        return await self.get(review_id) if count == 1 else None

    async def set_status(self, review_id: int, status: str, *, checkpoint_id: int | None = None) -> None:
        if checkpoint_id is None:
            await self.store.execute("UPDATE learning_reviews SET status = ?, updated_at = ? WHERE id = ?",
                                     (status, time.time(), review_id))
        else:
            await self.store.execute(
                "UPDATE learning_reviews SET status = ?, checkpoint_id = ?, updated_at = ? WHERE id = ?",
                (status, checkpoint_id, time.time(), review_id))

    async def merge(self, review_id: int) -> bool:
        """Fold a review that has not started into the next one of its session (status `merged`): its
        messages count as unreviewed again. False when it has started already."""
        merged = await self.store.execute_rowcount(
            "UPDATE learning_reviews SET status = 'merged', updated_at = ? WHERE id = ? AND status = 'queued'",
            (time.time(), review_id)) == 1
        if merged:
            await self.store.execute(
                "UPDATE learning_counters SET reviewed_seq = MIN(reviewed_seq, (SELECT COALESCE("
                "json_extract(context, '$.start_seq'), 0) FROM learning_reviews WHERE id = ?))"
                " WHERE session_id = (SELECT session_id FROM learning_reviews WHERE id = ?)", (review_id, review_id))
        return merged

    async def record_write(self, review_id: int, write: dict[str, Any]) -> None:
        """Append one done write to the review's journal (committed before the review goes on)."""
        await self.store.execute(
            "UPDATE learning_reviews SET writes = json_insert(writes, '$[#]', json(?)), updated_at = ? WHERE id = ?",
            (self._json(write), time.time(), review_id))

    async def waiting(self, statuses: tuple[str, ...] = ("queued",)) -> list[Review]:
        """Reviews in these states, oldest first."""
        marks = ", ".join("?" for _ in statuses)
        rows = await self.store.fetchall(
            f"SELECT * FROM learning_reviews WHERE status IN ({marks}) ORDER BY id", statuses)
        return [_review(r) for r in rows]

    async def requeue_orphans(self) -> list[int]:
        """Put `running` reviews whose process is gone (or is this one, restarted) back in the queue;
        returns the learning-log rows of the attempts that died, for the caller to close."""
        rows = await self.store.fetchall(
            "SELECT id, owner, checkpoint_id FROM learning_reviews WHERE status = 'running'")
        dead: list[int] = []
        for row in rows:
            if row["owner"] != self.owner and owner_alive(row["owner"]):
                continue
            if await self.store.execute_rowcount(
                    "UPDATE learning_reviews SET status = 'queued', owner = '', updated_at = ?"
                    " WHERE id = ? AND status = 'running'", (time.time(), row["id"])) and row["checkpoint_id"]:
                dead.append(int(row["checkpoint_id"]))
        return dead

    async def release(self, review_id: int) -> None:
        """Give a running review back to the queue (shutdown): the next process runs it."""
        await self.store.execute(
            "UPDATE learning_reviews SET status = 'queued', owner = '', updated_at = ?"
            " WHERE id = ? AND status = 'running'", (time.time(), review_id))

    async def undefer(self) -> int:
        return await self.store.execute_rowcount(
            "UPDATE learning_reviews SET status = 'queued', updated_at = ? WHERE status = 'deferred'",
            (time.time(),))

    async def counts(self) -> dict[str, int]:
        rows = await self.store.fetchall("SELECT status, COUNT(*) AS n FROM learning_reviews GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}

    # -- counters ---------------------------------------------------------------------------------
    async def counters(self, session_id: str) -> Counters:
        row = await self.store.fetchone("SELECT * FROM learning_counters WHERE session_id = ?", (session_id,))
        if row is None:
            return Counters(session_id)
        return Counters(row["session_id"], row["team"], row["tool_calls"], row["user_turns"], row["reviewed_seq"],
                        row["turn_seq"], row["task_review"], row["last_activity"])

    async def user_turn(self, session_id: str, team: str) -> Counters:
        """A user message arrived: one more unreviewed turn; remember where the turn starts."""
        now = time.time()
        await self.store.execute(
            "INSERT INTO learning_counters (session_id, team, user_turns, turn_seq, task_review, last_activity)"
            " VALUES (?, ?, 1, (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?), 0, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET user_turns = user_turns + 1, team = excluded.team,"
            " turn_seq = excluded.turn_seq, task_review = 0, last_activity = excluded.last_activity",
            (session_id, team, session_id, now))
        return await self.counters(session_id)

    async def tool_call(self, session_id: str, team: str) -> int:
        """One more unreviewed tool call; returns how many there are now."""
        rows = await self.store.fetchall(
            "INSERT INTO learning_counters (session_id, team, tool_calls, last_activity) VALUES (?, ?, 1, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET tool_calls = tool_calls + 1, last_activity = excluded.last_activity"
            " RETURNING tool_calls", (session_id, team, time.time()))
        return int(rows[0][0]) if rows else 0

    async def touch(self, session_id: str) -> None:
        await self.store.execute("UPDATE learning_counters SET last_activity = ? WHERE session_id = ?",
                                 (time.time(), session_id))

    async def take_slice(self, session_id: str, *, from_turn: bool) -> tuple[list[dict[str, Any]], int]:
        """The messages not reviewed yet (from the current turn's request on, when `from_turn`), and
        mark them reviewed: counters reset. Returns the slice and the seq it starts after."""
        counters = await self.counters(session_id)
        start = counters.reviewed_seq
        if from_turn and counters.turn_seq:
            start = min(start, counters.turn_seq - 1)
        rows = await self.store.fetchall(
            "SELECT seq, data FROM messages WHERE session_id = ? AND active = 1 AND seq > ? ORDER BY seq, id",
            (session_id, start))
        if rows:
            last = max(int(r["seq"]) for r in rows)
            await self.store.execute(
                "UPDATE learning_counters SET reviewed_seq = MAX(reviewed_seq, ?), tool_calls = 0, user_turns = 0"
                " WHERE session_id = ?", (last, session_id))
        return [json.loads(r["data"]) for r in rows], start

    async def set_task_review(self, session_id: str, review_id: int) -> None:
        await self.store.execute("UPDATE learning_counters SET task_review = ? WHERE session_id = ?",
                                 (review_id, session_id))

    async def idle_sessions(self, idle_seconds: float) -> list[str]:
        rows = await self.store.fetchall(
            "SELECT session_id FROM learning_counters WHERE user_turns > 0 AND last_activity > 0"
            " AND last_activity <= ? ORDER BY last_activity", (time.time() - idle_seconds,))
        return [r["session_id"] for r in rows]

    # -- notices ----------------------------------------------------------------------------------
    async def first_notice_today(self, team: str, chat: str, day: str) -> bool:
        """True exactly once per (team, UTC day, chat): whoever gets True posts the notice."""
        count = await self.store.execute_rowcount(
            "INSERT OR IGNORE INTO learning_notices (team, day, chat, sent_at) VALUES (?, ?, ?, ?)",
            (team, day, chat, time.time()))
        return count == 1
