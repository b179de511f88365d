"""The durable side of the learning loop, as the loop sees it: the review queue, counters, notices.

The state lives in the store (`gateway/store/learning.py`, LearningStore); this module adds who
owns a running review (boot id, pid and start time of the process) and the orphan recovery:

- `claim` marks a queued review `running` with this process as owner, in one transaction that
  also weighs the team's daily budget; `requeue_orphans` puts back every `running` row whose owner
  process is gone (SIGKILL, power loss) or that this process left at shutdown. The row keeps a
  journal of the writes a run made (`record_write`), so a re-run never writes them twice.
- the counters and the once-a-day notice are the store's; see there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.redact import Redactor
from gateway.store import StateStore
from gateway.store.learning import Claim, Counters, Review

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")

__all__ = ["Claim", "Counters", "Review", "ReviewQueue", "owner_alive", "process_token"]


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


class ReviewQueue:
    """Reviews, counters and notices on the store, for one owner process."""

    def __init__(self, store: StateStore, redactor: Redactor | None = None, owner: str | None = None) -> None:
        # `redactor` is kept for callers; the store redacts what it writes (gateway/store/database.py)
        self.store = store
        self.redactor = redactor
        self.owner = owner or process_token()

    # -- reviews ----------------------------------------------------------------------------------
    async def enqueue(self, session_id: str, team: str, reason: str, messages: list[dict[str, Any]],
                      context: dict[str, Any]) -> int:
        return await self.store.review_enqueue(session_id, team, reason, messages, context)

    async def get(self, review_id: int) -> Review | None:
        return await self.store.review_get(review_id)

    async def claim(self, review_id: int) -> Review | None:
        """Mark a queued (or deferred) review as ours and running; None when someone else has it."""
        claim = await self.store.claim_review(review_id, self.owner)
        return claim.review if claim else None

    async def claim_within(self, review_id: int, budget: int, since: float) -> Claim | None:
        """`claim`, weighing the team's `budget` of tokens spent since `since` in the same transaction:
        over budget the review is left `deferred` (Claim.deferred)."""
        return await self.store.claim_review(review_id, self.owner, budget=budget, since=since)

    async def set_status(self, review_id: int, status: str, *, checkpoint_id: int | None = None) -> None:
        await self.store.review_set_status(review_id, status, checkpoint_id=checkpoint_id)

    async def merge(self, review_id: int) -> bool:
        """Fold a review that has not started into the next one of its session (status `merged`)."""
        return await self.store.review_merge(review_id)

    async def record_write(self, review_id: int, write: dict[str, Any]) -> None:
        await self.store.review_record_write(review_id, write)

    async def waiting(self, statuses: tuple[str, ...] = ("queued",)) -> list[Review]:
        return await self.store.reviews_waiting(statuses)

    async def requeue_orphans(self) -> list[int]:
        """Put `running` reviews whose process is gone (or is this one, restarted) back in the queue;
        returns the learning-log rows of the attempts that died, for the caller to close."""
        dead: list[int] = []
        for review_id, owner, checkpoint_id in await self.store.reviews_running():
            if owner != self.owner and owner_alive(owner):
                continue
            if await self.store.review_release(review_id) and checkpoint_id:
                dead.append(int(checkpoint_id))
        return dead

    async def release(self, review_id: int) -> None:
        """Give a running review back to the queue (shutdown): the next process runs it."""
        await self.store.review_release(review_id)

    async def undefer(self) -> int:
        return await self.store.reviews_undefer()

    async def counts(self) -> dict[str, int]:
        return await self.store.review_counts()

    # -- counters ---------------------------------------------------------------------------------
    async def counters(self, session_id: str) -> Counters:
        return await self.store.learning_counters(session_id)

    async def user_turn(self, session_id: str, team: str) -> Counters:
        return await self.store.counters_user_turn(session_id, team)

    async def tool_call(self, session_id: str, team: str) -> int:
        return await self.store.counters_tool_call(session_id, team)

    async def touch(self, session_id: str) -> None:
        await self.store.counters_touch(session_id)

    async def take_slice(self, session_id: str, *, from_turn: bool) -> tuple[list[dict[str, Any]], int]:
        return await self.store.counters_take_slice(session_id, from_turn=from_turn)

    async def set_task_review(self, session_id: str, review_id: int) -> None:
        await self.store.counters_set_task_review(session_id, review_id)

    async def idle_sessions(self, idle_seconds: float) -> list[str]:
        return await self.store.counters_idle_sessions(idle_seconds)

    # -- notices ----------------------------------------------------------------------------------
    async def first_notice_today(self, team: str, chat: str, day: str) -> bool:
        return await self.store.first_notice_today(team, chat, day)
