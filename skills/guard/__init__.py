"""The skills guard: scans a skill (SKILL.md and every supporting file) before it is installed
or written, for prompt injection, hidden instructions, exfiltration, destructive commands,
persistence, download-and-run, obfuscation and scripts reaching outside the skill's folder.

    report = scan_folder(Path("some-skill"))       # GuardReport: .verdict safe|caution|dangerous
    report = guard_skill_text(skill_md, {"scripts/run.sh": text})
    print(report.describe())                          # each finding's file, line and rule
"""

from skills.guard.model import RULES, Finding, GuardReport, Severity, Verdict
from skills.guard.scanner import guard_skill_text, scan_folder, scan_text

__all__ = ["RULES", "Finding", "GuardReport", "Severity", "Verdict", "guard_skill_text", "scan_folder",
           "scan_text"]
