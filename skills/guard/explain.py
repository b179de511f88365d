"""Explanations: each finding with the context that decided its level (SKILL.md prose or which
code block under which heading, a script read as data flow or as written, a reference, an
example, a template or data file; why a caution was kept at caution) and the lines around it.
"""

from __future__ import annotations

import re
from dataclasses import replace

from skills.guard.kinds import PYTHON_LANGS, SHELL_LANGS, document_kind, is_python
from skills.guard.model import Finding

KIND_WORDS = {"instructions": "SKILL.md's instructions", "reference": "a reference document",
              "example": "an example document", "template": "a template or data file (markup, not instructions)",
              "container": "a container build file (its RUN steps run inside an image build, not on this machine)"}


def explain_findings(findings: list[Finding], file: str, text: str, script: bool) -> list[Finding]:
    """Each finding with its context: where the line is and what that made of its level, and the lines
    around it. Computed only for files with findings (one pass over the lines)."""
    if not findings:
        return findings
    lines = text.splitlines()
    kind = "script" if script else document_kind(file)
    places: dict[int, str] = {}
    if kind in ("instructions", "reference", "example"):
        heading, fence, lang = "", None, ""
        for number, line in enumerate(lines, start=1):
            marker = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
            if marker and fence is None:
                fence, lang = marker.group(1)[0], marker.group(2).lower() or "plain"
            elif marker and fence == marker.group(1)[0]:
                fence = None
            elif fence is None and line.lstrip().startswith("#"):
                heading = line.strip()[:80]
            under = f" under {heading!r}" if heading else ""
            if fence is not None:
                what = "commands the agent may run" if lang in SHELL_LANGS | {"plain"} | PYTHON_LANGS else "an example"
                places[number] = f"a {lang} code block in {KIND_WORDS[kind]}{under} ({what})"
            else:
                places[number] = f"prose in {KIND_WORDS[kind]}{under}"
    explained = []
    for f in findings:
        if kind == "script":
            where = "a Python script the skill ships (its code; help texts, docstrings and prints are not judged)" \
                if is_python(file, text) else "a script the skill ships (judged as it runs, variables resolved)"
        else:
            where = places.get(f.line, KIND_WORDS.get(kind, kind))
        reason = re.search(r"\(([^()]*)\)\s*$", f.message)
        level = f"; kept at caution: {reason.group(1)}" if f.severity == "caution" and reason else ""
        around = tuple(f"{n}| {lines[n - 1].strip()[:120]}" for n in (f.line - 1, f.line + 1)
                       if 1 <= n <= len(lines) and lines[n - 1].strip()) if f.line else ()
        explained.append(replace(f, context=where + level, around=around))
    return explained
