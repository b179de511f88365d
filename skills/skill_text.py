"""The text a write stores, worked out before anything is written: SKILL.md parsed and checked
for a write, rendered strictly, a patch or an edit applied (version bumped, creation time and
usage counters kept), a supporting file's path inside its skill's folder, the atomic write
itself, and the message for a patch whose old text does not occur exactly once."""

from __future__ import annotations

import difflib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from skills.document import SkillDocument, SkillFormatError, parse
from skills.errors import SkillError
from skills.history import SKILL_FILE
from skills.paths import PathEscapeError, safe_join
from skills.validate import document_problems, strict_render

DEFAULT_CATEGORY = "general"
MAX_SUPPORTING_FILE = 1_000_000


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def supporting_path(folder: Path, file: str, must_exist: bool = False) -> Path:
    try:
        target = safe_join(folder, *Path(file).parts) if file and not os.path.isabs(file) \
            else safe_join(folder, file)
    except PathEscapeError as exc:
        raise SkillError(f"{exc}; supporting files must stay inside the skill's folder") from exc
    relative = target.relative_to(folder.resolve())
    if not relative.parts or relative.as_posix() == SKILL_FILE:
        raise SkillError("use action 'edit' or 'patch' to change SKILL.md itself")
    if any(part.startswith(".") for part in relative.parts):
        raise SkillError(f"{file}: hidden files are not allowed in a skill")
    if must_exist and not target.is_file():
        raise SkillError(f"{file}: no such file in skill {folder.name!r}")
    return target


def write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def parse_for_write(text: str, name: str) -> SkillDocument:
    try:
        document = parse(text).document
    except SkillFormatError as exc:
        raise SkillError(f"invalid SKILL.md: {exc}") from exc
    if document.name != name:
        raise SkillError(f"the front matter says name {document.name!r} but the skill is {name!r}; "
                         "they must be equal")
    return document


def render_checked(document: SkillDocument, name: str) -> str:
    problems = document_problems(document, name)
    if problems:
        raise SkillError("the result would not be a valid skill, nothing was written: " + "; ".join(problems))
    return strict_render(document, name)


def next_version(metadata: dict[str, str]) -> str:
    current = metadata.get("version", "0")
    return str(int(current) + 1) if current.isdigit() else current


def patched(before: str, old_text: str, new_text: str, name: str) -> str:
    """SKILL.md as `patch` would store it (front matter decoded and rendered again)."""
    count = before.count(old_text)
    if count != 1:
        raise SkillError(describe_mismatch(before, old_text, count))
    document = parse_for_write(before.replace(old_text, new_text, 1), name)
    document = document.with_metadata(version=next_version(document.metadata), updated=now_iso())
    return render_checked(document, name)


def edited(before: str, document: SkillDocument, name: str) -> str:
    """SKILL.md as `edit` would store it (`before`: the text now): creation time and usage counters kept."""
    current = parse_for_write(before, name).metadata
    kept = {k: v for k, v in current.items() if k in ("created", "origin", "use_count", "last_used")}
    final = document.with_metadata(**kept)
    final = final.with_metadata(version=next_version(current), updated=now_iso())
    return render_checked(final, name)


def describe_mismatch(text: str, old_text: str, count: int) -> str:
    """The error for a patch whose `old_text` does not occur exactly once."""
    if count > 1:
        lines = [text[:m].count("\n") + 1 for m in _occurrences(text, old_text)]
        return (f"old_text occurs {count} times (at lines {', '.join(map(str, lines))}); "
                "include more surrounding text so it matches exactly once")
    closest = closest_passage(text, old_text)
    hint = f"\nThe closest passage is:\n{closest}" if closest else ""
    return f"old_text occurs 0 times in SKILL.md; copy the exact text (skill_view shows it).{hint}"


def _occurrences(text: str, needle: str) -> Iterator[int]:
    start = text.find(needle)
    while start != -1:
        yield start
        start = text.find(needle, start + 1)


def closest_passage(text: str, needle: str) -> str:
    """The run of lines in `text` most similar to `needle`, with line numbers."""
    lines = text.splitlines()
    width = max(1, len(needle.splitlines()))
    best, best_ratio = 0, -1.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(needle)
    for start in range(max(1, len(lines) - width + 1)):
        matcher.set_seq1("\n".join(lines[start:start + width]))
        if matcher.real_quick_ratio() <= best_ratio or matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best, best_ratio = start, ratio
    if best_ratio <= 0:
        return ""
    return "\n".join(f"{n + 1:>4}| {lines[n]}" for n in range(best, min(len(lines), best + width)))
