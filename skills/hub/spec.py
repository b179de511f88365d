"""Turning an install SPEC (or a `skills.lock` entry) into a source, a skill name and a ref.

SPEC forms: `owner/repo/path[@ref]` or `github:owner/repo/path[@ref]` (GitHub), `TAP/NAME[@ref]`
or `tap:TAP/NAME[@ref]` (a tap), `https://site[#NAME[@version]]` (a well-known index),
`https://host/x.tar.gz` (an archive), and a local folder or archive path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from skills.hub.checks import Budget
from skills.hub.errors import HubError
from skills.hub.net import Http
from skills.hub.settings import HubSettings, TapSpec
from skills.hub.sources import (
    ARCHIVE_SUFFIXES,
    ArchiveSource,
    Fetched,
    GitHubSource,
    GitTapSource,
    IndexSource,
    LocalSource,
    Offer,
)
from skills.hub.taps import TapStore


class Source(Protocol):
    label: str

    async def offers(self, http: Http) -> list[Offer]: ...

    async def fetch(self, http: Http, name: str | None, ref: str, dest: Path, budget: Budget) -> Fetched: ...


def tap_source(tap: TapSpec) -> Source:
    if tap.kind == "index":
        return IndexSource(tap.url, label=f"tap:{tap.name}", source_prefix=f"tap:{tap.name}/")
    return GitTapSource(tap)


def _split_ref(text: str) -> tuple[str, str]:
    head, sep, ref = text.rpartition("@")
    return (head, ref) if sep and head and "/" not in ref else (text, "")


def resolve(spec: str, settings: HubSettings, taps: TapStore | None) -> tuple[Source, str | None, str]:
    """(source, skill name or None when the source says, ref or "")."""
    spec = spec.strip()
    if not spec:
        raise HubError("empty SPEC")
    if spec.startswith(("http://", "https://")):
        parts = urlsplit(spec)
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        if parts.path.endswith(ARCHIVE_SUFFIXES):
            return ArchiveSource(base), None, ""
        name, ref = _split_ref(parts.fragment) if parts.fragment else ("", "")
        return IndexSource(base), name or None, ref
    if spec.startswith("local:"):
        return LocalSource(Path(spec[len("local:"):])), None, ""
    path = Path(spec).expanduser()
    if spec.startswith(("/", "./", "../", "~")) or path.exists():
        if not path.exists():
            raise HubError(f"{spec}: no such folder or archive")
        return LocalSource(path), None, ""
    body, ref = _split_ref(spec)
    if body.startswith("tap:"):
        tap_name, _, name = body[len("tap:"):].partition("/")
        if taps is None:
            raise HubError("no taps are configured")
        return tap_source(taps.get(tap_name)), name or None, ref
    if body.startswith("github:"):
        body = body[len("github:"):]
        forced_github = True
    else:
        forced_github = False
    parts = [p for p in body.split("/") if p]
    if not forced_github and len(parts) == 2 and taps is not None and taps.find(parts[0]) is not None:
        return tap_source(taps.get(parts[0])), parts[1], ref
    if len(parts) >= 3:
        return GitHubSource(parts[0], parts[1], "/".join(parts[2:]), settings), parts[-1], ref
    if len(parts) == 2 and taps is not None:
        raise HubError(f"{spec!r}: there is no tap named {parts[0]!r}; add it with `hermes skills tap add`, "
                       "or give a GitHub path owner/repo/path")
    raise HubError(f"{spec!r}: not a SPEC; use owner/repo/path[@ref], TAP/NAME, an index URL or a local folder")


def source_for_lock(source: str, url: str, settings: HubSettings) -> tuple[Source, str | None]:
    """Rebuild a source from a `skills.lock` entry (works without the taps or config it came from)."""
    kind, _, rest = source.partition(":")
    if kind == "tap":
        tap_name, _, name = rest.partition("/")
        is_index = url.startswith(("http://", "https://")) and url.endswith(".json")
        tap = TapSpec(name=tap_name, url=url, kind="index" if is_index else "git")
        return tap_source(tap), name
    if kind == "github":
        parts = rest.split("/")
        return GitHubSource(parts[0], parts[1], "/".join(parts[2:]), settings), parts[-1]
    if kind == "index":
        return IndexSource(url), rest.rpartition("#")[2] or None
    if kind == "url":
        return ArchiveSource(url), None
    if kind == "local":
        return LocalSource(Path(url)), None
    raise HubError(f"skills.lock: unknown source {source!r}")
