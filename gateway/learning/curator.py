"""The skill curator: merge near-duplicate skills into one and fold appended notes into the procedure.

    hermes skills curate            # dry run: prints what it would do, calls no model
    hermes skills curate --apply    # asks the model for each merge, then writes it

The library's near-duplicate pairs come from `skills.similar` (the same check a review's create
passes); pairs are grouped (A~B, B~C: one group), and the skill to keep is the most used one
(then the oldest). Skills whose text carries appended notes ("Seen again", "Note (2024-...)")
are folded too. For each group the model gets the full texts and answers with one SKILL.md
under the kept name; it is written with the skills guard and the size limit, and every
merged-away skill is deleted through the library, so its files stay in the history and
`hermes skills revert NAME N` brings it back. Nothing is deleted outright.

The gateway runs `--apply` on `[learning] curate_cron` (default Sundays 04:00, "" = never)
with `curate_loop`, which also posts the "Learned" messages of approvals made from the CLI.
Protected skills (bundled, installed, a person's) are left alone by the scheduled run; a
person running `--apply` may merge them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.skill_writes import checkpoint_policy
from skills.document import SkillFormatError, parse
from skills.library import Skill, SkillError, SkillLibrary
from skills.similar import SkillDeduplicator, SkillText

log = logging.getLogger(__name__)

NOTE_LINE = re.compile(r"(?im)^\s*[-*]?\s*(?:\*\*)?(seen again|also seen|observed again|happened again|"
                       r"note \(\d{4}|update \(\d{4}|addendum)\b")
FENCE = re.compile(r"^```(?:markdown|md)?\s*\n(.*?)\n```\s*$", re.DOTALL)
CURATE_SYSTEM = """You maintain a library of SKILL.md procedures. You are given skills that describe the \
same procedure (near duplicates) or that carry notes appended at the end instead of being folded into the \
procedure. Write ONE skill that replaces them: keep every correct, useful step, command, pitfall and \
verification from all of them; fold each appended note into the step it concerns (rewrite the step, do not \
keep "Seen again" or dated notes); drop repetition. Keep the front matter with the given name and a \
description (what it does and when to use it, at most 1024 characters), then the sections When to use, \
Procedure (numbered steps with exact commands), Pitfalls, Verification. Never add commands that were not in \
the originals. Answer with the complete SKILL.md text only."""

Complete = Callable[[list[dict[str, Any]]], Awaitable[str]]
"""messages -> the model's answer text."""


@dataclass
class Group:
    """Skills to become one: `keep` stays (rewritten), `merge` are folded into it and deleted (history kept)."""

    keep: str
    merge: list[str]
    scores: list[tuple[str, str, float]] = field(default_factory=list)
    notes: bool = False

    def describe(self) -> str:
        if not self.merge:
            return f"fold the appended notes of {self.keep} into its procedure"
        pairs = ", ".join(f"{a}~{b} {score:.2f}" for a, b, score in self.scores)
        return f"merge {', '.join(self.merge)} into {self.keep} (similar: {pairs})"


@dataclass
class CurateReport:
    applied: bool
    groups: list[Group] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.groups:
            return ["nothing to curate: no near-duplicate skills and no appended notes"]
        head = "curated:" if self.applied else "would (dry run; --apply to write):"
        out = [head] + [f"- {g.describe()}" for g in self.groups]
        out += [f"done: {d}" for d in self.done] + [f"skipped: {s}" for s in self.skipped]
        return out


def _rank(skill: Skill) -> tuple[int, str, str]:
    return (-skill.use_count, skill.document.metadata.get("created", "~"), skill.name)


async def plan(library: SkillLibrary, dedup: SkillDeduplicator) -> list[Group]:
    """Groups of near duplicates (and skills with appended notes) in `library`."""
    snapshot = await library.snapshot(force=True)
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    scores: list[tuple[str, str, float]] = []
    for skill in snapshot.skills:
        candidate = SkillText(skill.name, skill.description, skill.document.body)
        for match in await dedup.duplicates(library, candidate, exclude=(skill.name,)):
            a, b = sorted((skill.name, match.name))
            if (a, b) in {(x, y) for x, y, _ in scores}:
                continue
            scores.append((a, b, match.lexical if match.semantic is None else max(match.lexical, match.semantic)))
            parent[find(b)] = find(a)
    members: dict[str, list[str]] = {}
    for a, b, _ in scores:
        for name in (a, b):
            root = find(name)
            if name not in members.setdefault(root, []):
                members[root].append(name)
    groups: list[Group] = []
    grouped: set[str] = set()
    for names in members.values():
        skills = sorted((snapshot.by_name[n] for n in names if n in snapshot.by_name), key=_rank)
        keep, rest = skills[0].name, [s.name for s in skills[1:]]
        group_scores = [s for s in scores if s[0] in names]
        noted = any(NOTE_LINE.search(s.document.body) for s in skills)
        groups.append(Group(keep, rest, group_scores, noted))
        grouped.update(names)
    for skill in snapshot.skills:
        if skill.name not in grouped and NOTE_LINE.search(skill.document.body):
            groups.append(Group(skill.name, [], [], True))
    return groups


