"""Hypothesis on SKILL.md front matter: every bad document is a SkillFormatError (or a SkillError from
the library) that says what is wrong, and a refused write leaves the stored skills as they were."""

from __future__ import annotations


import pytest
from hypothesis import given, seed

from skills.document import SkillFormatError, parse, render
from skills.library import SkillError, SkillLibrary
from tests.fuzz_support import FUZZ, SEED, SLOW_FUZZ, skill_texts

KEEP = "---\nname: keep-me\ndescription: Stays as it is. Use when testing.\n---\n\n# Keep\n\n1. a step\n"


@seed(SEED)
@FUZZ
@given(text=skill_texts())
def test_front_matter_is_read_or_refused_with_a_reason(text: str) -> None:
    try:
        document = parse(text).document
    except SkillFormatError as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)
        return
    assert document.name and document.description  # required fields, checked
    render(document)  # what was read can be written again


def test_a_lone_surrogate_is_refused_naming_its_line() -> None:
    with pytest.raises(SkillFormatError, match=r"line 3: a lone UTF-16 surrogate \(U\+D800\)"):
        parse("---\nname: x\ndescription: a \ud800 b\n---\nbody")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> SkillLibrary:
    return SkillLibrary(tmp_path_factory.mktemp("fuzz") / "skills", rescan_interval=0)


@seed(SEED)
@SLOW_FUZZ
@given(text=skill_texts(name="keep-me"))
async def test_a_refused_write_leaves_the_stored_skill_as_it_was(library: SkillLibrary, text: str) -> None:
    if (await library.snapshot(force=True)).get("keep-me") is None:
        await library.create("keep-me", KEEP)
    stored = (await library.get("keep-me")).skill_file.read_bytes()
    try:
        await library.edit("keep-me", text)
    except SkillError as exc:
        assert str(exc).strip()
        assert (await library.get("keep-me")).skill_file.read_bytes() == stored
        assert [s.name for s in (await library.snapshot(force=True)).skills] == ["keep-me"]
    else:  # accepted: it is a valid skill of that name, readable again
        assert parse((await library.get("keep-me")).skill_file.read_text(encoding="utf-8")).document.name == \
            "keep-me"
