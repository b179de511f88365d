"""The learning log: one record per checkpoint, and skill proposals waiting for a user (ask mode).

Tables come from migrations `0003_learning.sql` and `0007_learning_reviews.sql` (review id,
refusals with their reasons). Every text stored here (decisions, diffs,
proposal arguments, errors) passes through the secrets `Redactor` first, so nothing a user
pasted into a chat reaches the log. `apply_proposal` writes an approved proposal to the team's
skill library, the same way the checkpoint would have in `on` mode.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.redact import Redactor
from gateway.store import SQLiteStore
from skills.history import unified_diff
from skills.library import SkillError, SkillLibrary
from skills.paths import PathEscapeError, safe_join

SKILL_WRITE_ACTIONS = ("create", "patch", "edit", "write_file", "remove_file")


def team_skills_root(home_root: Path, team: str) -> Path:
    """A team's library root (HERMES_HOME/teams/<team>/skills), or HERMES_HOME/skills with no team."""
    if not team:
        return home_root / "skills"
    return safe_join(home_root, "teams", team, "skills")


def day_start(now: float | None = None) -> float:
    """The start of the current UTC day (checkpoint budgets are per UTC day)."""
    t = time.time() if now is None else now
    return t - (t % 86_400)


@dataclass(frozen=True)
class Proposal:
    id: int
    checkpoint_id: int | None
    session_id: str
    team: str
    skill: str
    action: str
    arguments: dict[str, Any]
    summary: str
    status: str
    created_at: float
    decided_at: float | None
    decided_by: str
    result: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "checkpoint": self.checkpoint_id, "session": self.session_id, "team": self.team,
                "skill": self.skill, "action": self.action, "summary": self.summary, "status": self.status,
                "created": _iso(self.created_at), "decided": _iso(self.decided_at) if self.decided_at else "",
                "decided_by": self.decided_by, "result": self.result, "arguments": self.arguments}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class LearningLog:
    store: SQLiteStore
    redactor: Redactor = field(default_factory=Redactor.from_environ)

    def _clean(self, text: str) -> str:
        return self.redactor.redact(text or "")

    def _clean_json(self, value: Any) -> str:
        return self._clean(json.dumps(value, ensure_ascii=False, default=str))

    # -- checkpoints ------------------------------------------------------------------------------
    async def start(self, session_id: str, team: str, cause: str, model: str, review_id: int | None = None) -> int:
        return await self.store.execute(
            "INSERT INTO learning_checkpoints (session_id, team, cause, status, model, started_at, review_id)"
            " VALUES (?, ?, ?, 'running', ?, ?, ?)", (session_id, team, cause, model, time.time(), review_id))

    async def add_tokens(self, checkpoint_id: int, prompt_tokens: int, completion_tokens: int) -> None:
        """Count one model call of a running checkpoint at once (a review that dies keeps its cost)."""
        await self.store.execute(
            "UPDATE learning_checkpoints SET prompt_tokens = prompt_tokens + ?,"
            " completion_tokens = completion_tokens + ? WHERE id = ?",
            (prompt_tokens, completion_tokens, checkpoint_id))

    async def finish(self, checkpoint_id: int, *, status: str, decisions: str = "",
                     skills: list[dict[str, Any]] | None = None, memory: list[dict[str, Any]] | None = None,
                     prompt_tokens: int | None = None, completion_tokens: int | None = None, error: str = "",
                     refusals: list[dict[str, Any]] | None = None) -> None:
        """Close a checkpoint row. Tokens counted with `add_tokens` are kept unless given here."""
        await self.store.execute(
            "UPDATE learning_checkpoints SET status = ?, finished_at = ?, decisions = ?, skills = ?, memory = ?,"
            " prompt_tokens = COALESCE(?, prompt_tokens), completion_tokens = COALESCE(?, completion_tokens),"
            " error = ?, refusals = ? WHERE id = ?",
            (status, time.time(), self._clean(decisions), self._clean_json(skills or []),
             self._clean_json(memory or []), prompt_tokens, completion_tokens, self._clean(error),
             self._clean_json(refusals or []), checkpoint_id))

    async def record(self, session_id: str, team: str, cause: str, model: str, *, status: str,
                     error: str = "", review_id: int | None = None,
                     refusals: list[dict[str, Any]] | None = None) -> int:
        """A checkpoint that did not run (deferred by the budget, skipped): one row, finished at once."""
        checkpoint_id = await self.start(session_id, team, cause, model, review_id)
        await self.finish(checkpoint_id, status=status, error=error, refusals=refusals)
        return checkpoint_id

    async def tokens_since(self, since: float, team: str | None = None) -> int:
        """Checkpoint tokens spent since `since` (by one team when `team` is given; '' is the default library)."""
        sql = ("SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM learning_checkpoints"
               " WHERE started_at >= ?")
        params: list[Any] = [since]
        if team is not None:
            sql += " AND team = ?"
            params.append(team)
        row = await self.store.fetchone(sql, params)
        return int(row[0]) if row else 0

    async def entries(self, limit: int = 20, session_id: str | None = None,
                      team: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM learning_checkpoints"
        clauses: list[str] = []
        params: list[Any] = []
        if session_id:
            clauses.append("session_id = ?")
            params.append(session_id)
        if team is not None:
            clauses.append("team = ?")
            params.append(team)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = await self.store.fetchall(sql, params)
        return [{
            "id": r["id"], "session": r["session_id"], "team": r["team"], "cause": r["cause"],
            "status": r["status"], "model": r["model"], "started": _iso(r["started_at"]),
            "duration_s": round((r["finished_at"] or r["started_at"]) - r["started_at"], 3),
            "decisions": r["decisions"], "skills": json.loads(r["skills"] or "[]"),
            "memory": json.loads(r["memory"] or "[]"), "prompt_tokens": r["prompt_tokens"],
            "completion_tokens": r["completion_tokens"], "error": r["error"],
            "refusals": json.loads(r["refusals"] or "[]"), "review": r["review_id"],
        } for r in rows]

    async def usage_by_purpose(self, since: float = 0.0) -> dict[str, dict[str, int]]:
        """Tokens of every model call since `since`, split by purpose (chat, checkpoint, compress, ...)."""
        rows = await self.store.fetchall(
            "SELECT purpose, COALESCE(SUM(prompt_tokens), 0) AS p, COALESCE(SUM(completion_tokens), 0) AS c,"
            " COUNT(*) AS n FROM usage WHERE created_at >= ? GROUP BY purpose ORDER BY purpose", (since,))
        return {r["purpose"]: {"prompt_tokens": int(r["p"]), "completion_tokens": int(r["c"]), "calls": int(r["n"])}
                for r in rows}

    # -- proposals (ask mode) ---------------------------------------------------------------------
    async def propose(self, *, checkpoint_id: int | None, session_id: str, team: str, skill: str, action: str,
                      arguments: dict[str, Any], summary: str) -> int:
        return await self.store.execute(
            "INSERT INTO learning_proposals (checkpoint_id, session_id, team, skill, action, arguments, summary,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (checkpoint_id, session_id, team, skill, action, self._clean_json(arguments), self._clean(summary),
             time.time()))

    @staticmethod
    def _proposal(row: Any) -> Proposal:
        return Proposal(row["id"], row["checkpoint_id"], row["session_id"], row["team"], row["skill"],
                        row["action"], json.loads(row["arguments"]), row["summary"], row["status"],
                        row["created_at"], row["decided_at"], row["decided_by"], row["result"])

    async def proposal(self, proposal_id: int) -> Proposal | None:
        row = await self.store.fetchone("SELECT * FROM learning_proposals WHERE id = ?", (proposal_id,))
        return self._proposal(row) if row else None

    async def proposals(self, status: str | None = "pending", limit: int = 50) -> list[Proposal]:
        sql = "SELECT * FROM learning_proposals"
        params: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return [self._proposal(r) for r in await self.store.fetchall(sql, params)]

    async def decide(self, proposal_id: int, status: str, by: str, result: str) -> None:
        await self.store.execute(
            "UPDATE learning_proposals SET status = ?, decided_at = ?, decided_by = ?, result = ? WHERE id = ?",
            (status, time.time(), by, self._clean(result), proposal_id))


