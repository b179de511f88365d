"""Copying the skills shipped in `skills/bundled/` into a library, on first run and on upgrade.

A manifest (`<root>/.bundled.json`) remembers the fingerprint of each bundled skill as last
installed. On each start: a bundled skill the library lacks is copied in (unless the manifest
shows it was installed before and the user deleted it); one whose installed copy still matches
the manifest is updated when the shipped version changed; a copy the user or the agent changed
is left alone, on every upgrade: the local copy is kept (`locally_changed` lists those, for
`hermes doctor`). Usage counters are carried over on update. Sync: run it in a thread.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from skills.document import SkillFormatError, parse, render
from skills.history import SKILL_FILE
from skills.library import SkillLibrary
from skills.paths import safe_join

log = logging.getLogger(__name__)
MANIFEST = ".bundled.json"
BUNDLED_ROOT = Path(__file__).resolve().parent / "bundled"


@dataclass
class InstallReport:
    installed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept_user_copy: list[str] = field(default_factory=list)
    skipped_deleted: list[str] = field(default_factory=list)


def bundled_skills(source: Path = BUNDLED_ROOT) -> list[tuple[str, Path]]:
    """(category, folder) of every shipped skill."""
    return sorted((p.parent.parent.name, p.parent) for p in source.glob("*/*/" + SKILL_FILE))


def _read_manifest(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _copy_tree(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.name != SKILL_FILE and "__pycache__" not in path.parts:
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def install_bundled(library: SkillLibrary, source: Path = BUNDLED_ROOT) -> InstallReport:
    report = InstallReport()
    library.root.mkdir(parents=True, exist_ok=True)
    manifest_path = library.root / MANIFEST
    with library.file_lock(".bundled"):
        manifest = _read_manifest(manifest_path)
        snapshot = library.scan(force=True)
        for category, folder in bundled_skills(source):
            name = folder.name
            try:
                shipped_text = (folder / SKILL_FILE).read_text(encoding="utf-8")
                shipped = parse(shipped_text).document
            except (OSError, SkillFormatError) as exc:
                log.warning("bundled skill %s is unreadable: %s", folder, exc)
                continue
            shipped_hash = shipped.fingerprint()
            known = manifest.get(name)
            current = snapshot.get(name)
            with library.file_lock(name):
                if current is None:
                    if known is not None:
                        report.skipped_deleted.append(name)
                        continue
                    target = safe_join(library.root, category, name)
                    library.write_atomic(target / SKILL_FILE, shipped_text)
                    _copy_tree(folder, target)
                    library.history.record(name, "install", SKILL_FILE, None, shipped_text, "bundled")
                    report.installed.append(name)
                elif known is None or current.document.fingerprint() != known.get("hash"):
                    if current.document.fingerprint() != shipped_hash:
                        report.kept_user_copy.append(name)
                        continue
                elif known.get("hash") != shipped_hash:
                    before = current.skill_file.read_text(encoding="utf-8")
                    carried = {k: v for k, v in current.document.metadata.items() if k in ("use_count", "last_used")}
                    text = render(shipped.with_metadata(**carried)) if carried else shipped_text
                    library.write_atomic(current.skill_file, text)
                    _copy_tree(folder, current.folder)
                    library.history.record(name, "upgrade", SKILL_FILE, before, text, "bundled")
                    report.updated.append(name)
            manifest[name] = {"hash": shipped_hash, "category": category}
        temporary = manifest_path.with_name(f"{MANIFEST}.tmp-{os.getpid()}")
        temporary.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, manifest_path)
    library.invalidate()
    if report.installed or report.updated:
        log.info("bundled skills: %d installed, %d updated", len(report.installed), len(report.updated))
    return report


def locally_changed(library: SkillLibrary, source: Path = BUNDLED_ROOT) -> list[str]:
    """Bundled skills whose installed copy was changed locally (kept as is by upgrades)."""
    manifest = _read_manifest(library.root / MANIFEST)
    snapshot = library.scan()
    changed = []
    for _category, folder in bundled_skills(source):
        known, current = manifest.get(folder.name), snapshot.get(folder.name)
        if known is not None and current is not None and current.document.fingerprint() != known.get("hash"):
            changed.append(folder.name)
    return changed
