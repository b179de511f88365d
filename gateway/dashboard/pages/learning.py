"""`/learning`: the checkpoint log (what each checkpoint decided, the diffs it wrote, tokens spent)
and pending ask-mode proposals with approve and reject.

Approve and reject call the LearningLoop (`runtime.services["learning"]`), the same path as
`/approve` in a chat and `hermes learning approve`: the guard and the duplicate check run again,
the proposal is written through the skill library (validation, history) and the "Learned"
message is posted to the chat it came from. A rejection keeps its reason for later reviews.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.dashboard.core import BY, Dashboard
from gateway.learning_log import day_start
from gateway.proposals import ProposalError
from skills.history import unified_diff

LOG_LIMIT = 30
DECIDED_LIMIT = 20


@dataclass(frozen=True)
class Preview:
    """What a proposal would write: a diff for a patch, the text (and file or category) for the rest."""

    diff: str = ""
    text: str = ""
    file: str = ""
    category: str = ""


def preview(proposal: Any) -> Preview:
    args = proposal.arguments
    if proposal.action == "patch":
        return Preview(diff=unified_diff(str(args.get("old_text") or ""), str(args.get("new_text") or ""),
                                         f"{proposal.skill}/SKILL.md"))
    if proposal.action in ("create", "edit"):
        return Preview(text=str(args.get("content") or ""), category=str(args.get("category") or ""))
    if proposal.action == "write_file":
        return Preview(text=str(args.get("file_content") or ""), file=str(args.get("file_path") or ""))
    if proposal.action == "remove_file":
        return Preview(file=str(args.get("file_path") or ""))
    return Preview(text=str(args))


def routes(d: Dashboard) -> list[web.RouteDef]:
    async def index(request: web.Request) -> web.Response:
        loop = d.service("learning")
        pending = await loop.pending()
        everything = await loop.log.proposals(None, limit=1_000)
        decided = [p for p in reversed(everything) if p.status != "pending"][:DECIDED_LIMIT]
        entries = await loop.log.entries(limit=LOG_LIMIT)
        settings = loop.settings
        return d.page(request, "learning.html", active="/learning", pending=[(p, preview(p)) for p in pending],
                      decided=decided, entries=entries, mode=settings.auto_skills,
                      checkpoint_every=settings.checkpoint_every, budget=settings.daily_token_budget,
                      spent_today=await loop.log.tokens_since(day_start()), model=loop.model)

    async def decide(request: web.Request) -> web.StreamResponse:
        form = await d.form(request)
        loop = d.service("learning")
        raw = request.match_info["id"]
        verdict = request.match_info["verdict"]
        if not raw.isdigit():
            return d.redirect("/learning", f"proposal: {raw!r} is not a proposal number", "error")
        try:
            if verdict == "approve":
                applied = await loop.approve(int(raw), BY)
                message = f"proposal #{raw} approved: {applied.message}"
            else:
                await loop.reject(int(raw), BY, str(form.get("reason", ""))[:500])
                message = f"proposal #{raw} rejected"
        except ProposalError as exc:
            return d.redirect("/learning", str(exc), "error")
        return d.redirect("/learning", message)

    return [web.get("/learning", index),
            web.post(r"/learning/proposals/{id}/{verdict:approve|reject}", decide)]
