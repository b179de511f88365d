"""Wiring the skill library into a Runtime: libraries per team, bundled skills, the three tools,
the prompt's skills index, and `/skill-name args` slash commands.

    await install_skills(runtime)      # from Runtime.open, after the tools and prompt exist
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.prompt import PromptContext
from agent.tools.skills import skill_tools
from gateway.config import SkillsConfig
from gateway.home import Home
from skills.bundled_install import install_bundled
from skills.index_prompt import HEADER, MAX_ENTRIES, IndexSelector, entry_line, footer
from skills.library import SkillError, SkillLibrary, Snapshot
from skills.search import estimate_tokens
from skills.paths import safe_join
from skills.similar import SkillDeduplicator
from skills.validate import name_problems

log = logging.getLogger(__name__)


def library_root(home: Home, team: str = "") -> Path:
    """`HERMES_HOME/skills` for everyone, `HERMES_HOME/teams/<team>/skills` for a team."""
    if not team:
        return home.skills_dir
    return safe_join(home.root, "teams", team, "skills")


def existing_teams(home: Home) -> list[str]:
    """Teams with a skill library folder under the home (sync)."""
    teams = home.root / "teams"
    if not teams.is_dir():
        return []
    return sorted(p.name for p in teams.iterdir()
                  if not p.name.startswith(".") and (p / "skills").is_dir() and not (p / "skills").is_symlink())


@dataclass
class SkillLibraries:
    """One SkillLibrary per library root, opened on first use (bundled skills installed then).

    With a `store` (the Runtime's), the store is each library's source of truth: a library's
    skills are brought in step with it when the library opens (`SkillLibrary.sync_store`: skills
    and history made before the store are adopted, edits made meanwhile become versions)."""

    home: Home
    settings: SkillsConfig = field(default_factory=SkillsConfig)
    store: Any = None
    _open: dict[str, SkillLibrary] = field(default_factory=dict)
    _opening: asyncio.Lock | None = None

    async def get(self, team: str = "") -> SkillLibrary:
        library = self._open.get(team)
        if library is not None:
            return library
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            library = self._open.get(team)
            if library is None:
                versions = self.store.skill_versions(team) if self.store is not None else None
                library = SkillLibrary(library_root(self.home, team), versions=versions)
                if self.settings.install_bundled:
                    try:
                        await asyncio.to_thread(install_bundled, library)
                    except OSError as exc:  # a read-only home must not stop the gateway
                        log.warning("could not install bundled skills into %s: %s", library.root, exc)
                if versions is not None:
                    try:
                        changed = await library.sync_store()
                    except (OSError, SkillError) as exc:
                        log.warning("could not bring the skills of %s in step with the store: %s", library.root, exc)
                    else:
                        if changed:
                            log.info("skills of %s: %d brought in step with the store", library.root, changed)
                self._open[team] = library
        return library


class SkillsPromptSection:
    """The PromptBuilder section: the skills index for the conversation's library and topic.

    Built on every turn, so it is cheap when nothing changed: the library scan (a no-op while
    the library's snapshot is fresh) and the selection run in one worker-thread hop, and when the
    whole library fits the budget (the selection is then every skill, whatever the message) the
    text rendered for that snapshot is reused for every session that already saw it.
    """

    def __init__(self, libraries: SkillLibraries, budget_tokens: int) -> None:
        self.libraries = libraries
        self.selectors: dict[str, IndexSelector] = {}
        self.budget_tokens = budget_tokens
        self._whole: dict[str, tuple[Snapshot, str | None]] = {}  # team -> (snapshot, text if all fit)
        self._seen: OrderedDict[tuple[str, str], Snapshot] = OrderedDict()  # (team, session) -> snapshot
        self._lock = threading.Lock()  # the bookkeeping above is shared by worker threads

    async def __call__(self, ctx: PromptContext) -> str:
        try:
            library = await self.libraries.get(ctx.team)
        except (OSError, ValueError) as exc:
            log.warning("skills index unavailable: %s", exc)
            return ""
        selector = self.selectors.setdefault(ctx.team, IndexSelector(self.budget_tokens))
        session = ctx.session_id or f"{ctx.platform}:{ctx.chat_id}"
        text = await asyncio.to_thread(self._text, library, selector, ctx.team, session, ctx.query)
        if isinstance(text, Exception):
            log.warning("skills index unavailable: %s", text)
            return ""
        return text

    def _text(self, library: SkillLibrary, selector: IndexSelector, team: str, session: str,
              query: str) -> str | Exception:
        try:
            snapshot = library.scan()
        except (OSError, ValueError) as exc:
            return exc
        key = (team, session)
        with self._lock:
            whole = self._whole.get(team)
            if whole is not None and whole[0] is snapshot and whole[1] is not None \
                    and self._seen.get(key) is snapshot:
                self._seen.move_to_end(key)
                return whole[1]
        text = selector.text(snapshot, session, query)
        with self._lock:
            if whole is None or whole[0] is not snapshot:
                self._whole[team] = whole = (snapshot, text if self._all_fit(snapshot) else None)
            if whole[1] is not None and whole[1] == text:
                text = whole[1]  # one string shared by every session
            self._seen[key] = snapshot
            self._seen.move_to_end(key)
            while len(self._seen) > selector.max_sessions:
                self._seen.popitem(last=False)
        return text

    def _all_fit(self, snapshot: Snapshot) -> bool:
        """Whether `select` picks every skill whatever the query (same rule as skills.index_prompt.select)."""
        skills = snapshot.skills
        if len(skills) > MAX_ENTRIES:
            return False
        used = estimate_tokens(HEADER) + estimate_tokens(footer(len(skills))) + 2
        used += sum(estimate_tokens(entry_line(s)) + 1 for s in skills)
        return used <= self.budget_tokens


def deduplicator(settings: SkillsConfig) -> SkillDeduplicator:
    """The near-duplicate check for reviews, proposals and the curator (embeddings when configured)."""
    if not settings.embedding_model:
        return SkillDeduplicator()
    from agent.skill_writes import litellm_embedder

    return SkillDeduplicator(embed=litellm_embedder(settings.embedding_model, api_base=settings.embedding_api_base,
                                               api_key=settings.embedding_api_key))


async def install_skills(runtime: Any) -> SkillLibrary:
    """Give `runtime` its skill library: tools, `services["skills"]`, and the prompt section.

    Idempotent: a runtime that already has its library gets it back unchanged.
    """
    if isinstance(runtime.services.get("skills"), SkillLibrary):
        return runtime.services["skills"]
    settings: SkillsConfig = runtime.config.skills
    libraries = SkillLibraries(runtime.home, settings, store=runtime.store)
    library = await libraries.get("")
    for team in await asyncio.to_thread(existing_teams, runtime.home):
        try:
            await libraries.get(team)  # each team library in step with the store from the start
        except (OSError, ValueError) as exc:
            log.warning("team %r: skill library not opened: %s", team, exc)
    for t in skill_tools():
        if runtime.tools.get(t.name) is None:
            runtime.tools.register(t)
    runtime.services["skills"] = library
    runtime.services["skill_libraries"] = libraries
    runtime.services["skill_dedup"] = deduplicator(settings)
    runtime.services["max_skill_chars"] = settings.max_skill_chars
    runtime.prompt.add_section(SkillsPromptSection(libraries, settings.prompt_budget_tokens))
    return library


async def expand_skill_command(library: SkillLibrary, text: str) -> str | None:
    """`/skill-name args` -> a request to follow that skill; None when `text` is not one.

    Returns None for anything that is not a slash command naming an existing skill, so other
    slash commands (/help, /new ...) pass through untouched. Counts as a use of the skill.
    """
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    head, _, args = stripped[1:].partition(" ")
    # Telegram appends @botname to commands and allows no hyphens in them: /code_review works too
    name = head.split("@", 1)[0].strip().lower().replace("_", "-")
    if name_problems(name):
        return None
    try:
        skill = await library.get(name)
    except SkillError:
        return None
    await library.record_use(name)
    request = args.strip() or "(no arguments: apply the skill to the current conversation)"
    return (f"Follow the skill {skill.name} below.\n\n"
            f"<skill name=\"{skill.name}\">\n{skill.document.body.strip()}\n</skill>\n\n"
            f"Request: {request}")
