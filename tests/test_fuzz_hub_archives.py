"""Hypothesis on hub archives: a broken, hostile or corrupt .tar(.gz/.bz2/.xz) or .zip is a HubError
naming what is wrong, nothing is written outside the staging folder, and installed skills stay as they were."""

from __future__ import annotations

import io
import os
import tarfile
import warnings
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, seed
from hypothesis import strategies as st

from skills.hub.archive import skill_root, unpack
from skills.hub.checks import Budget, check_staged
from skills.hub.errors import HubError
from skills.hub.settings import HubSettings
from tests.fakes.hub_servers import FakeIndex, skill_md
from tests.fuzz_support import FUZZ, SEED, SLOW_FUZZ
from tests.test_hub_sources import library_files, make_hub

GOOD = skill_md("fz").encode()
NAMES = st.sampled_from(["SKILL.md", "fz/SKILL.md", "../x", "/abs", "a/../../b", "a/./b", "\\x\\..\\..\\y", "C:\\x",
                         "~/.ssh/k", "a" * 300, "dir/", "", ".", "a//b", "fz/scripts/run.sh", "\u202e.md", "a\x00b"]) \
    | st.text(max_size=12)
DATA = st.binary(max_size=64) | st.sampled_from([GOOD, b"\xff\xfe", b"---\nname: fz\n---\n"])
TYPES = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE,
                         tarfile.CHRTYPE, b"Z"])


@st.composite
def tars(draw: Any) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=draw(st.sampled_from(["w:gz", "w", "w:bz2", "w:xz"]))) as archive:
        for name in draw(st.lists(NAMES, max_size=4)):
            data, info = draw(DATA), tarfile.TarInfo(name)
            info.type = draw(TYPES)
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            info.linkname = "/etc/passwd" if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            try:
                archive.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
            except (ValueError, tarfile.TarError):  # names tarfile itself cannot write
                pass
    return buffer.getvalue()


@st.composite
def zips(draw: Any) -> bytes:
    buffer = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))
    with zipfile.ZipFile(buffer, "w", compression=method) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are part of the point
        for name in draw(st.lists(NAMES, max_size=4)):
            info = zipfile.ZipInfo(name or "x")
            if draw(st.booleans()):  # a symbolic link, a folder, a file, a FIFO
                info.external_attr = draw(st.sampled_from([0o120777, 0o040755, 0o100644, 0o010644])) << 16
            archive.writestr(info, draw(DATA))
    return buffer.getvalue()


@st.composite
def archives(draw: Any) -> bytes:
    """A built archive, often with bytes flipped, cut off or inserted."""
    data = bytearray(draw(tars() | zips()))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.integers(0, 2))
        if edit == 0:
            data[at] = draw(st.integers(0, 255))
        elif edit == 1:
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@seed(SEED)
@FUZZ
@given(data=archives())
def test_an_archive_is_staged_or_refused_and_nothing_lands_outside(tmp_path_factory: pytest.TempPathFactory,
                                                                    data: bytes) -> None:
    folder = tmp_path_factory.mktemp("unpack")
    stage = folder / "stage"
    stage.mkdir()
    try:
        unpack(data, stage, Budget(HubSettings(), "fz"))
        check_staged(skill_root(stage, "fz"), "fz", "fz")
    except HubError as exc:
        assert str(exc).strip()
    assert os.listdir(folder) == ["stage"]


@pytest.fixture
async def index() -> AsyncIterator[FakeIndex]:
    server = FakeIndex()
    await server.start()
    yield server
    await server.stop()


@seed(SEED)
@SLOW_FUZZ
@given(data=archives())
async def test_a_bad_archive_from_the_hub_leaves_installed_skills_alone(tmp_path: Path, index: FakeIndex,
                                                                      data: bytes) -> None:
    home = tmp_path / "home"
    hub = make_hub(home)
    if not (home / "skills").exists():
        index.publish("keep-me", "1", {"SKILL.md": skill_md("keep-me")})
        await hub.install(f"{index.url}#keep-me")
    before = library_files(home)
    index.skills = [s for s in index.skills if s["name"] != "fz"]
    index.publish("fz", "1", archive=data)
    try:
        await hub.install(f"{index.url}#fz")
    except HubError as exc:
        assert str(exc).strip()
        assert library_files(home) == before
    else:
        assert {k: v for k, v in library_files(home).items() if "/fz/" not in f"/{k}"} == before
        await hub.uninstall("fz")
    staging = home / "skills" / ".staging"
    assert not staging.exists() or not any(staging.iterdir())
