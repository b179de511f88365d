"""Which skills a checkpoint of this library last wrote, kept in `.history/provenance.json`:
{skill name: {"fingerprint", "origin", "time"}}. A skill without an entry, or whose SKILL.md no
longer matches its fingerprint (a person edited it, or it is bundled or installed), is protected.
With a version store the store's rows are the truth and this file is their copy."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skills.document import SkillFormatError, parse
from skills.history import HISTORY_DIR
from skills.skill_text import now_iso

PROVENANCE_FILE = "provenance.json"
PROVENANCE_LOCK = ".provenance"


def matches(owner: dict[str, Any] | None, text: str) -> bool:
    """Whether `text` is what a checkpoint last wrote (`owner`: its provenance entry)."""
    if owner is None:
        return False
    try:
        return parse(text).document.fingerprint() == owner.get("fingerprint")
    except SkillFormatError:
        return False


class ProvenanceFile:
    """The provenance file of the library at `root`; `file_lock(name)` is the library's
    cross-process lock, taken on PROVENANCE_LOCK around each rewrite."""

    def __init__(self, root: Path, file_lock: Callable[[str], contextlib.AbstractContextManager[None]]) -> None:
        self.path = root / HISTORY_DIR / PROVENANCE_FILE
        self._file_lock = file_lock

    def read(self) -> dict[str, dict[str, Any]]:
        """{skill name: entry} for skills a checkpoint last wrote (sync)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def owned(self, name: str, text: str) -> bool:
        return matches(self.read().get(name), text)

    def set(self, name: str, text: str | None, origin: str = "") -> None:
        """Record `text` as what a checkpoint last wrote to `name` (None: forget the skill)."""
        self.write(name, None if text is None else {
            "fingerprint": parse(text).document.fingerprint(), "origin": origin, "time": now_iso()})

    def write(self, name: str, value: dict[str, Any] | None) -> None:
        with self._file_lock(PROVENANCE_LOCK):
            data = self.read()
            if value is None:
                if data.pop(name, None) is None:
                    return
            else:
                data[name] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{PROVENANCE_FILE}.tmp-{os.getpid()}-{threading.get_ident()}")
            temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.path)
