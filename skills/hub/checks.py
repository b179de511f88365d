"""Checking a staged skill before anything reaches the library: files, sizes, links, SKILL.md."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from skills.document import SkillFormatError, parse
from skills.hub.errors import HubError
from skills.hub.settings import HubSettings
from skills.validate import description_warning, name_problems

SKILL_FILE = "SKILL.md"


def safe_relative(path: str, where: str) -> PurePosixPath:
    """A relative path that stays inside its folder, or a HubError naming it."""
    raw = path.replace("\\", "/")
    pure = PurePosixPath(raw)
    if not raw or pure.is_absolute() or raw.startswith("~") or ".." in pure.parts or "\x00" in raw:
        raise HubError(f"{where}: unsafe path {path!r} (absolute or escaping its folder)")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts:
        raise HubError(f"{where}: empty path")
    return PurePosixPath(*parts)


class Budget:
    """Counts files and bytes written while staging one skill."""

    def __init__(self, settings: HubSettings, where: str) -> None:
        self.settings = settings
        self.where = where
        self.files = 0
        self.bytes = 0

    def take(self, relative: str, size: int) -> None:
        if size > self.settings.max_file_bytes:
            raise HubError(f"{self.where}: {relative} is {size} bytes; the limit per file is "
                           f"{self.settings.max_file_bytes}")
        self.files += 1
        self.bytes += size
        if self.files > self.settings.max_files:
            raise HubError(f"{self.where}: more than {self.settings.max_files} files")
        if self.bytes > self.settings.max_total_bytes:
            raise HubError(f"{self.where}: larger than {self.settings.max_total_bytes} bytes in all")


def write_staged(folder: Path, relative: str, data: bytes, budget: Budget) -> None:
    """Write one file of a skill being staged, refusing escaping paths and oversize files."""
    pure = safe_relative(relative, budget.where)
    budget.take(str(pure), len(data))
    target = folder.joinpath(*pure.parts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as handle:
            handle.write(data)
    except FileExistsError:
        raise HubError(f"{budget.where}: {str(pure)!r} appears twice in the archive") from None
    except OSError as exc:  # a name too long, a file where a folder should be, ...
        raise HubError(f"{budget.where}: cannot stage {str(pure)[:200]!r}: {exc.strerror or exc}") from None


def copy_tree(source: Path, target: Path, budget: Budget) -> None:
    """Copy a skill folder (no links, hidden files and VCS folders skipped), with the budget."""
    if not (source / SKILL_FILE).is_file():
        raise HubError(f"{budget.where}: no {SKILL_FILE} in {source}")
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        base = Path(dirpath)
        for d in list(dirnames):
            if os.path.islink(base / d):
                raise HubError(f"{budget.where}: {(base / d).relative_to(source)} is a symbolic link; links are refused")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            path = base / name
            relative = path.relative_to(source).as_posix()
            if name.startswith("."):
                continue
            if path.is_symlink():
                raise HubError(f"{budget.where}: {relative} is a symbolic link; links are refused")
            if not path.is_file():
                raise HubError(f"{budget.where}: {relative} is not a regular file")
            size = path.stat().st_size
            budget.take(relative, size)
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(path.read_bytes())


def check_staged(folder: Path, name: str, where: str) -> str:
    """The skill's description, after checking SKILL.md parses and names the folder's skill.
    (A description over the spec's 1,024 characters installs; `staged_warnings` reports it.)"""
    problems = name_problems(name)
    if problems:
        raise HubError(f"{where}: {'; '.join(problems)}")
    path = folder / SKILL_FILE
    if not path.is_file():
        raise HubError(f"{where}: the skill has no {SKILL_FILE}")
    try:
        document = parse(path.read_text(encoding="utf-8")).document
    except (UnicodeDecodeError, SkillFormatError) as exc:
        raise HubError(f"{where}: {SKILL_FILE} is not a valid skill: {exc}") from exc
    if document.name != name:
        raise HubError(f"{where}: {SKILL_FILE} says name {document.name!r} but the skill is {name!r}")
    return document.description


def staged_warnings(folder: Path) -> list[str]:
    """Lint warnings on a staged skill that do not stop the install (shown with the result)."""
    try:
        document = parse((folder / SKILL_FILE).read_text(encoding="utf-8")).document
    except (OSError, UnicodeDecodeError, SkillFormatError):
        return []
    warning = description_warning(document.description)
    return [warning] if warning else []
