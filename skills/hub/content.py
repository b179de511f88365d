"""Hashing a skill's files for `skills.lock` and `verify`.

SKILL.md is hashed by what it says (the document's fingerprint, ignoring the usage counters the
library updates on every use, and the formatting the library normalises); other files by their
bytes. Hidden files and folders are not part of a skill.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from skills.document import SkillFormatError, parse, render

SKILL_FILE = "SKILL.md"


def skill_file_hash(data: bytes) -> str:
    try:
        document = parse(data.decode("utf-8")).document
        return "doc:" + parse(render(document)).document.fingerprint()
    except (UnicodeDecodeError, SkillFormatError):
        return hashlib.sha256(data).hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """{relative path: hash} of every regular, non-hidden file in the skill's folder (sync)."""
    hashes: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(folder).as_posix()
            data = path.read_bytes()
            hashes[relative] = skill_file_hash(data) if relative == SKILL_FILE else hashlib.sha256(data).hexdigest()
    return hashes


def tree_hash(hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for relative, value in sorted(hashes.items()):
        digest.update(f"{relative}\0{value}\n".encode())
    return "sha256:" + digest.hexdigest()
