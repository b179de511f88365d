"""Where skills come from: a local folder or archive, a git tap, an HTTP index (a tap or a
well-known index), an archive URL, and a GitHub repository path. Each source lists what it
offers and fetches one skill into a staging folder; nothing here touches the library."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from skills.document import SkillFormatError, parse
from skills.hub import git
from skills.hub.archive import skill_root, unpack
from skills.hub.checks import Budget, copy_tree
from skills.hub.content import file_hashes, tree_hash
from skills.hub.errors import HubError
from skills.hub.github import GitHubApi
from skills.hub.net import Http
from skills.hub.settings import HubSettings, TapSpec
from skills.validate import name_problems

WELL_KNOWN = "/.well-known/skills/index.json"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
SKIP_DIRS = {".git", ".hg", ".svn", ".github", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache"}
"""Folders never searched for skills. Other hidden folders are: collections keep skills in
`.curated/`, `.system/` and `.experimental/`."""


@dataclass(frozen=True)
class Offer:
    """One skill a source offers (a row of `hermes skills browse`)."""

    name: str
    description: str
    source: str
    spec: str
    version: str = ""
    category: str = ""


@dataclass(frozen=True)
class Fetched:
    """What was staged: the skill's name, where it came from and the exact ref."""

    name: str
    source: str
    url: str
    ref: str
    category: str = ""
    version: str = ""
    folder: str = ""
    """The folder name the skill came in, when it differs from its `name` (reported as a note)."""

    @property
    def note(self) -> str:
        if self.folder and self.folder != self.name:
            return f"its folder is named {self.folder!r} but SKILL.md says name {self.name!r}; installed as {self.name!r}"
        return ""


def _category(folder: Path, top: Path) -> str:
    parent = folder.parent
    if parent == top or parent.name in ("skills", "") or name_problems(parent.name):
        return ""  # hidden folders (.curated, .system) fail the name check: no category
    return parent.name


def _description(skill_md: Path) -> str:
    try:
        return parse(skill_md.read_text(encoding="utf-8")).document.description
    except (OSError, UnicodeDecodeError, SkillFormatError):
        return ""


def declared_name(skill_md: Path) -> str | None:
    """The `name` a SKILL.md declares, or None when it cannot be read."""
    try:
        return parse(skill_md.read_text(encoding="utf-8")).document.name
    except (OSError, UnicodeDecodeError, SkillFormatError):
        return None


def skill_folders(top: Path, max_depth: int = 4) -> list[Path]:
    """Every folder holding a SKILL.md under `top` (not `top` itself), visible folders first; hidden
    folders are searched too (collections keep skills in `.curated/`, `.system/`), links are not."""
    folders: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(top):
        depth = len(Path(dirpath).relative_to(top).parts)
        dirnames[:] = sorted((d for d in dirnames if d not in SKIP_DIRS and not os.path.islink(os.path.join(dirpath, d))),
                             key=lambda d: (d.startswith("."), d)) if depth < max_depth else []
        if "SKILL.md" in filenames and Path(dirpath) != top:
            folders.append(Path(dirpath))
    return sorted(folders, key=lambda f: (any(p.startswith(".") for p in f.relative_to(top).parts), str(f)))


def find_skills(top: Path, max_depth: int = 4) -> dict[str, Path]:
    """{name: folder} of the skills in a checkout (sync), keyed by the `name` SKILL.md declares
    (the folder's name when it cannot be read); on a clash, a visible folder wins over a hidden one."""
    found: dict[str, Path] = {}
    for folder in skill_folders(top, max_depth):
        found.setdefault(declared_name(folder / "SKILL.md") or folder.name, folder)
    return found


def find_skill(top: Path, name: str) -> Path | None:
    """The folder of skill `name` in a checkout: by its declared name, else by its folder's name."""
    found = find_skills(top)
    if name in found:
        return found[name]
    return next((folder for folder in found.values() if folder.name == name), None)


def _skill_name(folder: Path, where: str) -> str:
    try:
        return parse((folder / "SKILL.md").read_text(encoding="utf-8")).document.name
    except FileNotFoundError as exc:
        raise HubError(f"{where}: no SKILL.md in {folder}") from exc
    except (OSError, UnicodeDecodeError, SkillFormatError) as exc:
        raise HubError(f"{where}: SKILL.md is not a valid skill: {exc}") from exc


def _stage(src: Path, dest: Path, budget: Budget) -> None:
    copy_tree(src, dest, budget)


