"""The learning log: one record per checkpoint, and proposals waiting for a person.

The rows live in the store (`gateway/store/learning.py` for checkpoints, `gateway/store/proposals.py`
for proposals); this module says what is written. Every text stored
here (decisions, diffs, proposal arguments, errors) passes through the secrets `Redactor` first,
so nothing a user pasted into a chat reaches the log. The rules for proposals (who decides, no
change proposed twice, checks again at approval) are in `gateway/learning/proposals.py`;
`apply_proposal` writes an approved proposal to the team's skill library through the same
checks a review's own write passes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.redact import Redactor
from gateway.learning.proposals import (
    AppliedProposal,
    Decider,
    Proposal,
    ProposalError,
    content_hash,
    iso,
    row_to_proposal,
    same_change,
    skill_text,
    write_skill_change,
)
from gateway.store import StateStore
from skills.history import unified_diff
from skills.library import SkillError, SkillLibrary, SkillRefused
from skills.paths import PathEscapeError, safe_join


def team_skills_root(home_root: Path, team: str) -> Path:
    """A team's library root (HERMES_HOME/teams/<team>/skills), or HERMES_HOME/skills with no team."""
    if not team:
        return home_root / "skills"
    return safe_join(home_root, "teams", team, "skills")


def day_start(now: float | None = None) -> float:
    """The start of the current UTC day (checkpoint budgets are per UTC day)."""
    t = time.time() if now is None else now
    return t - (t % 86_400)


