"""`skills.lock` in the library root: for every skill installed by the hub, where it came from,
the ref (commit or version) and the hashes of its files. JSON, sorted, written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from skills.hub.errors import HubError

LOCK_FILE = "skills.lock"
LOCK_VERSION = 1


@dataclass
class LockEntry:
    name: str
    source: str
    """`github:owner/repo/path`, `tap:TAP/NAME`, `index:URL#NAME`, `url:ARCHIVE` or `local:PATH`."""
    url: str
    """What the source needs to fetch again without local configuration (repo URL, index URL ...)."""
    ref: str
    hash: str
    category: str
    files: dict[str, str] = field(default_factory=dict)
    version: str = ""
    verdict: str = "safe"
    installed_at: str = ""

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("name")
        return data


@dataclass
class LockFile:
    path: Path
    entries: dict[str, LockEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> LockFile:
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            skills = data.get("skills", {})
            entries = {name: LockEntry(name=name, **values) for name, values in skills.items()}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise HubError(f"{path}: not a valid lock file ({exc})") from exc
        return cls(path, entries)

    def save(self) -> None:
        data = {"version": LOCK_VERSION,
                "skills": {name: self.entries[name].to_dict() for name in sorted(self.entries)}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)
