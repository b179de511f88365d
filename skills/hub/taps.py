"""Taps: named skill sources added with `hermes skills tap add`, kept in a JSON file (plus any
listed in the config's `[hub]` section, which the CLI cannot remove)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from skills.hub.errors import HubError
from skills.hub.settings import HubSettings, TapSpec
from skills.validate import name_problems

SHORTHAND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")


def normalise(source: str, settings: HubSettings, kind: str = "") -> tuple[str, str]:
    """(url, kind) of a tap given as a URL, a local repository path or `owner/repo`."""
    source = source.strip()
    if source.startswith(("http://", "https://")):
        if kind == "index" or source.endswith(".json"):
            return source, "index"
        return source, "git"
    if source.startswith(("file://", "ssh://", "git://", "git@")):
        return source, "git"
    path = Path(source).expanduser()
    if path.exists():
        return str(path.resolve()), "git"
    if SHORTHAND.match(source):
        return f"{settings.git_base.rstrip('/')}/{source.removesuffix('.git')}.git", "git"
    raise HubError(f"{source!r}: not a tap; give a git URL, a local repository path, owner/repo, "
                   "or an https URL of an index .json")


def default_name(url: str) -> str:
    parts = urlsplit(url)
    tail = (parts.path or url).rstrip("/").rsplit("/", 1)[-1]
    if tail.endswith(".json"):
        tail = parts.hostname or "index"
    candidate = re.sub(r"[^a-z0-9]+", "-", tail.removesuffix(".git").lower()).strip("-")
    return candidate or "tap"


class TapStore:
    def __init__(self, path: Path, settings: HubSettings | None = None) -> None:
        self.path = path
        self.settings = settings or HubSettings()

    def _file_taps(self) -> list[TapSpec]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [TapSpec(**item) for item in data.get("taps", [])]
        except (OSError, ValueError, TypeError) as exc:
            raise HubError(f"{self.path}: not a valid taps file ({exc})") from exc

    def all(self) -> list[TapSpec]:
        taps = {t.name: t for t in self.settings.taps}
        for tap in self._file_taps():
            taps.setdefault(tap.name, tap)
        return [taps[name] for name in sorted(taps)]

    def get(self, name: str) -> TapSpec:
        for tap in self.all():
            if tap.name == name:
                return tap
        known = ", ".join(t.name for t in self.all()) or "none"
        raise HubError(f"there is no tap named {name!r} (taps: {known}); add one with `hermes skills tap add`")

    def find(self, name: str) -> TapSpec | None:
        return next((t for t in self.all() if t.name == name), None)

    def add(self, source: str, name: str = "", kind: str = "", ref: str = "") -> TapSpec:
        url, kind = normalise(source, self.settings, kind)
        name = name or default_name(url)
        problems = name_problems(name, "tap name")
        if problems:
            raise HubError("; ".join(problems))
        if self.find(name) is not None:
            raise HubError(f"a tap named {name!r} already exists; remove it first or pick another --name")
        tap = TapSpec(name=name, url=url, kind=kind, ref=ref)
        self._save([*self._file_taps(), tap])
        return tap

    def remove(self, name: str) -> TapSpec:
        taps = self._file_taps()
        match = next((t for t in taps if t.name == name), None)
        if match is None:
            if any(t.name == name for t in self.settings.taps):
                raise HubError(f"tap {name!r} comes from the config file ([hub] taps); remove it there")
            raise HubError(f"there is no tap named {name!r}")
        self._save([t for t in taps if t.name != name])
        return match

    def _save(self, taps: list[TapSpec]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        temporary.write_text(json.dumps({"taps": [t.to_dict() for t in taps]}, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)
