"""The skills part of the system prompt: a compact index, never the whole library.

`select` picks the skills most relevant to the conversation (BM25 hits for the latest message,
then the most used skills) that fit a token budget; `render` turns a selection into text. The
rendered text depends only on the selected skills (sorted by name), so it is byte-identical
while the selection stays the same. `IndexSelector` keeps each session's selection until the
topic changes (the best hits for a new message are not in it), so the prompt prefix, and the
provider's prompt cache, survive ordinary follow-up turns.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from skills.search import estimate_tokens

HEADER = ("## Skills\nProcedures from your skill library. When one fits the task, load it with "
          "skill_view(name) and follow it; improve it with skill_manage when you learn something.")
MAX_DESCRIPTION_CHARS = 180
MAX_ENTRIES = 25
TOPIC_HITS = 3
"""A new message keeps the old selection when its best TOPIC_HITS hits are all already in it."""


class IndexedSkill(Protocol):
    name: str

    @property
    def description(self) -> str: ...

    @property
    def use_count(self) -> int: ...


class SearchableSnapshot(Protocol):
    skills: Sequence[IndexedSkill]

    def get(self, name: str) -> IndexedSkill | None: ...

    def search(self, query: str, limit: int = 10) -> Sequence[object]: ...


def _short(description: str) -> str:
    text = " ".join(description.split())
    if len(text) <= MAX_DESCRIPTION_CHARS:
        return text
    cut = text[:MAX_DESCRIPTION_CHARS].rsplit(" ", 1)[0].rstrip(".,;:")
    return cut + "..."


def entry_line(skill: IndexedSkill) -> str:
    return f"- {skill.name}: {_short(skill.description)}"


def footer(total: int) -> str:
    return f"{total} skill{'' if total == 1 else 's'} in all; use skill_search to find others."


def render(skills: Sequence[IndexedSkill], total: int) -> str:
    """The index text for this selection (sorted by name: same selection, same bytes)."""
    if total == 0:
        return ""
    lines = [HEADER, *(entry_line(s) for s in sorted(skills, key=lambda s: s.name)), footer(total)]
    return "\n".join(lines)


def select(snapshot: SearchableSnapshot, query: str, budget_tokens: int,
           max_entries: int = MAX_ENTRIES) -> tuple[str, ...]:
    """Names of the skills to list: relevant first, then most used, within the budget."""
    candidates: list[str] = []
    if query.strip():
        candidates.extend(hit.key for hit in snapshot.search(query, max_entries))  # type: ignore[attr-defined]
    by_use = sorted((s for s in snapshot.skills if s.use_count > 0), key=lambda s: (-s.use_count, s.name))
    candidates.extend(s.name for s in by_use[: max_entries])
    if len(snapshot.skills) <= max_entries:  # a small library: everything may fit
        candidates.extend(s.name for s in snapshot.skills)
    total = len(snapshot.skills)
    used = estimate_tokens(HEADER) + estimate_tokens(footer(total)) + 2
    chosen: list[str] = []
    for name in dict.fromkeys(candidates):
        skill = snapshot.get(name)
        if skill is None:
            continue
        cost = estimate_tokens(entry_line(skill)) + 1
        if used + cost > budget_tokens:
            continue
        chosen.append(name)
        used += cost
        if len(chosen) >= max_entries:
            break
    return tuple(sorted(chosen))


@dataclass
class _Remembered:
    selection: tuple[str, ...]


class IndexSelector:
    """Per-session selection memory (bounded), so the prompt changes only with the topic."""

    def __init__(self, budget_tokens: int, max_sessions: int = 1_000) -> None:
        self.budget_tokens = budget_tokens
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, _Remembered] = OrderedDict()

    def text(self, snapshot: SearchableSnapshot, session: str, query: str) -> str:
        previous = self._sessions.get(session)
        selection: tuple[str, ...] | None = None
        if previous is not None and len(snapshot.skills) > MAX_ENTRIES:
            still_there = all(snapshot.get(n) is not None for n in previous.selection)
            hits = [h.key for h in snapshot.search(query, TOPIC_HITS)] if query.strip() else []  # type: ignore[attr-defined]
            if still_there and all(h in previous.selection for h in hits):
                selection = previous.selection
        if selection is None:
            selection = select(snapshot, query, self.budget_tokens)
        self._sessions[session] = _Remembered(selection)
        self._sessions.move_to_end(session)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        skills = [s for s in (snapshot.get(n) for n in selection) if s is not None]
        return render(skills, len(snapshot.skills))
