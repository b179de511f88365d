"""Announcing what was learned: the "Learned" lines posted back to the session's chat.

A review's skill changes are announced after the turn's answer (one line per skill and kind of
change, `agent.checkpoint.announcement`); an approved proposal is announced once, to the chat it
came from, also when it was approved from the CLI while the gateway ran elsewhere. Posting goes
through `runtime.services["announce"]`; without it (or with `[learning] announce = false`) the
line is only logged.

What a review wrote to memory ("Remembered about you: ...") is worded here too (`remembered_lines`,
also the web chat's notices) but posted only through `runtime.services["announce_memory"]`, which
`hermes chat` sets: a platform's chat, maybe a group, is not told what was noted about a person.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.checkpoint import SkillChange, announcement
from gateway.learning.log import LearningLog
from gateway.store import SessionRecord

log = logging.getLogger(__name__)

PAUSED_NOTICE = "Learning paused until 00:00 UTC: today's budget is spent."


class Announcer:
    """Posts to a session's chat what its reviews learned and which proposals were approved."""

    def __init__(self, runtime: Any, log_: LearningLog) -> None:
        self.runtime = runtime
        self.settings = runtime.config.learning
        self.log = log_

    async def announce(self, session: SessionRecord, changes: list[SkillChange]) -> None:
        if not changes:
            return
        seen: dict[tuple[str, str, int | None], SkillChange] = {}
        for change in changes:  # one line per skill and kind of change
            if change.action in ("create", "patch", "edit"):
                kind = "create" if change.action == "create" else "update"
                seen.setdefault((change.name, kind, change.proposal_id), change)
        text = "\n".join(announcement(c) for c in seen.values())
        if not text:
            return
        if not self.settings.announce:
            log.info("learning (session %s): %s", session.id, text)
            return
        await self.post(session, text)

    async def post(self, session: SessionRecord, text: str) -> None:
        hook = self.runtime.services.get("announce")
        if hook is None:
            log.info("learning (session %s): %s", session.id, text)
            return
        try:
            await hook(session, text)
        except Exception:
            log.exception("could not tell session %s: %s", session.id, text)

    async def remembered(self, session: SessionRecord, memory: list[dict[str, Any]]) -> None:
        """Tell the terminal what a review wrote to memory (`memory` as the learning log holds it)."""
        hook = self.runtime.services.get("announce_memory")
        text = "\n".join(remembered_lines(memory))
        if hook is None or not text or not self.settings.announce:
            return
        try:
            await hook(session, text)
        except Exception:
            log.exception("could not tell session %s: %s", session.id, text)

    async def announce_approved(self, proposal_id: int | None = None) -> int:
        """Post the "Learned" message of approved proposals still to be announced (one, or all of
        them: approvals made from the CLI while the gateway ran elsewhere). Returns how many."""
        waiting = await self.log.to_announce()
        if proposal_id is not None:
            waiting = [p for p in waiting if p.id == proposal_id]
        posted = 0
        for p in waiting:
            await self.log.mark_announced(p.id)  # at most once: a failed post is logged, not repeated
            session = await self.runtime.store.get_session(p.session_id) if p.session_id else None
            if session is None:
                continue
            change = SkillChange(p.skill, p.action, p.summary, "", summary=p.summary if p.action == "create"
                                 else f"#{p.id} approved by {p.decided_by}: {p.summary}")
            await self.announce(session, [change])
            posted += 1
        return posted


def remembered_lines(memory: list[dict[str, Any]]) -> list[str]:
    """One "Remembered about you: ..." / "Remembered in team memory: ..." line per memory write
    (its last added line, from the write's diff); a write that only removed says nothing."""
    lines: list[str] = []
    for m in memory:
        added = [line[1:].strip() for line in str(m.get("diff") or "").splitlines()
                 if line.startswith("+") and not line.startswith("+++") and line[1:].strip()]
        if added:
            where = "about you" if m.get("target") == "user" else "in team memory"
            line = f"Remembered {where}: {added[-1].lstrip('- ')[:160]}"
            if line not in lines:
                lines.append(line)
    return lines
