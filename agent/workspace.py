"""A session's workspace: the one directory its file and shell tools may touch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skills.paths import PathEscapeError, safe_join

__all__ = ["PathEscapeError", "Workspace"]


@dataclass(frozen=True)
class Workspace:
    root: Path

    def ensure(self) -> Workspace:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def resolve(self, path: str) -> Path:
        """The absolute path for `path` (relative to the workspace), refused outside it."""
        if path in ("", "."):
            return self.root.resolve()
        return safe_join(self.root, path)

    def relative(self, path: Path) -> str:
        rel = path.resolve().relative_to(self.root.resolve())
        return str(rel) or "."