@dataclass
class LearningLog:
    store: StateStore
    redactor: Redactor = field(default_factory=Redactor.from_environ)

    def _clean(self, text: str) -> str:
        return self.redactor.redact(text or "")

    def _clean_json(self, value: Any) -> str:
        return self._clean(json.dumps(value, ensure_ascii=False, default=str))

    # -- checkpoints ------------------------------------------------------------------------------
    async def start(self, session_id: str, team: str, cause: str, model: str, review_id: int | None = None) -> int:
        return await self.store.checkpoint_start(session_id, team, cause, model, review_id)

    async def add_tokens(self, checkpoint_id: int, prompt_tokens: int, completion_tokens: int) -> None:
        """Count one model call of a running checkpoint at once (a review that dies keeps its cost)."""
        await self.store.checkpoint_add_tokens(checkpoint_id, prompt_tokens, completion_tokens)

    async def finish(self, checkpoint_id: int, *, status: str, decisions: str = "",
                     skills: list[dict[str, Any]] | None = None, memory: list[dict[str, Any]] | None = None,
                     prompt_tokens: int | None = None, completion_tokens: int | None = None, error: str = "",
                     refusals: list[dict[str, Any]] | None = None) -> None:
        """Close a checkpoint row. Tokens counted with `add_tokens` are kept unless given here."""
        await self.store.checkpoint_finish(
            checkpoint_id, status=status, decisions=self._clean(decisions), skills=self._clean_json(skills or []),
            memory=self._clean_json(memory or []), error=self._clean(error),
            refusals=self._clean_json(refusals or []), prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens)

    async def record(self, session_id: str, team: str, cause: str, model: str, *, status: str,
                     error: str = "", review_id: int | None = None,
                     refusals: list[dict[str, Any]] | None = None) -> int:
        """A checkpoint that did not run (deferred by the budget, skipped): one row, finished at once."""
        checkpoint_id = await self.start(session_id, team, cause, model, review_id)
        await self.finish(checkpoint_id, status=status, error=error, refusals=refusals)
        return checkpoint_id

    async def tokens_since(self, since: float, team: str | None = None) -> int:
        """Checkpoint tokens spent since `since` (by one team when `team` is given; '' is the default library)."""
        return await self.store.checkpoint_tokens_since(since, team)

    async def entries(self, limit: int = 20, session_id: str | None = None,
                      team: str | None = None, api_user: str | None = None) -> list[dict[str, Any]]:
        """The newest log entries; `api_user` keeps those of that API (or web chat) user's sessions."""
        rows = await self.store.checkpoint_rows(limit, session_id=session_id, team=team, api_user=api_user)
        return [{
            "id": r["id"], "session": r["session_id"], "team": r["team"], "cause": r["cause"],
            "status": r["status"], "model": r["model"], "started": iso(r["started_at"]),
            "duration_s": round((r["finished_at"] or r["started_at"]) - r["started_at"], 3),
            "decisions": r["decisions"], "skills": json.loads(r["skills"] or "[]"),
            "memory": json.loads(r["memory"] or "[]"), "prompt_tokens": r["prompt_tokens"],
            "completion_tokens": r["completion_tokens"], "error": r["error"],
            "refusals": json.loads(r["refusals"] or "[]"), "review": r["review_id"],
        } for r in rows]

    async def usage_by_purpose(self, since: float = 0.0) -> dict[str, dict[str, int]]:
        """Tokens of every model call since `since`, split by purpose (chat, checkpoint, compress, ...)."""
        return await self.store.usage_by_purpose(since)

    # -- proposals ----------------------------------------------------------------------------------
    async def propose(self, *, checkpoint_id: int | None, session_id: str, team: str, skill: str, action: str,
                      arguments: dict[str, Any], summary: str, kind: str = "skill", origin: str = "checkpoint",
                      platform: str | None = None, chat_id: str | None = None, user_id: str | None = None) -> int:
        """Record a proposal of `team`; refused (`SkillRefused`, kind duplicate) when the same change is
        already pending or was rejected. Where it came from defaults to the session's chat."""
        clean_args = json.loads(self._clean_json(arguments))
        digest = content_hash(kind, skill, action, clean_args)
        earlier = await same_change(self.store, team, digest)
        if earlier is not None:
            if earlier.status == "pending":
                raise SkillRefused("duplicate", f"the same change is already proposed as #{earlier.id} and waits "
                                                "for approval; do not propose it again")
            raise SkillRefused("duplicate", f"the team rejected this change before (#{earlier.id}, reason: "
                                            f"{earlier.reason or 'none given'}); do not propose it again")
        if kind == "skill" and action == "create":
            await self._check_pending_creates(team, skill, str(clean_args.get("content") or ""))
        if platform is None or chat_id is None or user_id is None:
            session = await self.store.get_session(session_id) if session_id else None
            platform = session.platform if platform is None and session else platform or ""
            chat_id = session.chat_id if chat_id is None and session else chat_id or ""
            user_id = session.user_id if user_id is None and session else user_id or ""
        return await self.store.proposal_insert(
            checkpoint_id=checkpoint_id, session_id=session_id, team=team, skill=skill, action=action,
            arguments=json.dumps(clean_args, ensure_ascii=False), summary=self._clean(summary),
            platform=platform or "", chat_id=chat_id or "", user_id=user_id or "", origin=origin, kind=kind,
            content_hash=digest)

    async def _check_pending_creates(self, team: str, name: str, content: str) -> None:
        """A create that is the same procedure as a create already waiting is refused (not piled up)."""
        from skills.similar import SkillDeduplicator, LexicalModel, SkillText

        waiting = [p for p in await self.proposals("pending", 200, team=team) if p.kind == "skill"
                   and p.action == "create"]
        if not waiting:
            return
        dedup = SkillDeduplicator()
        others = [SkillText.from_markdown(str(p.arguments.get("content") or ""), p.skill) for p in waiting]
        model = LexicalModel.from_texts([o.content for o in others], dedup.background())
        for match in await dedup.compare(SkillText.from_markdown(content, name), others, model):
            if match.duplicate:
                earlier = next((p for p in waiting if p.skill == match.name), waiting[0])
                raise SkillRefused("duplicate", (
                    f"a proposal to create the same procedure is already waiting: #{earlier.id} ({earlier.skill}). "
                    "Do not propose it again; once it is approved, improve it with a patch."))

    async def proposal(self, proposal_id: int) -> Proposal | None:
        row = await self.store.proposal_row(proposal_id)
        return row_to_proposal(row) if row else None

    async def proposals(self, status: str | None = "pending", limit: int = 50, *,
                        team: str | None = None) -> list[Proposal]:
        return [row_to_proposal(r) for r in await self.store.proposal_rows(status=status, team=team, limit=limit)]

    async def decide(self, proposal_id: int, status: str, by: str, result: str, *, reason: str = "",
                     announce: str = "") -> bool:
        """Set the outcome of a pending proposal; False when someone else decided it first."""
        return await self.store.proposal_decide(proposal_id, status, by, self._clean(result),
                                                reason=self._clean(reason), announce=announce)

    async def claim(self, proposal_id: int, by: str) -> bool:
        """Take a pending proposal for approval (so two approvals cannot both write it)."""
        return await self.store.proposal_claim(proposal_id, by)

    async def release(self, proposal_id: int) -> None:
        await self.store.proposal_release(proposal_id)

    async def mark_announced(self, proposal_id: int) -> None:
        await self.store.proposal_mark_announced(proposal_id)

    async def to_announce(self, limit: int = 20) -> list[Proposal]:
        return [row_to_proposal(r) for r in await self.store.proposal_rows(announce="pending", limit=limit)]


LibraryFor = Callable[[str], SkillLibrary]


def _decider(by: str | Decider) -> Decider:
    return by if isinstance(by, Decider) else Decider("cli", name=by)


async def _pending(log: LearningLog, proposal_id: int, decider: Decider) -> Proposal:
    proposal = await log.proposal(proposal_id)
    if proposal is None or (decider.via == "chat" and proposal.team != decider.team):
        raise ProposalError(f"there is no proposal #{proposal_id} for this team; /approve lists them")
    if proposal.status != "pending":
        raise ProposalError(f"proposal #{proposal_id} is already {proposal.status}")
    refusal = decider.may_decide(proposal)
    if refusal:
        raise ProposalError(refusal)
    return proposal


