"""Proposals: changes a review wants to make that wait for a person (ask mode, protected skills).

A proposal belongs to its team and remembers where it came from (platform, chat, user). Rows
live in `learning_proposals` (the store's ProposalsStore, gateway/store/proposals.py); every text passes the secrets
`Redactor` first. The rules, enforced here and not by the callers:

- who decides: the CLI, the dashboard, or, from a chat, an admin of the platform the proposal
  was made on (`[<platform>] admins`) in a chat of the proposal's team (`Decider.may_decide`);
- the same change (same team, kind, skill, action and arguments: `content_hash`) is not
  proposed twice while one is pending, nor again after it was rejected (`same_change`);
- approving re-runs the skills guard and the duplicate check on the final text; a change that
  fails them is marked `refused` with the reason (never shown as pending) and nothing is written;
- a rejection keeps its reason; `remembered` lists a team's rejected and pending proposals so
  later reviews do not propose them again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from skills.library import SkillError, SkillLibrary, WritePolicy

SKILL_WRITE_ACTIONS = ("create", "patch", "edit", "write_file", "remove_file")
Via = Literal["chat", "cli", "dashboard"]


class ProposalError(Exception):
    """A proposal that cannot be approved or rejected (unknown id, already decided, not yours, invalid now)."""


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
    platform: str = ""
    chat_id: str = ""
    user_id: str = ""
    origin: str = "checkpoint"
    kind: str = "skill"
    content_hash: str = ""
    reason: str = ""
    announce: str = ""

    @property
    def title(self) -> str:
        """One line naming the change, as reviews and `/approve` show it."""
        what = f"{self.action} {self.skill}" if self.kind == "skill" else f"memory {self.action} ({self.skill})"
        return f"{what}: {self.summary}" if self.summary else what

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "checkpoint": self.checkpoint_id, "session": self.session_id, "team": self.team,
                "skill": self.skill, "action": self.action, "summary": self.summary, "status": self.status,
                "created": iso(self.created_at), "decided": iso(self.decided_at) if self.decided_at else "",
                "decided_by": self.decided_by, "result": self.result, "arguments": self.arguments,
                "platform": self.platform, "chat": self.chat_id, "user": self.user_id, "origin": self.origin,
                "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class AppliedProposal:
    proposal: Proposal
    message: str
    diff: str


@dataclass(frozen=True)
class Decider:
    """Who approves or rejects: the CLI, the dashboard, or a chat user (admin or not, of which team)."""

    via: Via
    name: str = ""
    platform: str = ""
    user_id: str = ""
    team: str = ""
    admin: bool = False

    @property
    def label(self) -> str:
        if self.via == "chat":
            return f"{self.platform}:{self.user_id}"
        return self.name or self.via

    def may_decide(self, proposal: Proposal) -> str | None:
        """None when allowed, else why not (said to the person asking)."""
        if self.via != "chat":
            return None
        if proposal.team != self.team:
            return f"proposal #{proposal.id} belongs to another team; decide it from that team's chat"
        if not proposal.platform or proposal.platform != self.platform:
            where = proposal.platform or "the command line"
            return (f"proposal #{proposal.id} was made on {where}: an admin there, the dashboard or "
                    "`hermes learning` can decide it")
        if not self.admin:
            return (f"only an admin of {self.platform} ([{self.platform}] admins) can approve or reject "
                    "proposals; the dashboard and `hermes learning` can too")
        return None


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def content_hash(kind: str, skill: str, action: str, arguments: dict[str, Any]) -> str:
    """The identity of a change: equal for the same change proposed again (whitespace-insensitive)."""
    normal = {k: " ".join(str(v).split()) for k, v in sorted(arguments.items()) if v not in (None, "")}
    payload = json.dumps([kind, skill, action, normal], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def row_to_proposal(row: Any) -> Proposal:
    keys = set(row.keys())

    def get(key: str, default: Any) -> Any:
        return row[key] if key in keys and row[key] is not None else default

    return Proposal(row["id"], row["checkpoint_id"], row["session_id"], row["team"], row["skill"],
                    row["action"], json.loads(row["arguments"]), row["summary"], row["status"],
                    row["created_at"], row["decided_at"], row["decided_by"], row["result"],
                    get("platform", ""), get("chat_id", ""), get("user_id", ""), get("origin", "checkpoint"),
                    get("kind", "skill"), get("content_hash", ""), get("reason", ""), get("announce", ""))


async def same_change(store: Any, team: str, digest: str) -> Proposal | None:
    """A pending or rejected proposal of `team` making the change `digest` (newest first)."""
    rows = await store.proposal_rows(team=team, content_hash=digest, statuses=("pending", "rejected"),
                                     newest_first=True, limit=1)
    return row_to_proposal(rows[0]) if rows else None


async def remembered(store: Any, team: str, limit: int = 20) -> tuple[list[Proposal], list[Proposal]]:
    """(pending, rejected) proposals of `team`, newest first: what a later review must not propose again."""
    pending = await store.proposal_rows(team=team, status="pending", newest_first=True, limit=limit)
    rejected = await store.proposal_rows(team=team, status="rejected", newest_first=True, limit=limit)
    return [row_to_proposal(r) for r in pending], [row_to_proposal(r) for r in rejected]


def render_remembered(pending: list[Proposal], rejected: list[Proposal]) -> str:
    """The section a review reads: do not propose these again."""
    lines: list[str] = []
    if pending:
        lines.append("Waiting for approval (do not propose the same change again):")
        lines += [f"- #{p.id} {p.title[:200]}" for p in pending]
    if rejected:
        lines.append("Rejected by the team (never propose these again):")
        lines += [f"- #{p.id} {p.title[:200]} (reason: {(p.reason or 'none given')[:200]})" for p in rejected]
    return "\n".join(lines)


async def write_skill_change(library: SkillLibrary, proposal: Proposal, policy: WritePolicy, origin: str) -> str:
    """Write an approved skill proposal through the library (checks of `policy` under the skill's lock)."""
    args, name = proposal.arguments, proposal.skill
    if proposal.action == "create":
        await library.create(name, str(args.get("content") or ""), str(args.get("category") or "general"), origin,
                             policy)
        return f"created skill {name!r}"
    if proposal.action == "patch":
        await library.patch(name, str(args.get("old_text") or ""), str(args.get("new_text") or ""), origin, policy)
        return f"patched skill {name!r}"
    if proposal.action == "edit":
        await library.edit(name, str(args.get("content") or ""), origin, policy)
        return f"rewrote skill {name!r}"
    if proposal.action == "write_file":
        return await library.write_file(name, str(args.get("file_path") or ""), str(args.get("file_content") or ""),
                                        origin, policy)
    if proposal.action == "remove_file":
        return await library.remove_file(name, str(args.get("file_path") or ""), origin, policy)
    raise ProposalError(f"proposal #{proposal.id} has an unknown action {proposal.action!r}")


async def skill_text(library: SkillLibrary, name: str) -> str | None:
    try:
        return await library.read(name)
    except SkillError:
        return None