class LocalSource:
    """A skill folder (or a .tar.gz/.zip of one) on this machine."""

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser().resolve()
        self.label = f"local:{self.path}"

    async def offers(self, http: Http) -> list[Offer]:
        found = await asyncio.to_thread(find_skills, self.path) if self.path.is_dir() else {}
        if self.path.is_dir() and (self.path / "SKILL.md").is_file():
            found = {self.path.name: self.path}
        return [Offer(n, _description(f / "SKILL.md"), self.label, str(f)) for n, f in sorted(found.items())]

    async def fetch(self, http: Http, name: str | None, ref: str, dest: Path, budget: Budget) -> Fetched:
        def work() -> Fetched:
            if not self.path.exists():
                raise HubError(f"{self.path}: no such folder or archive")
            if self.path.is_file():
                if not self.path.name.endswith(ARCHIVE_SUFFIXES):
                    raise HubError(f"{self.path}: not a skill folder or a .tar.gz/.zip archive")
                unpacked = dest.parent / "unpacked"
                unpacked.mkdir()
                unpack(self.path.read_bytes(), unpacked, budget)
                os.rename(skill_root(unpacked, name), dest)
            else:
                _stage(self.path, dest, budget)
            skill = _skill_name(dest, self.label)
            folder = self.path.name if self.path.is_dir() else ""
            return Fetched(skill, f"local:{self.path}", str(self.path), tree_hash(file_hashes(dest)), folder=folder)

        return await asyncio.to_thread(work)


class GitTapSource:
    """A tap backed by a git repository (any URL `git clone` takes, a local bare repository too)."""

    def __init__(self, tap: TapSpec) -> None:
        self.tap = tap
        self.label = f"tap:{tap.name}"

    async def _checkout(self, ref: str, into: Path) -> str:
        return await git.clone(self.tap.url, into, ref or self.tap.ref)

    async def offers(self, http: Http) -> list[Offer]:
        with tempfile.TemporaryDirectory(prefix="hermes-tap-") as temporary:
            checkout = Path(temporary) / "repo"
            await self._checkout("", checkout)

            def listing() -> list[Offer]:
                return [Offer(n, _description(f / "SKILL.md"), self.label, f"{self.tap.name}/{n}",
                              category=_category(f, checkout)) for n, f in sorted(find_skills(checkout).items())]

            return await asyncio.to_thread(listing)

    async def fetch(self, http: Http, name: str | None, ref: str, dest: Path, budget: Budget) -> Fetched:
        if not name:
            raise HubError(f"{self.label}: say which skill: {self.tap.name}/NAME")
        checkout = dest.parent / "checkout"
        commit = await self._checkout(ref, checkout)

        def work() -> Fetched:
            folder = find_skill(checkout, name)
            if folder is None:
                available = ", ".join(sorted(find_skills(checkout))) or "none"
                raise HubError(f"tap {self.tap.name!r} has no skill named {name!r} at {commit[:12]} "
                               f"(it has: {available})")
            _stage(folder, dest, budget)
            shutil.rmtree(checkout, ignore_errors=True)
            skill = _skill_name(dest, self.label)
            return Fetched(skill, f"tap:{self.tap.name}/{skill}", self.tap.url, commit, _category(folder, checkout),
                           folder=folder.name)

        return await asyncio.to_thread(work)


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isascii() and p.isdigit() else (1, p) for p in re.split(r"[.\-+]", version or "0"))