async def apply_proposal(log: LearningLog, library_for: LibraryFor, proposal_id: int, by: str | Decider, *,
                         dedup: Any = None, max_skill_chars: int | None = None,
                         announce: str = "") -> AppliedProposal:
    """Write an approved skill proposal to its team's library and mark it approved.

    The skills guard and the duplicate check run again on the final text; a proposal that fails
    them is marked `refused` with the reason and nothing is written.
    """
    from agent.skill_writes import MAX_SKILL_CHARS, check_proposal, checkpoint_policy
    from skills.similar import SkillDeduplicator

    decider = _decider(by)
    proposal = await _pending(log, proposal_id, decider)
    if proposal.kind != "skill":
        raise ProposalError(f"proposal #{proposal_id} is a {proposal.kind} proposal")
    if not await log.claim(proposal_id, decider.label):
        raise ProposalError(f"proposal #{proposal_id} is being decided by someone else")
    try:
        library = library_for(proposal.team)
    except BaseException:
        await log.release(proposal_id)
        raise
    limit = max_skill_chars or MAX_SKILL_CHARS
    origin = f"checkpoint:{proposal.checkpoint_id or '?'} approved by {decider.label}"
    name = proposal.skill
    try:
        await check_proposal(library, dedup if isinstance(dedup, SkillDeduplicator) else SkillDeduplicator(), limit,
                             proposal.action, name, proposal.arguments)
        before = await skill_text(library, name)
        policy = checkpoint_policy(limit, protect=False)
        message = await write_skill_change(library, proposal, policy, origin)
    except SkillRefused as exc:
        await log.decide(proposal_id, "refused", decider.label, str(exc), reason=f"{exc.kind}: {exc}")
        raise ProposalError(f"proposal #{proposal_id} was refused and nothing was written ({exc.kind}): "
                            f"{exc}") from exc
    except (SkillError, PathEscapeError) as exc:
        await log.decide(proposal_id, "failed", decider.label, str(exc), reason=str(exc))
        raise ProposalError(f"proposal #{proposal_id} could not be written: {exc}") from exc
    except BaseException:
        await log.release(proposal_id)  # e.g. cancelled: it stays pending, nothing was decided
        raise
    after = await skill_text(library, name)
    await log.decide(proposal_id, "approved", decider.label, message, announce=announce)
    return AppliedProposal(proposal, message, unified_diff(before, after, f"{name}/SKILL.md"))


async def apply_memory_proposal(log: LearningLog, memory: Any, proposal_id: int, by: str | Decider,
                                announce: str = "") -> AppliedProposal:
    """Write an approved memory proposal (`[learning] auto_memory = "ask"`) to MEMORY.md or USER.md."""
    from agent.memory import MemoryOpError, Scope

    decider = _decider(by)
    proposal = await _pending(log, proposal_id, decider)
    if proposal.kind != "memory":
        raise ProposalError(f"proposal #{proposal_id} is not a memory proposal")
    if not await log.claim(proposal_id, decider.label):
        raise ProposalError(f"proposal #{proposal_id} is being decided by someone else")
    args = proposal.arguments
    target = "user" if args.get("target") == "user" else "memory"
    scope = Scope(proposal.team, proposal.platform, str(args.get("user_id") or ""))
    try:
        if proposal.action == "add":
            change = await memory.add(target, scope, str(args.get("text") or ""))
        elif proposal.action == "replace":
            change = await memory.replace(target, scope, str(args.get("old_text") or ""),
                                          str(args.get("new_text") or args.get("text") or ""))
        elif proposal.action == "remove":
            change = await memory.remove(target, scope, str(args.get("old_text") or ""))
        else:
            raise MemoryOpError(f"unknown memory action {proposal.action!r}")
    except (MemoryOpError, PathEscapeError) as exc:
        await log.decide(proposal_id, "failed", decider.label, str(exc), reason=str(exc))
        raise ProposalError(f"proposal #{proposal_id} could not be written: {exc}") from exc
    except BaseException:
        await log.release(proposal_id)
        raise
    file = "USER.md" if target == "user" else "MEMORY.md"
    message = f"{proposal.action} in {file}"
    await log.decide(proposal_id, "approved", decider.label, message, announce=announce)
    return AppliedProposal(proposal, message, unified_diff(change.before, change.after, file))


async def reject_proposal(log: LearningLog, proposal_id: int, by: str | Decider, reason: str = "") -> Proposal:
    """Drop a pending proposal; the reason is remembered and shown to later reviews of the team."""
    decider = _decider(by)
    proposal = await _pending(log, proposal_id, decider)
    if not await log.decide(proposal_id, "rejected", decider.label, "rejected", reason=reason.strip()):
        raise ProposalError(f"proposal #{proposal_id} was decided by someone else meanwhile")
    return proposal

