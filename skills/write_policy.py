"""What a write must pass, under the skill's lock and on the final text as it will be stored:
`WritePolicy` says which checks apply (the skills guard, size limits for SKILL.md and for a
supporting file, protection) and whose write it is; `check` refuses with `SkillRefused`;
`after_write` keeps or ends the checkpoint's provenance as the writer says."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal, Protocol

from skills.errors import SkillRefused
from skills.guard import GuardReport, guard_skill_text

Writer = Literal["checkpoint", "person", "none"]


@dataclass(frozen=True)
class WritePolicy:
    """Checks run under the skill's lock on the final text, and whose write it is.

    writer: "checkpoint" keeps (or, for a create, starts) the skill's checkpoint provenance;
    "person" ends it (the skill becomes protected); "none" leaves it as it is.
    """

    guard: bool = False
    protect: bool = False
    max_skill_chars: int | None = None
    max_file_chars: int | None = None
    writer: Writer = "person"


PERSON = WritePolicy()


class Ownership(Protocol):
    """Whether `text` is what a checkpoint last wrote to the skill (a write's changes answer it)."""

    def owned(self, text: str) -> bool: ...


class Owners(Protocol):
    """Where a write records whose the skill is now (the write's changes)."""

    def set_owner(self, text: str | None, origin: str = "") -> None: ...


def _dangerous(report: GuardReport) -> Counter[tuple[str, str, str]]:
    return Counter((f.file, f.rule, f.excerpt) for f in report.findings if f.severity == "dangerous")


def check(policy: WritePolicy, name: str, before: str | None, after: str | None, changes: Ownership,
          files: dict[str, str] | None = None, file_before: str | None = None) -> None:
    """Refuse (SkillRefused) what `policy` forbids; call under the skill's lock, before writing."""
    if policy.protect and before is not None and not changes.owned(before):
        raise SkillRefused("protected", (
            f"skill {name!r} is protected: no checkpoint of this library created it (it is bundled, installed "
            "or was written or edited by a person), so a review may not rewrite it. Propose a patch instead "
            "(skill_manage action=patch): it becomes a proposal an admin approves."))
    if policy.max_skill_chars and after is not None and len(after) > policy.max_skill_chars:
        raise SkillRefused("size", (
            f"SKILL.md would be {len(after)} characters; the limit is {policy.max_skill_chars} "
            "([skills] max_skill_chars). Keep the procedure short: move long reference material into a "
            "supporting file (write_file references/...) and cut repetition."))
    for path, text in (files or {}).items():
        if policy.max_file_chars and len(text) > policy.max_file_chars:
            raise SkillRefused("size", (
                f"{path} would be {len(text)} characters; the limit for a supporting file is "
                f"{policy.max_file_chars}. Nothing was written: keep the file focused."))
    if not policy.guard:
        return
    if files:
        report = guard_skill_text("", files, name=name)
        previous = guard_skill_text("", {k: file_before for k in files}, name=name) \
            if file_before is not None else None
    elif after is not None:
        report = guard_skill_text(after, name=name)
        previous = guard_skill_text(before, name=name) if before is not None else None
    else:
        return
    if report.verdict != "dangerous":
        return
    now = _dangerous(report)
    if previous is not None:
        was = _dangerous(previous)
        if was and not (now - was) and sum(now.values()) < sum(was.values()):
            return  # the skill was already dangerous and this write removes findings without adding any
    raise SkillRefused("guard", (
        "refused by the skills guard, nothing was written. Remove what it flags (skills must not carry "
        "such commands or instructions):\n" + report.describe()), report)


def after_write(changes: Owners, policy: WritePolicy, created: bool, owned_before: bool, text: str | None,
                origin: str) -> None:
    """Keep, start or end the checkpoint's provenance as `policy.writer` says."""
    if policy.writer == "checkpoint":
        if created or owned_before:
            changes.set_owner(text, origin)
    elif policy.writer == "person":
        changes.set_owner(None)
