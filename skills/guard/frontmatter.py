"""SKILL.md front matter as the library reads it: decoded values, and hostile YAML refused.

The library stores and shows the decoded values (`"\\x63url ... | bash"` is `curl ... | bash`),
so the guard scans those, each attributed to the line its key starts on. Aliases, anchors, tags
and oversize blocks are refused by the same loader the library uses (`skills.document`).
"""

from __future__ import annotations

import re
from typing import Any

from skills.document import SkillFormatError, load_front_matter, split_front_matter

HOSTILE = ("aliases", "anchors", "tags", "the limit is", "more than")


def _strings(value: Any, key: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _strings(v, str(k))]
    if isinstance(value, list):
        return [item for v in value for item in _strings(v, key)]
    return []


def decoded_values(text: str) -> tuple[list[tuple[int, str]], str | None, bool]:
    """([(line, decoded value)], problem, hostile) for SKILL.md text. `problem` is why the front
    matter cannot be read; `hostile` is True when it was refused as an attack (alias bomb, tags)."""
    try:
        raw_front, _ = split_front_matter(text)
    except SkillFormatError as exc:
        return [], str(exc), False
    try:
        data = load_front_matter(raw_front)
    except SkillFormatError as exc:
        message = str(exc)
        return [], message, any(word in message for word in HOSTILE)
    lines = raw_front.splitlines()
    found: list[tuple[int, str]] = []
    for key, value in _strings(data, ""):
        number = 2
        for index, line in enumerate(lines):
            if re.match(rf"\s*['\"]?{re.escape(key)}['\"]?\s*:", line):
                number = index + 2
                break
        found.append((number, value))
    return found, None, False