def _answer_text(answer: str) -> str:
    text = answer.strip()
    match = FENCE.match(text)
    return match.group(1).strip() + "\n" if match else text + "\n"


async def curate(library: SkillLibrary, dedup: SkillDeduplicator, complete: Complete | None, *, apply: bool,
                 max_skill_chars: int, allow_protected: bool, origin: str = "curator") -> CurateReport:
    """Plan, and with `apply` ask the model for each group and write the result."""
    groups = await plan(library, dedup)
    report = CurateReport(apply, groups)
    if not apply:
        return report
    if complete is None:
        raise ValueError("applying a curation needs a model")
    policy = checkpoint_policy(max_skill_chars, protect=False)
    for group in groups:
        names = [group.keep, *group.merge]
        if not allow_protected:
            protected = [n for n in names if await library.is_protected(n)]
            if protected:
                report.skipped.append(f"{group.describe()}: {', '.join(protected)} protected (run "
                                      "`hermes skills curate --apply` yourself to merge them)")
                continue
        try:
            texts = {n: await library.read(n) for n in names}
        except SkillError as exc:
            report.skipped.append(f"{group.describe()}: {exc}")
            continue
        request = (f"Name of the merged skill: {group.keep}\n\n"
                   + "\n\n".join(f"=== {n}/SKILL.md ===\n{t}" for n, t in texts.items()))
        try:
            merged = _answer_text(await complete([{"role": "system", "content": CURATE_SYSTEM},
                                                  {"role": "user", "content": request}]))
            document = parse(merged).document
            if document.name != group.keep:
                raise SkillError(f"the model named the merged skill {document.name!r}, not {group.keep!r}")
            await library.edit(group.keep, merged, f"{origin}: merged {', '.join(names)}", policy)
        except (SkillError, SkillFormatError) as exc:
            report.skipped.append(f"{group.describe()}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one failed model call must not stop the rest
            report.skipped.append(f"{group.describe()}: the model call failed: {type(exc).__name__}: {exc}")
            continue
        for name in group.merge:
            await library.delete(name, f"{origin}: merged into {group.keep}")
        report.done.append(group.describe())
    return report


def llm_complete(llm: Any) -> Complete:
    """A `Complete` from an `agent.llm.LLMClient`."""
    async def complete(messages: list[dict[str, Any]]) -> str:
        response = await llm.complete(messages, stream=False)
        return str(response.message.get("content") or "")

    return complete


async def curate_loop(runtime: Any, poll: float = 5.0, fence: Callable[[], Awaitable[bool]] | None = None) -> None:
    """In the gateway: post pending "Learned" messages of CLI approvals, and run the curator on
    `[learning] curate_cron` for every team library in use (cancel the task to stop). It is a
    cluster duty: `await fence()` before each round says whether this process still owns it."""
    from gateway.cron.schedule import ScheduleError, parse_schedule

    settings = runtime.config.learning
    schedule = None
    if settings.curate_cron:
        try:
            schedule = parse_schedule(settings.curate_cron, runtime.config.cron.timezone)
        except ScheduleError as exc:
            log.error("learning.curate_cron %r is not a valid schedule (%s); the curator will not run",
                      settings.curate_cron, exc)
    due = schedule.next_after(datetime.now(UTC)) if schedule is not None else None
    while True:
        await asyncio.sleep(poll)
        learning = runtime.services.get("learning")
        if learning is None or (fence is not None and not await fence()):
            continue
        try:
            await learning.announce_approved()
        except Exception:  # noqa: BLE001 - announcing must not stop the loop
            log.exception("could not announce approved proposals")
        if due is None or datetime.now(UTC) < due:
            continue
        due = schedule.next_after(datetime.now(UTC)) if schedule is not None else None
        await run_scheduled(runtime, learning)


async def run_scheduled(runtime: Any, learning: Any) -> list[CurateReport]:
    """One scheduled curation of every team's library (protected skills left alone)."""
    teams = [""] + [t.name for t in getattr(runtime.config, "teams", [])]
    reports = []
    for team in teams:
        try:
            library = await learning.library_for(team)
            dedup = runtime.services.get("skill_dedup") or SkillDeduplicator()
            report = await curate(library, dedup, llm_complete(learning.llm), apply=True,
                                  max_skill_chars=runtime.config.skills.max_skill_chars, allow_protected=False,
                                  origin="curator (scheduled)")
        except Exception:  # noqa: BLE001 - one team's failure must not stop the others
            log.exception("scheduled skill curation of team %r failed", team)
            continue
        for line in report.lines():
            log.info("curator (team %r): %s", team, line)
        reports.append(report)
    return reports
