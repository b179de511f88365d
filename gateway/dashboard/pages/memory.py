"""`/memory`: MEMORY.md of every team library and USER.md of every user, editable entry by entry.

Edits go through `agent.memory.MemoryStore` (`runtime.services["memory"]`), the code path of the
`memory` tool: the character bound is enforced (a full file refuses the entry and says how full
it is), text that looks like a secret is refused, writes are atomic and locked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from agent.memory import USER_FILE, Entry, MemoryOpError, Scope
from gateway.dashboard.core import Dashboard
from skills.paths import PathEscapeError

MAX_USERS = 500
ACTIONS = ("add", "replace", "remove")


@dataclass(frozen=True)
class MemoryFile:
    anchor: str
    title: str
    target: str         # "memory" | "user"
    team: str
    platform: str
    user_id: str
    path: str
    entries: list[Entry]
    used: int
    limit: int


def find_users(root: Path, limit: int = MAX_USERS) -> list[tuple[str, str]]:
    """(platform, user id) of every USER.md under memories/users (sync: run in a thread)."""
    base = root / "memories" / "users"
    found: list[tuple[str, str]] = []
    if not base.is_dir():
        return found
    for platform_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for user_dir in sorted(p for p in platform_dir.iterdir() if p.is_dir()):
            if (user_dir / USER_FILE).is_file():
                found.append((unquote(platform_dir.name), unquote(user_dir.name)))
                if len(found) >= limit:
                    return found
    return found


def anchor_for(target: str, team: str, platform: str = "", user_id: str = "") -> str:
    raw = f"{target}-{team}" if target == "memory" else f"user-{platform}-{user_id}"
    return "m-" + "".join(c if c.isalnum() else "-" for c in raw)


def routes(d: Dashboard) -> list[web.RouteDef]:
    async def load(store: Any, target: str, scope: Scope, title: str) -> MemoryFile:
        text = await store.read(target, scope)
        return MemoryFile(anchor_for(target, scope.team, scope.platform, scope.user_id), title, target, scope.team,
                          scope.platform, scope.user_id, str(store.path_for(target, scope)),
                          await store.entries(target, scope), len(text), store.limit_for(target))

    async def index(request: web.Request) -> web.Response:
        store = d.service("memory")
        teams = [await load(store, "memory", Scope(team=t), f"MEMORY.md · {'team ' + t if t else 'no team'}")
                 for t in d.teams()]
        users = [await load(store, "user", Scope(platform=p, user_id=u), f"USER.md · {p}:{u}")
                 for p, u in await asyncio.to_thread(find_users, d.runtime.home.root)]
        return d.page(request, "memory.html", active="/memory", teams=teams, users=users)

    async def change(request: web.Request) -> web.StreamResponse:
        form = await d.form(request)
        store = d.service("memory")
        target = str(form.get("target", ""))
        action = str(form.get("action", ""))
        team = d.team_of(str(form.get("team", ""))) if target == "memory" else ""
        platform, user_id = str(form.get("platform", "")), str(form.get("user_id", ""))
        back = "/memory#" + anchor_for(target, team, platform, user_id)
        if target not in ("memory", "user"):
            return d.redirect("/memory", f"target: {target!r} is not 'memory' or 'user'", "error")
        if action not in ACTIONS:
            return d.redirect(back, f"action: {action!r} is not one of {', '.join(ACTIONS)}", "error")
        scope = Scope(team=team, platform=platform, user_id=user_id) if target == "user" else Scope(team=team)
        try:
            if action == "add":
                done = await store.add(target, scope, str(form.get("text", "")))
            elif action == "replace":
                done = await store.replace(target, scope, str(form.get("old_text", "")),
                                           str(form.get("new_text", "")))
            else:
                done = await store.remove(target, scope, str(form.get("old_text", "")))
        except (MemoryOpError, PathEscapeError) as exc:
            return d.redirect(back, str(exc), "error")
        name = Path(done.file).name
        return d.redirect(back, f"{action} done in {name} ({len(done.after or '')}/{store.limit_for(target)} "
                                "characters used)")

    return [web.get("/memory", index), web.post("/memory", change)]
