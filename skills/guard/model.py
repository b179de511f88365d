"""The guard's vocabulary: rules, findings, verdicts and the report a user (or the model) reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["caution", "dangerous"]
Verdict = Literal["safe", "caution", "dangerous"]

RULES: dict[str, str] = {
    "prompt-injection": "text that tries to override the agent's instructions",
    "hidden-instructions": "instructions to the model hidden from a human reader (HTML comments, hidden markup)",
    "exfiltration": "sending environment variables, keys or credential files to a network address",
    "destructive": "commands that destroy data or systems",
    "persistence": "installing itself to run again later (cron, shell rc files, ssh keys, services)",
    "download-exec": "downloading or decoding code and running it at once",
    "obfuscation": "encoded blobs, invisible or bidirectional Unicode that hide what the text does",
    "outside-folder": "a script that reads or writes outside the skill's own folder",
    "reverse-shell": "a shell handed to a remote machine over a socket (/dev/tcp, nc -e, socket + dup2)",
    "unscannable": "a file the guard cannot read (binary executable, link, oversize)",
}


@dataclass(frozen=True)
class Finding:
    """One match: where it is, which rule, how bad, and why.

    `excerpt` is the decoded text that triggered the rule (after normalisation, variable
    resolution, escape or base64 decoding); `raw` is the line as written when it differs.
    """

    file: str
    line: int
    rule: str
    severity: Severity
    message: str
    excerpt: str = ""
    raw: str = ""
    context: str = ""
    """Where the line is (SKILL.md's instructions, a code block under which heading, a script, a
    reference, an example, a template) and what that made of its level."""
    around: tuple[str, ...] = ()
    """The lines just before and after it, numbered, as the reader sees them."""

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["around"] = list(self.around)
        return data

    def explain(self) -> str:
        """The finding with its rule, its line and the context that decided its level."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        lines = [f"{self.severity.upper():<9} {where}  [{self.rule}] {self.message}",
                 f"  rule:    {self.rule}: {RULES.get(self.rule, '')}"]
        if self.excerpt or self.raw:
            lines.append(f"  line {self.line}: {self.raw or self.excerpt}" if self.line else f"  text:    {self.raw or self.excerpt}")
        if self.raw and self.excerpt:
            lines.append(f"  reads as: {self.excerpt}")
        if self.context:
            lines.append(f"  context: {self.context}")
        lines.append("  level:   " + ("dangerous: the skill is refused (quarantined on install) unless forced"
                                      if self.severity == "dangerous" else
                                      "caution: installs only when accepted (--yes or the prompt)"))
        if self.around:
            lines.append("  around:  " + "\n           ".join(self.around))
        return "\n".join(lines)

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{self.severity.upper():<9} {where}  [{self.rule}] {self.message}"
        text += f"\n          > {self.excerpt}" if self.excerpt else ""
        return text + (f"\n          (as written: {self.raw})" if self.raw else "")


@dataclass
class GuardReport:
    """The verdict on one skill (a folder, or SKILL.md text plus supporting files)."""

    name: str
    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0

    @property
    def verdict(self) -> Verdict:
        severities = {f.severity for f in self.findings}
        if "dangerous" in severities:
            return "dangerous"
        if "caution" in severities:
            return "caution"
        return "safe"

    @property
    def rules(self) -> list[str]:
        return sorted({f.rule for f in self.findings})

    def dangerous_keys(self) -> set[tuple[str, str, str]]:
        """(file, rule, decoded text) of each dangerous finding: stable across edits that move lines."""
        return {(f.file, f.rule, f.excerpt) for f in self.findings if f.severity == "dangerous"}

    def only_removes_danger(self, before: GuardReport) -> bool:
        """True when this report (after an edit) has no dangerous finding that `before` did not have and
        fewer of them: an edit that cleans up an already-dangerous skill, the one write such a skill allows."""
        after = self.dangerous_keys()
        previous = before.dangerous_keys()
        return after <= previous and len(after) < len(previous)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "verdict": self.verdict, "files_scanned": self.files_scanned,
                "findings": [f.to_dict() for f in self.findings]}

    def explain(self, limit: int = 200) -> str:
        """`describe` with, for each finding, its rule, its line and the context that decided its level."""
        counts = {level: sum(f.severity == level for f in self.findings) for level in ("dangerous", "caution")}
        head = f"guard verdict for {self.name!r}: {self.verdict} ({counts['dangerous']} dangerous, " \
               f"{counts['caution']} caution finding(s), {self.files_scanned} file(s) scanned)"
        why = {"dangerous": "a dangerous finding refuses the skill", "caution": "caution findings only: it installs "
               "when accepted", "safe": "nothing found"}[self.verdict]
        ordered = sorted(self.findings, key=lambda f: (f.severity != "dangerous", f.file, f.line))
        lines = [head, f"  ({why})", *(f.explain() for f in ordered[:limit])]
        if len(ordered) > limit:
            lines.append(f"... and {len(ordered) - limit} more")
        return "\n".join(lines)

    def describe(self, limit: int = 50) -> str:
        """A human (and model) readable report: the verdict, then one block per finding."""
        head = f"guard verdict for {self.name!r}: {self.verdict} ({len(self.findings)} finding(s), " \
               f"{self.files_scanned} file(s) scanned)"
        ordered = sorted(self.findings, key=lambda f: (f.severity != "dangerous", f.file, f.line))
        lines = [head, *(f.describe() for f in ordered[:limit])]
        if len(ordered) > limit:
            lines.append(f"... and {len(ordered) - limit} more")
        return "\n".join(lines)
