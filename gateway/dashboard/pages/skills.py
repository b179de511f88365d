"""`/skills`: each team's library by category with search; `/skills/{name}`: SKILL.md rendered,
supporting files, use count and last use, the history as diffs with a revert button.

Reverting calls `SkillLibrary.revert` (validated, locked, recorded in the history), exactly what
`hermes skills revert` does. Skills never used are marked as candidates to archive, as
`hermes skills stats` lists them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from gateway.dashboard.core import BY, Dashboard
from skills.library import SkillError, SkillNotFound
from skills.paths import PathEscapeError

MAX_RESULTS = 50


def skill_url(name: str, team: str, suffix: str = "") -> str:
    query = f"?{urlencode({'team': team})}" if team else ""
    return f"/skills/{quote(name)}{suffix}{query}"


def routes(d: Dashboard) -> list[web.RouteDef]:
    async def library_for(team: str) -> Any:
        return await d.service("skill_libraries").get(team)

    async def index(request: web.Request) -> web.Response:
        team = d.team_of(request.query.get("team"))
        query = request.query.get("q", "").strip()
        library = await library_for(team)
        snapshot = await library.snapshot()
        if query:
            shown = [skill for skill, _score in await library.search(query, MAX_RESULTS)]
        else:
            shown = list(snapshot.skills)
        categories: dict[str, list[Any]] = defaultdict(list)
        for skill in shown:
            categories[skill.category or "(no category)"].append(skill)
        ordered = dict(sorted(categories.items())) if not query else dict(categories)
        return d.page(request, "skills.html", active="/skills", team=team, teams=d.teams(), query=query,
                      categories=ordered, total=len(snapshot.skills), shown=len(shown),
                      never_used=sum(1 for s in snapshot.skills if s.use_count == 0),
                      problems=snapshot.problems, skill_url=skill_url)

    async def show(request: web.Request) -> web.Response:
        team = d.team_of(request.query.get("team"))
        name = request.match_info["name"]
        library = await library_for(team)
        try:
            history = await library.history_of(name)
        except SkillError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        try:
            skill = await library.get(name)
        except SkillNotFound:
            skill = None
            if not history:
                raise web.HTTPNotFound(text=f"there is no skill named {name!r} in this library") from None
        files = await asyncio.to_thread(skill.files) if skill is not None else []
        return d.page(request, "skill.html", active="/skills", team=team, name=name, skill=skill, files=files,
                      history=list(reversed(history)), latest=history[-1].number if history else 0,
                      skill_url=skill_url)

    async def show_file(request: web.Request) -> web.Response:
        team = d.team_of(request.query.get("team"))
        name = request.match_info["name"]
        path = request.query.get("path", "")
        library = await library_for(team)
        try:
            text = await library.read(name, path)
        except (SkillError, PathEscapeError, OSError, UnicodeDecodeError) as exc:
            raise web.HTTPNotFound(text=f"{name}/{path}: {exc}") from None
        return d.page(request, "skill_file.html", active="/skills", team=team, name=name, path=path, text=text,
                      skill_url=skill_url)

    async def revert(request: web.Request) -> web.StreamResponse:
        form = await d.form(request)
        team = d.team_of(str(form.get("team", "")))
        name = request.match_info["name"]
        back = skill_url(name, team) + "#history"
        raw = str(form.get("to", "")).strip()
        if not (raw.isascii() and raw.isdigit()):
            return d.redirect(back, f"to: {raw!r} is not a version number", "error")
        library = await library_for(team)
        try:
            message = await library.revert(name, int(raw), origin=BY)
        except (SkillError, PathEscapeError) as exc:
            return d.redirect(back, str(exc), "error")
        return d.redirect(back, message)

    return [web.get("/skills", index), web.get("/skills/{name}", show), web.get("/skills/{name}/file", show_file),
            web.post("/skills/{name}/revert", revert)]
