"""Wiring the skill library into a Runtime: libraries per team, bundled skills, the three tools,
the prompt's skills index, and `/skill-name args` slash commands.

    await install_skills(runtime)      # from Runtime.open, after the tools and prompt exist
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.prompt import PromptContext
from agent.tools.skills import skill_tools
from gateway.config import SkillsConfig
from gateway.home import Home
from skills.bundled_install import install_bundled
from skills.index_prompt import IndexSelector
from skills.library import SkillError, SkillLibrary
from skills.paths import safe_join
from skills.validate import name_problems

log = logging.getLogger(__name__)


def library_root(home: Home, team: str = "") -> Path:
    """`HERMES_HOME/skills` for everyone, `HERMES_HOME/teams/<team>/skills` for a team."""
    if not team:
        return home.skills_dir
    return safe_join(home.root, "teams", team, "skills")


@dataclass
class SkillLibraries:
    """One SkillLibrary per library root, opened on first use (bundled skills installed then)."""

    home: Home
    settings: SkillsConfig = field(default_factory=SkillsConfig)
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
                library = SkillLibrary(library_root(self.home, team))
                if self.settings.install_bundled:
                    try:
                        await asyncio.to_thread(install_bundled, library)
                    except OSError as exc:  # a read-only home must not stop the gateway
                        log.warning("could not install bundled skills into %s: %s", library.root, exc)
                self._open[team] = library
        return library


class SkillsPromptSection:
    """The PromptBuilder section: the skills index for the conversation's library and topic."""

    def __init__(self, libraries: SkillLibraries, budget_tokens: int) -> None:
        self.libraries = libraries
        self.selectors: dict[str, IndexSelector] = {}
        self.budget_tokens = budget_tokens

    async def __call__(self, ctx: PromptContext) -> str:
        try:
            library = await self.libraries.get(ctx.team)
            snapshot = await library.snapshot()
        except (OSError, ValueError) as exc:
            log.warning("skills index unavailable: %s", exc)
            return ""
        selector = self.selectors.setdefault(ctx.team, IndexSelector(self.budget_tokens))
        session = ctx.session_id or f"{ctx.platform}:{ctx.chat_id}"
        return await asyncio.to_thread(selector.text, snapshot, session, ctx.query)


async def install_skills(runtime: Any) -> SkillLibrary:
    """Give `runtime` its skill library: tools, `services["skills"]`, and the prompt section.

    Idempotent: a runtime that already has its library gets it back unchanged.
    """
    if isinstance(runtime.services.get("skills"), SkillLibrary):
        return runtime.services["skills"]
    settings: SkillsConfig = runtime.config.skills
    libraries = SkillLibraries(runtime.home, settings)
    library = await libraries.get("")
    for t in skill_tools():
        if runtime.tools.get(t.name) is None:
            runtime.tools.register(t)
    runtime.services["skills"] = library
    runtime.services["skill_libraries"] = libraries
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