class ProposalError(Exception):
    """A proposal that cannot be approved or rejected (unknown id, already decided, invalid now)."""


@dataclass(frozen=True)
class AppliedProposal:
    proposal: Proposal
    message: str
    diff: str


LibraryFor = Callable[[str], SkillLibrary]


async def apply_proposal(log: LearningLog, library_for: LibraryFor, proposal_id: int, by: str) -> AppliedProposal:
    """Write an approved proposal to its team's library and mark it approved (or failed)."""
    proposal = await log.proposal(proposal_id)
    if proposal is None:
        raise ProposalError(f"there is no proposal #{proposal_id}; `hermes learning pending` lists them")
    if proposal.status != "pending":
        raise ProposalError(f"proposal #{proposal_id} is already {proposal.status}")
    library = library_for(proposal.team)
    args = proposal.arguments
    origin = f"checkpoint:{proposal.checkpoint_id or '?'} approved by {by}"
    name = proposal.skill
    try:
        before = await _skill_text(library, name)
        if proposal.action == "create":
            await library.create(name, str(args.get("content") or ""), str(args.get("category") or "general"), origin)
            message = f"created skill {name!r}"
        elif proposal.action == "patch":
            await library.patch(name, str(args.get("old_text") or ""), str(args.get("new_text") or ""), origin)
            message = f"patched skill {name!r}"
        elif proposal.action == "edit":
            await library.edit(name, str(args.get("content") or ""), origin)
            message = f"rewrote skill {name!r}"
        elif proposal.action == "write_file":
            message = await library.write_file(name, str(args.get("file_path") or ""),
                                               str(args.get("file_content") or ""), origin)
        elif proposal.action == "remove_file":
            message = await library.remove_file(name, str(args.get("file_path") or ""), origin)
        else:
            raise ProposalError(f"proposal #{proposal_id} has an unknown action {proposal.action!r}")
    except (SkillError, PathEscapeError) as exc:
        await log.decide(proposal_id, "failed", by, str(exc))
        raise ProposalError(f"proposal #{proposal_id} could not be written: {exc}") from exc
    after = await _skill_text(library, name)
    await log.decide(proposal_id, "approved", by, message)
    return AppliedProposal(proposal, message, unified_diff(before, after, f"{name}/SKILL.md"))


async def reject_proposal(log: LearningLog, proposal_id: int, by: str) -> Proposal:
    proposal = await log.proposal(proposal_id)
    if proposal is None:
        raise ProposalError(f"there is no proposal #{proposal_id}; `hermes learning pending` lists them")
    if proposal.status != "pending":
        raise ProposalError(f"proposal #{proposal_id} is already {proposal.status}")
    await log.decide(proposal_id, "rejected", by, "rejected")
    return proposal


async def _skill_text(library: SkillLibrary, name: str) -> str | None:
    try:
        return await library.read(name)
    except SkillError:
        return None