class IndexSource:
    """An HTTP index of skills (`/.well-known/skills/index.json` of a site, or a tap's .json URL).

    The index is `{"skills": [{"name", "description", "version", "url", "sha256"?, "category"?}]}`;
    `url` (or `archive`) is a .tar.gz or .zip of the skill folder, relative to the index or absolute.
    """

    def __init__(self, url: str, label: str = "", source_prefix: str = "") -> None:
        self.url = url if url.endswith(".json") else url.rstrip("/") + WELL_KNOWN
        self.label = label or f"index:{urlsplit(self.url).netloc}"
        self.source_prefix = source_prefix

    async def entries(self, http: Http) -> list[dict[str, Any]]:
        data = await http.get_json(self.url, what=f"skills index {self.url}")
        skills = data.get("skills") if isinstance(data, dict) else data
        if not isinstance(skills, list):
            raise HubError(f"{self.url}: an index must hold a list of skills under \"skills\"")
        return [s for s in skills if isinstance(s, dict) and isinstance(s.get("name"), str)]

    def _spec(self, name: str) -> str:
        return f"{self.source_prefix}{name}" if self.source_prefix else f"{self.url}#{name}"

    async def offers(self, http: Http) -> list[Offer]:
        latest: dict[str, dict[str, Any]] = {}
        for entry in await self.entries(http):
            known = latest.get(entry["name"])
            if known is None or _version_key(str(entry.get("version", ""))) > _version_key(str(known.get("version", ""))):
                latest[entry["name"]] = entry
        return [Offer(n, str(e.get("description", "")), self.label, self._spec(n), str(e.get("version", "")),
                      str(e.get("category", ""))) for n, e in sorted(latest.items())]

    async def fetch(self, http: Http, name: str | None, ref: str, dest: Path, budget: Budget) -> Fetched:
        entries = await self.entries(http)
        names = sorted({e["name"] for e in entries})
        if not name:
            if len(names) != 1:
                raise HubError(f"{self.url} lists {len(names)} skills; say which one: URL#NAME "
                               f"({', '.join(names[:20])})")
            name = names[0]
        matching = [e for e in entries if e["name"] == name]
        if not matching:
            raise HubError(f"{self.url} has no skill named {name!r} (it lists: {', '.join(names[:20]) or 'none'})")
        if ref:
            matching = [e for e in matching if str(e.get("version", "")) == ref]
            if not matching:
                raise HubError(f"{self.url}: skill {name!r} has no version {ref!r}")
        entry = max(matching, key=lambda e: _version_key(str(e.get("version", ""))))
        archive_url = entry.get("url") or entry.get("archive")
        if not isinstance(archive_url, str) or not archive_url:
            raise HubError(f"{self.url}: skill {name!r} has no archive url")
        archive_url = urljoin(self.url, archive_url)
        data = await http.get_bytes(archive_url, self._archive_limit(http), what=f"archive of {name!r}")
        expected = str(entry.get("sha256", "")).lower().removeprefix("sha256:")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise HubError(f"{archive_url}: the archive's sha256 does not match the index; refusing it")

        def work() -> str:
            unpacked = dest.parent / "unpacked"
            unpacked.mkdir()
            unpack(data, unpacked, budget)
            os.rename(skill_root(unpacked, name), dest)
            return _skill_name(dest, self.url)

        skill = await asyncio.to_thread(work)
        version = str(entry.get("version", ""))
        source = f"{self.source_prefix}{name}" if self.source_prefix else f"index:{self.url}#{name}"
        return Fetched(skill, source, self.url, version or hashlib.sha256(data).hexdigest(),
                       str(entry.get("category", "")), version, folder=name)

    @staticmethod
    def _archive_limit(http: Http) -> int:
        return http.settings.max_total_bytes


class ArchiveSource:
    """A .tar.gz or .zip of one skill at an https URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.label = f"url:{url}"

    async def offers(self, http: Http) -> list[Offer]:
        return []

    async def fetch(self, http: Http, name: str | None, ref: str, dest: Path, budget: Budget) -> Fetched:
        data = await http.get_bytes(self.url, http.settings.max_total_bytes, what="skill archive")

        def work() -> str:
            unpacked = dest.parent / "unpacked"
            unpacked.mkdir()
            unpack(data, unpacked, budget)
            os.rename(skill_root(unpacked, name), dest)
            return _skill_name(dest, self.url)

        skill = await asyncio.to_thread(work)
        return Fetched(skill, f"url:{self.url}", self.url, "sha256:" + hashlib.sha256(data).hexdigest())


class GitHubSource:
    """`owner/repo/path`: a skill folder (or, for browse, a folder of skills) in a GitHub repository."""

    def __init__(self, owner: str, repo: str, path: str, settings: HubSettings) -> None:
        self.owner, self.repo, self.path = owner, repo, path.strip("/")
        self.settings = settings
        self.label = f"github:{owner}/{repo}" + (f"/{self.path}" if self.path else "")

    def api(self, http: Http) -> GitHubApi:
        return GitHubApi(http, self.settings, self.owner, self.repo)

    async def offers(self, http: Http) -> list[Offer]:
        api = self.api(http)
        sha = await api.resolve_ref("")
        listing = await api.contents(self.path, sha)
        if not isinstance(listing, list):
            raise HubError(f"{self.label}: not a folder")
        offers = []
        for entry in listing:
            if entry.get("type") != "dir":
                continue
            skill_md = await api.contents(f"{entry['path']}/SKILL.md", sha)
            if not isinstance(skill_md, dict):
                continue
            import base64
            try:
                text = base64.b64decode(skill_md.get("content", "")).decode("utf-8")
                document = parse(text).document
                description, skill = document.description, document.name
            except (ValueError, SkillFormatError):
                description, skill = "", entry["name"]
            offers.append(Offer(skill, description, self.label,
                                f"{self.owner}/{self.repo}/{entry['path']}"))
        return offers

    async def fetch(self, http: Http, name: str | None, ref: str, dest: Path, budget: Budget) -> Fetched:
        api = self.api(http)
        sha = await api.resolve_ref(ref)
        dest.mkdir()
        await api.download_folder(self.path, sha, dest, budget)
        folder = self.path.rsplit("/", 1)[-1]
        skill = await asyncio.to_thread(_skill_name, dest, self.label)
        parts = self.path.split("/")
        category = parts[-2] if len(parts) >= 2 and not name_problems(parts[-2]) and parts[-2] != "skills" else ""
        return Fetched(skill, f"github:{self.owner}/{self.repo}/{self.path}",
                       f"{self.settings.github_api.rstrip('/')}/repos/{self.owner}/{self.repo}", sha, category,
                       folder=folder)
