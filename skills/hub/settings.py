"""The hub's settings as plain data (the gateway maps its `[hub]` config section onto this)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TapSpec:
    """A tap: a git repository (`kind="git"`) or an HTTP index of skills (`kind="index"`)."""

    name: str
    url: str
    kind: str = "git"
    ref: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "kind": self.kind, "ref": self.ref}


@dataclass(frozen=True)
class HubSettings:
    github_api: str = "https://api.github.com"
    github_token: str = ""
    git_base: str = "https://github.com"
    """Where `owner/repo` tap shorthands point (a GitHub Enterprise host, for example)."""
    indexes: tuple[str, ...] = ()
    taps: tuple[TapSpec, ...] = ()
    timeout: float = 30.0
    max_file_bytes: int = 1_000_000
    max_total_bytes: int = 10_000_000
    max_files: int = 500
    allow_http: bool = False
    """Plain http:// sources (loopback addresses are always allowed, for tests and local mirrors)."""
    extra_headers: dict[str, str] = field(default_factory=dict)
