"""`/learning`: the checkpoint log (what each checkpoint decided, the diffs it wrote, tokens spent)
and pending ask-mode proposals with approve and reject.

With `Accept: application/json` the same URL answers API users with the learning log as JSON:
`{"entries": [...], "pending": [...], "queue": {status: count}, "budget": {...},
"usage_by_purpose": {...}, "notices": [{"id", "text"}]}` (`?limit=N`, `?session=ID`, `?team=NAME`
narrow the entries; `?user=NAME` picks the web chat / API user's conversation and `?after=ID` only
newer entries: the web chat shows their `notices`, the "Learned: ..." lines, in the conversation).

Approve and reject call the LearningLoop (`runtime.services["learning"]`), the same path as
`/approve` in a chat and `hermes learning approve`: the guard and the duplicate check run again,
the proposal is written through the skill library (validation, history) and the "Learned"
message is posted to the chat it came from. A rejection keeps its reason for later reviews.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agent.skill_writes import SkillChange, announcement
from gateway.dashboard.core import BY, Dashboard
from gateway.learning.announce import remembered_lines
from gateway.learning.log import day_start
from gateway.learning.proposals import ProposalError
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


def wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


async def as_json(request: web.Request, loop: Any) -> web.Response:
    raw = request.query.get("limit", "50")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1_000:  # '²' is a digit to isdigit
        return web.json_response({"error": {"message": f"limit: {raw!r} is not a number from 1 to 1000",
                                            "type": "invalid_request_error", "param": "limit"}}, status=400)
    team = request.query.get("team")
    session_id = request.query.get("session") or None
    user = request.query.get("user") or None  # the web chat's (or an API user's) own conversations
    after = request.query.get("after", "0")
    entries = await loop.log.entries(limit=int(raw), session_id=session_id, team=team,
                                     api_user=user[:200] if user else None)
    if after.isascii() and after.isdigit():
        entries = [e for e in entries if e["id"] > int(after)]
    pending = [p.as_dict() for p in await loop.pending()]
    settings = loop.settings
    return web.json_response({
        "entries": entries, "pending": pending, "queue": await loop.queue.counts(),
        "budget": {"daily_token_budget": settings.daily_token_budget, "per": "team",
                   "spent_today": await loop.log.tokens_since(day_start(), team)},
        "usage_by_purpose": await loop.log.usage_by_purpose(day_start()),
        "notices": [{"id": e["id"], "text": text} for e in reversed(entries) if (text := notice(e))],
    })


def notice(entry: dict[str, Any]) -> str:
    """The "Learned: ..." lines of one log entry, as the chat announcement would word them."""
    lines: dict[str, str] = {}
    for s in entry["skills"]:
        if s.get("action") in ("create", "patch", "edit"):
            change = SkillChange(s["name"], s["action"], s.get("description") or "", s.get("diff") or "",
                                 s.get("summary") or "", s.get("proposal"))
            lines.setdefault(f"{s['name']}:{s['action'] == 'create'}", announcement(change))
    return "\n".join([*lines.values(), *remembered_lines(entry["memory"])])


def routes(d: Dashboard) -> list[web.RouteDef]:
    async def index(request: web.Request) -> web.Response:
        loop = d.service("learning")
        if wants_json(request):
            return await as_json(request, loop)
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
        if not (raw.isascii() and raw.isdigit()):
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
