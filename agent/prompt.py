"""The system prompt: a fixed base plus sections contributed by other parts (skills, memory).

Sections are async callables that receive a `PromptContext` and return text (or "" to be left
out). They must return the same text for the same situation, so the prompt's prefix stays
byte-identical between turns and providers' prompt caches keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

BASE_PROMPT = """You are Hermes, a capable assistant that gets better at its users' work over time.
Use your tools to act rather than guess: read before you change, check results, and say plainly
what you did and what failed. Keep answers short unless asked for detail. When a skill in your
library fits the task, load it with skill_view and follow it."""


@dataclass(frozen=True)
class PromptContext:
    session_id: str = ""
    user_id: str = ""
    platform: str = ""
    chat_id: str = ""
    team: str = ""
    query: str = ""   # the latest user message, for relevance-based sections


PromptSection = Callable[[PromptContext], Awaitable[str]]


class PromptBuilder:
    def __init__(self, base: str = BASE_PROMPT, extra: str = "", sections: list[PromptSection] | None = None):
        self.base = base
        self.extra = extra
        self.sections: list[PromptSection] = list(sections or [])

    def add_section(self, section: PromptSection) -> None:
        self.sections.append(section)

    async def build(self, ctx: PromptContext) -> str:
        parts = [self.base.strip()]
        if self.extra.strip():
            parts.append(self.extra.strip())
        for section in self.sections:
            text = (await section(ctx)).strip()
            if text:
                parts.append(text)
        return "\n\n".join(parts)
