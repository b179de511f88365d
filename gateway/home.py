"""Where Hermes keeps its files: the home directory (`HERMES_HOME`, default `~/.hermes`).

Layout (public contract): `config.toml`, `state.db`, `skills/<category>/<name>/SKILL.md`,
`memories/`, `logs/`, `workspaces/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SUBDIRECTORIES = ("skills", "memories", "logs", "workspaces")


@dataclass(frozen=True)
class Home:
    """The resolved home directory and the paths inside it."""

    root: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Home:
        env = os.environ if environ is None else environ
        raw = env.get("HERMES_HOME") or "~/.hermes"
        return cls(Path(raw).expanduser().resolve())

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.env"

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    @property
    def skills_dir(self) -> Path:
        return self.root / "skills"

    @property
    def memories_dir(self) -> Path:
        return self.root / "memories"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def workspaces_dir(self) -> Path:
        return self.root / "workspaces"

    def ensure(self) -> Home:
        """Create the home and its subdirectories if they are missing (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in SUBDIRECTORIES:
            (self.root / name).mkdir(exist_ok=True)
        return self
