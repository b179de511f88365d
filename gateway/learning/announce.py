"""Announcing what was learned: the "Learned" lines posted back to the session's chat.

A review's skill changes are announced after the turn's answer (one line per skill and kind of
change, `agent.checkpoint.announcement`); an approved proposal is announced once, to the chat it
came from, also when it was approved from the CLI while the gateway ran elsewhere. Posting goes
through `runtime.services["announce"]`; without it (or with `[learning] announce = false`) the
line is only logged.
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
