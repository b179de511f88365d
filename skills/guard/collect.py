"""Collecting findings for one file: one per (line, rule), the worst severity kept."""

from __future__ import annotations

from collections.abc import Callable

from skills.guard.model import Finding, Severity

EXCERPT = 200


def clip(text: str, limit: int = EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


class Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.found: dict[tuple[int, str], Finding] = {}

    def add(self, line: int, rule: str, severity: Severity, message: str, excerpt: str = "", raw: str = "") -> None:
        """Record a finding; `excerpt` is the decoded text that triggered it, `raw` the line as written
        when that differs (so a reader sees both what the file says and what it means)."""
        key = (line, rule)
        current = self.found.get(key)
        if current is not None and (current.severity == "dangerous" or severity == "caution"):
            return
        excerpt, raw = clip(excerpt), clip(raw)
        self.found[key] = Finding(self.file, line, rule, severity, message, excerpt,
                                  raw if raw and raw != excerpt else "")

    def has(self, line: int, rule: str, severity: Severity | None = None) -> bool:
        found = self.found.get((line, rule))
        return found is not None and (severity is None or found.severity == severity)

    def demote(self, line: int, reason: str, when: Callable[[Finding], bool] | None = None) -> None:
        """Documentation context: every dangerous finding on this line (for which `when` holds) becomes `caution`."""
        for key, finding in list(self.found.items()):
            if key[0] == line and finding.severity == "dangerous" and (when is None or when(finding)):
                self.found[key] = Finding(finding.file, finding.line, finding.rule, "caution",
                                          f"{finding.message} ({reason})", finding.excerpt, finding.raw)

    def findings(self) -> list[Finding]:
        return sorted(self.found.values(), key=lambda f: (f.line, f.rule))
