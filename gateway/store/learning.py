"""The learning loop's state: the review queue, per-session counters, budget notices, checkpoint tokens.

- A due review is a `learning_reviews` row before it starts. `claim_review` takes it in one
  transaction (`db.claimable`: FOR UPDATE SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite),
  so two processes never run one review; the same transaction weighs the team's daily token
  budget (serialised per team by a transaction-scoped advisory lock on PostgreSQL), so a review
  over budget is deferred whichever process looks at it.
- `learning_checkpoints` is the learning log: one row per checkpoint with its tokens (the budget
  sums them) and decisions; `usage_by_purpose` splits every model call's tokens by purpose.
- `learning_counters` holds, per session, the unreviewed tool calls and user turns and the last
  message seq a review covered; `learning_notices` the one "learning paused" notice a day per chat.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import (
    learning_checkpoints,
    learning_counters,
    learning_notices,
    learning_reviews,
    messages,
    sessions,
    usage,
)
from gateway.store.sessions import last_seq

CLAIMABLE = ("queued", "deferred")


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


@dataclass
class Claim:
    """What `claim_review` decided: `review` is ours and running, or `deferred` by the budget."""
    review: Review
    spent: int = 0
    deferred: bool = False


def _review(row: Any) -> Review:
    m = row._mapping
    return Review(m["id"], m["session_id"], m["team"], m["reason"], json.loads(m["slice"]),
                  json.loads(m["context"] or "{}"), m["status"], m["attempts"],
                  json.loads(m["writes"] or "[]"), m["checkpoint_id"], m["created_at"])


def _counters(row: Any) -> Counters:
    return Counters(row.session_id, row.team, row.tool_calls, row.user_turns, row.reviewed_seq,
                    row.turn_seq, row.task_review, row.last_activity)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


R = learning_reviews.c
C = learning_counters.c
K = learning_checkpoints.c


class LearningStore:
    """Mixin of the store: tables learning_reviews, learning_checkpoints, learning_counters and
    learning_notices (and the usage split by purpose)."""

    db: Database

    # -- reviews ----------------------------------------------------------------------------------
    async def review_enqueue(self, session_id: str, team: str, reason: str, slice_: list[dict[str, Any]],
                             context: dict[str, Any]) -> int:
        now = time.time()
        rows = await self.db.write_returning(learning_reviews.insert().values(
            session_id=session_id, team=team, reason=reason, slice=_dumps(slice_), context=_dumps(context),
            created_at=now, updated_at=now).returning(R.id))
        return int(rows[0][0])

    async def review_get(self, review_id: int) -> Review | None:
        row = await self.db.one(sa.select(learning_reviews).where(R.id == review_id))
        return _review(row) if row is not None else None

    async def _team_budget_lock(self, team: str) -> None:
        """Serialise budget decisions of one team until the transaction ends (PostgreSQL; SQLite's
        BEGIN IMMEDIATE already serialises every writer)."""
        if self.db.is_postgresql:
            key = zlib.crc32(f"hermes-learning-budget:{team}".encode()) - 2**31
            await self.db.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))

    async def claim_review(self, review_id: int, owner: str, *, budget: int = 0,
                           since: float = 0.0) -> Claim | None:
        """Take a queued (or deferred) review for `owner` and mark it running, in one transaction;
        None when another process has it (or it is finished). With a `budget`, a team that spent
        it since `since` gets the review marked `deferred` instead (Claim.deferred)."""
        async with self.db.transaction():
            row = await self.db.one(self.db.claimable(
                sa.select(learning_reviews).where(R.id == review_id, R.status.in_(CLAIMABLE))))
            if row is None:
                return None
            team = row._mapping["team"]
            spent = 0
            if budget:
                await self._team_budget_lock(team)
                spent = await self.checkpoint_tokens_since(since, team)
                if spent >= budget:
                    await self.db.execute(learning_reviews.update().where(R.id == review_id)
                                          .values(status="deferred", updated_at=time.time()))
                    review = await self.review_get(review_id)
                    assert review is not None
                    return Claim(review, spent, deferred=True)
            await self.db.execute(learning_reviews.update().where(R.id == review_id).values(
                status="running", owner=owner, attempts=R.attempts + 1, updated_at=time.time()))
            review = await self.review_get(review_id)
            assert review is not None
            return Claim(review, spent)

    async def review_set_status(self, review_id: int, status: str, *, checkpoint_id: int | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": time.time()}
        if checkpoint_id is not None:
            values["checkpoint_id"] = checkpoint_id
        await self.db.execute(learning_reviews.update().where(R.id == review_id).values(**values))

    async def review_merge(self, review_id: int) -> bool:
        """Fold a review that has not started into the next one of its session (status `merged`): its
        messages count as unreviewed again. False when it has started already."""
        async with self.db.transaction():
            row = await self.db.one(self.db.claimable(
                sa.select(R.session_id, R.context).where(R.id == review_id, R.status == "queued")))
            if row is None:
                return False
            await self.db.execute(learning_reviews.update().where(R.id == review_id)
                                  .values(status="merged", updated_at=time.time()))
            start = int(json.loads(row.context or "{}").get("start_seq") or 0)
            await self.db.execute(learning_counters.update().where(C.session_id == row.session_id)
                                  .values(reviewed_seq=sa.case((C.reviewed_seq > start, start),
                                                               else_=C.reviewed_seq)))
            return True

    async def review_record_write(self, review_id: int, write: dict[str, Any]) -> None:
        """Append one done write to the review's journal (committed before the review goes on)."""
        async with self.db.transaction():
            current = await self.db.scalar(self.db.claimable(sa.select(R.writes).where(R.id == review_id)))
            if current is None:
                return
            journal = json.loads(current or "[]")
            journal.append(write)
            await self.db.execute(learning_reviews.update().where(R.id == review_id)
                                  .values(writes=_dumps(journal), updated_at=time.time()))

    async def reviews_waiting(self, statuses: tuple[str, ...] = ("queued",)) -> list[Review]:
        """Reviews in these states, oldest first."""
        rows = await self.db.rows(sa.select(learning_reviews).where(R.status.in_(statuses)).order_by(R.id))
        return [_review(r) for r in rows]

    async def reviews_all(self, *, team: str | None = None, session_id: str | None = None) -> list[Review]:
        """Every review (of one team, of one session when given), oldest first."""
        query = sa.select(learning_reviews).order_by(R.id)
        if team is not None:
            query = query.where(R.team == team)
        if session_id is not None:
            query = query.where(R.session_id == session_id)
        return [_review(r) for r in await self.db.rows(query)]

    async def reviews_running(self) -> list[tuple[int, str, int | None]]:
        """(id, owner, checkpoint id) of every running review."""
        rows = await self.db.rows(sa.select(R.id, R.owner, R.checkpoint_id).where(R.status == "running"))
        return [(int(r.id), r.owner, r.checkpoint_id) for r in rows]

    async def review_release(self, review_id: int) -> bool:
        """Give a running review back to the queue; False when it was not running."""
        result = await self.db.execute(learning_reviews.update().where(R.id == review_id, R.status == "running")
                                       .values(status="queued", owner="", updated_at=time.time()))
        return result.rowcount == 1

    async def reviews_undefer(self) -> int:
        result = await self.db.execute(learning_reviews.update().where(R.status == "deferred")
                                       .values(status="queued", updated_at=time.time()))
        return result.rowcount

    async def review_counts(self) -> dict[str, int]:
        rows = await self.db.rows(sa.select(R.status, sa.func.count()).group_by(R.status))
        return {r[0]: int(r[1]) for r in rows}

    # -- checkpoints (the learning log) ----------------------------------------------------------
    async def checkpoint_start(self, session_id: str, team: str, cause: str, model: str,
                               review_id: int | None = None) -> int:
        rows = await self.db.write_returning(learning_checkpoints.insert().values(
            session_id=session_id, team=team, cause=cause, status="running", model=model,
            started_at=time.time(), review_id=review_id).returning(K.id))
        return int(rows[0][0])

    async def checkpoint_add_tokens(self, checkpoint_id: int, prompt_tokens: int, completion_tokens: int) -> None:
        await self.db.execute(learning_checkpoints.update().where(K.id == checkpoint_id).values(
            prompt_tokens=K.prompt_tokens + prompt_tokens, completion_tokens=K.completion_tokens + completion_tokens))

    async def checkpoint_finish(self, checkpoint_id: int, *, status: str, decisions: str, skills: str, memory: str,
                                error: str, refusals: str, prompt_tokens: int | None = None,
                                completion_tokens: int | None = None) -> None:
        """Close a checkpoint row (the JSON columns as text); tokens are kept unless given."""
        values: dict[str, Any] = {"status": status, "finished_at": time.time(), "decisions": decisions,
                                  "skills": skills, "memory": memory, "error": error, "refusals": refusals}
        if prompt_tokens is not None:
            values["prompt_tokens"] = prompt_tokens
        if completion_tokens is not None:
            values["completion_tokens"] = completion_tokens
        await self.db.execute(learning_checkpoints.update().where(K.id == checkpoint_id).values(**values))

    async def checkpoint_tokens_since(self, since: float, team: str | None = None) -> int:
        """Checkpoint tokens spent since `since` (by one team when `team` is given; '' is the default library)."""
        query = sa.select(sa.func.coalesce(sa.func.sum(K.prompt_tokens + K.completion_tokens), 0)) \
            .where(K.started_at >= since)
        if team is not None:
            query = query.where(K.team == team)
        return int(await self.db.scalar(query) or 0)


    async def checkpoint_rows(self, limit: int = 20, *, session_id: str | None = None, team: str | None = None,
                              api_user: str | None = None) -> list[Any]:
        """The newest checkpoint rows (mappings); `api_user` keeps those of that API user's sessions."""
        query = sa.select(learning_checkpoints)
        if session_id:
            query = query.where(K.session_id == session_id)
        if team is not None:
            query = query.where(K.team == team)
        if api_user is not None:
            query = query.where(K.session_id.in_(sa.select(sessions.c.id).where(
                sessions.c.platform == "api", sessions.c.user_id == api_user)))
        rows = await self.db.rows(query.order_by(K.id.desc()).limit(limit))
        return [r._mapping for r in rows]

    async def usage_by_purpose(self, since: float = 0.0) -> dict[str, dict[str, int]]:
        """Tokens of every model call since `since`, split by purpose (chat, checkpoint, compress, ...)."""
        U = usage.c
        rows = await self.db.rows(sa.select(
            U.purpose, sa.func.coalesce(sa.func.sum(U.prompt_tokens), 0),
            sa.func.coalesce(sa.func.sum(U.completion_tokens), 0), sa.func.count())
            .where(U.created_at >= since).group_by(U.purpose).order_by(U.purpose))
        return {r[0]: {"prompt_tokens": int(r[1]), "completion_tokens": int(r[2]), "calls": int(r[3])} for r in rows}

    # -- counters ---------------------------------------------------------------------------------
    async def learning_counters(self, session_id: str) -> Counters:
        row = await self.db.one(sa.select(learning_counters).where(C.session_id == session_id))
        return Counters(session_id) if row is None else _counters(row)

    async def counters_user_turn(self, session_id: str, team: str) -> Counters:
        """A user message arrived: one more unreviewed turn; remember where the turn starts (the
        session's last seq, read by the same statement that counts the turn, which returns the row)."""
        rows = await self.db.write_returning(self.db.prepared("counters_user_turn", self._user_turn_statement),
                                             {"p_session": session_id, "p_team": team, "p_now": time.time()})
        return _counters(rows[0])

    def _user_turn_statement(self) -> Any:
        session_id = sa.bindparam("p_session")
        statement = self.db._insert(learning_counters).values(
            session_id=session_id, team=sa.bindparam("p_team"), user_turns=1, turn_seq=last_seq(session_id),
            task_review=0,
            last_activity=sa.bindparam("p_now"))
        return statement.on_conflict_do_update(index_elements=["session_id"], set_={
            "user_turns": C.user_turns + 1, "team": statement.excluded.team,
            "turn_seq": statement.excluded.turn_seq, "task_review": 0,
            "last_activity": statement.excluded.last_activity}).returning(*learning_counters.c)

    async def counters_tool_call(self, session_id: str, team: str) -> int:
        """One more unreviewed tool call; returns how many there are now."""
        statement = self.db._insert(learning_counters).values(
            session_id=session_id, team=team, tool_calls=1, last_activity=time.time())
        rows = await self.db.write_returning(statement.on_conflict_do_update(
            index_elements=["session_id"],
            set_={"tool_calls": C.tool_calls + 1, "last_activity": statement.excluded.last_activity})
            .returning(C.tool_calls))
        return int(rows[0][0]) if rows else 0

    async def counters_touch(self, session_id: str) -> None:
        await self.db.execute(learning_counters.update().where(C.session_id == session_id)
                              .values(last_activity=time.time()))

    async def counters_take_slice(self, session_id: str, *, from_turn: bool) -> tuple[list[dict[str, Any]], int]:
        """The messages not reviewed yet (from the current turn's request on, when `from_turn`), and
        mark them reviewed: counters reset. Returns the slice and the seq it starts after."""
        async with self.db.transaction():
            counters = await self.learning_counters(session_id)
            start = counters.reviewed_seq
            if from_turn and counters.turn_seq:
                start = min(start, counters.turn_seq - 1)
            M = messages.c
            rows = await self.db.rows(sa.select(M.seq, M.data).where(
                M.session_id == session_id, M.active == 1, M.seq > start).order_by(M.seq, M.id))
            if rows:
                last = max(int(r.seq) for r in rows)
                await self.db.execute(learning_counters.update().where(C.session_id == session_id).values(
                    reviewed_seq=sa.case((C.reviewed_seq < last, last), else_=C.reviewed_seq),
                    tool_calls=0, user_turns=0))
        return [json.loads(r.data) for r in rows], start

    async def counters_set_task_review(self, session_id: str, review_id: int) -> None:
        await self.db.execute(learning_counters.update().where(C.session_id == session_id)
                              .values(task_review=review_id))

    async def counters_idle_sessions(self, idle_seconds: float) -> list[str]:
        rows = await self.db.rows(sa.select(C.session_id).where(
            C.user_turns > 0, C.last_activity > 0, C.last_activity <= time.time() - idle_seconds)
            .order_by(C.last_activity))
        return [r.session_id for r in rows]

    # -- notices ----------------------------------------------------------------------------------
    async def first_notice_today(self, team: str, chat: str, day: str) -> bool:
        """True exactly once per (team, UTC day, chat): whoever gets True posts the notice."""
        result = await self.db.execute(self.db.insert_ignore(learning_notices).values(
            team=team, day=day, chat=chat, sent_at=time.time()))
        return result.rowcount == 1
