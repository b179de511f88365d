"""Unpacking a skill archive (.tar.gz, .tgz, .tar, .zip) safely into a staging folder.

Every member is checked before anything is written: no absolute paths or `..`, no symbolic or
hard links, no devices, no oversize files. Members are copied one by one (never `extractall`).
A corrupt archive (bad checksums, truncated streams, undecodable names, unsupported compression
or encryption) is a HubError naming the archive, whatever the library underneath raised.
"""

from __future__ import annotations

import io
import lzma
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from skills.hub.checks import Budget, safe_relative, write_staged
from skills.hub.errors import HubError


# what the tar, gzip, bz2, xz and zip readers raise on a corrupt archive (zip: RuntimeError when encrypted,
# NotImplementedError for an unknown compression, UnicodeDecodeError for a name that is not UTF-8)
CORRUPT = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, lzma.LZMAError,
           NotImplementedError, RuntimeError, UnicodeDecodeError, ValueError, OSError)


def unpack(data: bytes, target: Path, budget: Budget) -> None:
    """Unpack `data` (an archive's bytes) into `target`; HubError names the bad member."""
    try:
        _unpack(data, target, budget)
    except HubError:
        raise
    except CORRUPT as exc:
        raise HubError(f"{budget.where}: corrupt archive ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _unpack(data: bytes, target: Path, budget: Budget) -> None:
    if data[:2] == b"PK":
        _unzip(data, target, budget)
        return
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise HubError(f"{budget.where}: not a readable archive ({exc})") from exc
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise HubError(f"{budget.where}: corrupt archive ({exc})") from exc
        for member in members:
            safe_relative(member.name, budget.where)
            if member.issym() or member.islnk():
                raise HubError(f"{budget.where}: archive member {member.name!r} is a link; links are refused")
            if not (member.isfile() or member.isdir()):
                raise HubError(f"{budget.where}: archive member {member.name!r} is not a regular file")
            if member.isfile() and member.size > budget.settings.max_file_bytes:
                raise HubError(f"{budget.where}: archive member {member.name!r} is {member.size} bytes; "
                               f"the limit per file is {budget.settings.max_file_bytes}")
        for member in members:
            if member.isfile():
                handle = archive.extractfile(member)
                if handle is None:
                    raise HubError(f"{budget.where}: cannot read archive member {member.name!r}")
                write_staged(target, member.name, handle.read(budget.settings.max_file_bytes + 1), budget)


def _unzip(data: bytes, target: Path, budget: Budget) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise HubError(f"{budget.where}: not a readable zip archive ({exc})") from exc
    with archive:
        infos = archive.infolist()
        for info in infos:
            safe_relative(info.filename, budget.where)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise HubError(f"{budget.where}: archive member {info.filename!r} is a link; links are refused")
            if info.file_size > budget.settings.max_file_bytes:
                raise HubError(f"{budget.where}: archive member {info.filename!r} is {info.file_size} bytes; "
                               f"the limit per file is {budget.settings.max_file_bytes}")
        for info in infos:
            if not info.is_dir():
                with archive.open(info) as handle:
                    write_staged(target, info.filename, handle.read(budget.settings.max_file_bytes + 1), budget)


def skill_root(unpacked: Path, name: str | None = None) -> Path:
    """The folder holding SKILL.md: the archive's root, its single top folder, or `name/`."""
    if (unpacked / "SKILL.md").is_file():
        return unpacked
    tops = [p for p in unpacked.iterdir() if p.is_dir()]
    if name and (unpacked / name / "SKILL.md").is_file():
        return unpacked / name
    if len(tops) == 1 and (tops[0] / "SKILL.md").is_file():
        return tops[0]
    raise HubError("the archive holds no SKILL.md at its root or in a single top folder")
