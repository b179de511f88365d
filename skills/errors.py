"""What the skill library refuses: `SkillError` (the message says why and what to do instead),
`SkillNotFound`, and `SkillRefused` (a write a `WritePolicy` refuses, with the check's kind)."""

from __future__ import annotations

from typing import Literal

from skills.guard import GuardReport


class SkillError(Exception):
    """A request the library refuses; the message says why and what to do instead."""


class SkillNotFound(SkillError):
    pass


RefusalKind = Literal["guard", "duplicate", "protected", "size", "mode", "invalid", "budget"]


class SkillRefused(SkillError):
    """A write a `WritePolicy` refuses; `kind` says which check (guard, protected, size...)."""

    def __init__(self, kind: RefusalKind, message: str, report: GuardReport | None = None) -> None:
        super().__init__(message)
        self.kind: RefusalKind = kind
        self.report = report
