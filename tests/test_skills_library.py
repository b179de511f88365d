"""The skill library: parsing, validation, path safety, patches, concurrency, history, hot reload."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from skills_ref.validator import validate as skills_ref_validate

from skills.bundled_install import BUNDLED_ROOT, bundled_skills, install_bundled
from skills.document import SkillFormatError, parse, render
from skills.library import SkillError, SkillLibrary
from skills.validate import text_problems


def skill_text(name: str, description: str = "Does a thing. Use when testing.", body: str = "# Body\n\n1. step one\n2. step two\n") -> str:
    return f"---\nname: {name}\ndescription: {description}\n---\n\n{body}"


@pytest.fixture
def library(tmp_path: Path) -> SkillLibrary:
    return SkillLibrary(tmp_path / "skills", rescan_interval=0)


def drop(root: Path, category: str, name: str, text: str) -> Path:
    path = root / category / name / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- parsing

def test_lenient_read_keeps_unknown_keys_with_warnings() -> None:
    text = ("---\nname: foreign\ndescription: From another agent.\nversion: 2.1\n"
            "metadata:\n  hermes:\n    tags: [a, b]\n  count: 3\n---\nBody text\n")
    parsed = parse(text)
    assert parsed.document.extra == {"version": 2.1}
    assert parsed.document.metadata["count"] == "3"
    assert "tags" in parsed.document.metadata["hermes"]
    assert any("version" in w for w in parsed.warnings)
    assert any("metadata.hermes" in w for w in parsed.warnings)
    # the strict rendering keeps the data, passes our validator and skills-ref's
    rendered = render(parsed.document)
    errors, _ = text_problems(rendered, "foreign")
    assert errors == []
    assert parse(rendered).document.metadata["version"] == "2.1"


def test_strict_validation_rejects_what_skills_ref_rejects(tmp_path: Path) -> None:
    cases = {
        "Bad-Name": skill_text("Bad-Name"),
        "double--hyphen": skill_text("double--hyphen"),
        "-lead": skill_text("-lead"),
        "x" * 65: skill_text("x" * 65),
        "extra-key": "---\nname: extra-key\ndescription: ok\nversion: '1'\n---\nbody\n",
        "mismatch": skill_text("other-name"),
    }
    for folder, text in cases.items():
        errors, _ = text_problems(text, folder)
        assert errors, f"{folder} should be invalid"
        skill_dir = tmp_path / folder
        skill_dir.mkdir()
        (skill_dir / "SKILL.md").write_text(text)
        assert skills_ref_validate(skill_dir), f"skills-ref should reject {folder} too"
    errors, _ = text_problems(skill_text("fine-name"), "fine-name")
    assert errors == []
    # a description over 1,024 characters (skills-ref rejects it) is a lint warning here (issue 18)
    errors, warnings = text_problems(skill_text("long-desc", "d" * 1025), "long-desc")
    assert errors == [] and any("1025 characters" in w for w in warnings)


def test_front_matter_containing_triple_dash_is_refused(library: SkillLibrary) -> None:
    text = skill_text("dashes", "Splits --- things apart.")
    with pytest.raises(SkillError, match="---"):
        asyncio.run(library.create("dashes", text))


def test_unparseable_documents_raise() -> None:
    for text in ["no front matter", "---\nname: x\n", "---\nname: [unclosed\n---\nbody", "---\nname: x\n---\nbody"]:
        with pytest.raises(SkillFormatError):
            parse(text)


# ---------------------------------------------------------------- scanning

def test_malformed_skills_are_skipped_with_a_warning(library: SkillLibrary, caplog: pytest.LogCaptureFixture) -> None:
    drop(library.root, "general", "good", skill_text("good"))
    bad_yaml = drop(library.root, "general", "bad-yaml", "---\nname: bad-yaml\ndescription: [oops\n---\nbody")
    missing = drop(library.root, "general", "missing", "---\nname: missing\n---\nbody")
    mismatch = drop(library.root, "general", "mismatch", skill_text("not-mismatch"))
    with caplog.at_level(logging.WARNING, logger="skills.library"):
        snapshot = library.scan()
    assert [s.name for s in snapshot.skills] == ["good"]
    problems = dict(snapshot.problems)
    assert "YAML" in problems[str(bad_yaml)]
    assert "description" in problems[str(missing)]
    assert "folder" in problems[str(mismatch)]
    logged = caplog.text
    for path in (bad_yaml, missing, mismatch):
        assert str(path) in logged


async def test_hot_reload_of_hand_dropped_and_edited_skill(tmp_path: Path) -> None:
    library = SkillLibrary(tmp_path / "skills", rescan_interval=0.05)
    assert (await library.snapshot()).skills == ()
    path = drop(library.root, "ops", "hand-made", skill_text("hand-made", "First description."))
    await asyncio.sleep(0.1)
    skill = await library.get("hand-made")
    assert skill.description == "First description." and skill.category == "ops"
    path.write_text(skill_text("hand-made", "Second description, longer."), encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    await asyncio.sleep(0.1)
    assert (await library.get("hand-made")).description == "Second description, longer."


# ---------------------------------------------------------------- path safety

@pytest.mark.parametrize("bad", ["..", "../escape", "a/b", "/etc/passwd", "UPPER", "", "a..b", "~root"])
async def test_names_that_leave_the_root_are_refused(library: SkillLibrary, bad: str) -> None:
    with pytest.raises(SkillError):
        await library.create(bad, skill_text(bad or "x"))
    with pytest.raises(SkillError):
        await library.create("ok-name", skill_text("ok-name"), category=bad or "..")
    assert not (library.root.parent / "escape").exists()


@pytest.mark.parametrize("bad", ["../../outside.txt", "/tmp/abs.txt", "scripts/../../x", "SKILL.md", ".hidden"])
async def test_supporting_file_paths_stay_inside_the_skill(library: SkillLibrary, bad: str) -> None:
    await library.create("holder", skill_text("holder"))
    with pytest.raises(SkillError):
        await library.write_file("holder", bad, "data")
    assert not (library.root.parent / "outside.txt").exists()


# ---------------------------------------------------------------- patching

async def test_patch_exactly_once_zero_and_many(library: SkillLibrary) -> None:
    await library.create("patchy", skill_text("patchy", body="alpha line\nbeta line\nbeta line\ngamma\n"))
    skill = await library.patch("patchy", "alpha line", "ALPHA line")
    assert "ALPHA line" in await library.read("patchy")
    assert skill.document.metadata["version"] == "2"
    with pytest.raises(SkillError, match="occurs 2 times"):
        await library.patch("patchy", "beta line", "x")
    with pytest.raises(SkillError, match="occurs 0 times") as info:
        await library.patch("patchy", "gamma ray", "x")
    assert "gamma" in str(info.value)  # the closest passage is shown
    with pytest.raises(SkillError, match="not be a valid skill"):
        await library.patch("patchy", "Does a thing.", "d" * 1100)
    with pytest.raises(SkillError, match="must be equal"):
        await library.patch("patchy", "name: patchy", "name: renamed")
    text = await library.read("patchy")
    assert "name: patchy" in text  # nothing was written


async def test_fifty_concurrent_patches_all_apply_or_conflict(library: SkillLibrary) -> None:
    body = "# Checklist\n\n" + "".join(f"- item {i:02d}: todo\n" for i in range(50))
    await library.create("busy", skill_text("busy", body=body))

    async def one(i: int) -> str:
        try:
            await library.patch("busy", f"- item {i:02d}: todo", f"- item {i:02d}: done", origin=f"s{i}")
            return "applied"
        except SkillError:
            return "conflict"

    # every patch targets its own line, plus ten that all target line 00 (only one can win)
    results = await asyncio.gather(*(one(i) for i in range(50)), *(one(0) for _ in range(10)))
    text = await library.read("busy")
    assert errors_of(text, "busy") == []
    for i in range(1, 50):
        assert f"- item {i:02d}: done" in text
    assert text.count("- item 00: done") == 1
    assert results.count("applied") == 50 and results.count("conflict") == 10
    assert (await library.get("busy")).document.metadata["version"] == "51"
    assert len(await library.history_of("busy")) == 51


def _patch_in_process(root: str, index: int) -> None:
    library = SkillLibrary(Path(root), rescan_interval=0)
    asyncio.run(library.patch("shared", f"- line {index}: a", f"- line {index}: b"))


async def test_patches_from_separate_processes_do_not_tear(library: SkillLibrary) -> None:
    body = "".join(f"- line {i}: a\n" for i in range(8))
    await library.create("shared", skill_text("shared", body=body))
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_patch_in_process, args=(str(library.root), i)) for i in range(8)]
    for p in processes:
        p.start()
    for p in processes:
        await asyncio.to_thread(p.join, 60)
    assert all(p.exitcode == 0 for p in processes)
    text = await library.read("shared")
    assert all(f"- line {i}: b" in text for i in range(8))
    assert errors_of(text, "shared") == []


def errors_of(text: str, name: str) -> list[str]:
    return text_problems(text, name)[0]


# ---------------------------------------------------------------- history

async def test_history_and_revert(library: SkillLibrary) -> None:
    await library.create("versioned", skill_text("versioned", body="v1 body\n"))
    await library.patch("versioned", "v1 body", "v2 body")
    await library.write_file("versioned", "scripts/run.sh", "echo 3\n")
    await library.patch("versioned", "v2 body", "broken by the agent")
    entries = await library.history_of("versioned")
    assert [e.action for e in entries] == ["create", "patch", "write_file", "patch"]
    assert "-v2 body" in entries[3].diff and "+broken by the agent" in entries[3].diff
    await library.revert("versioned", 2)
    text = await library.read("versioned")
    assert "v2 body" in text and "broken" not in text
    skill = await library.get("versioned")
    assert not (skill.folder / "scripts" / "run.sh").exists()
    assert (await library.history_of("versioned"))[-1].action == "revert"
    await library.delete("versioned")
    with pytest.raises(SkillError):
        await library.get("versioned")
    last = (await library.history_of("versioned"))[-1].number
    await library.revert("versioned", last - 1)
    assert "v2 body" in await library.read("versioned")
    with pytest.raises(SkillError, match="no version 999"):
        await library.revert("versioned", 999)
    assert (library.root / ".history").is_dir()
    assert all(not s.category.startswith(".") for s in library.scan().skills)  # history is not a category


async def test_record_use_updates_metadata_without_history(library: SkillLibrary) -> None:
    await library.create("counted", skill_text("counted"))
    await library.record_use("counted")
    await library.record_use("counted")
    skill = await library.get("counted")
    assert skill.use_count == 2 and skill.last_used
    assert len(await library.history_of("counted")) == 1


# ---------------------------------------------------------------- skills-ref agreement

def test_skills_ref_accepts_every_bundled_skill() -> None:
    found = bundled_skills()
    assert len(found) >= 12
    for _category, folder in found:
        assert skills_ref_validate(folder) == [], folder
        text = (folder / "SKILL.md").read_text()
        assert text_problems(text, folder.name)[0] == []
        for section in ("## When to use", "## Procedure", "## Pitfalls", "## Verification"):
            assert section in text, f"{folder.name} lacks {section}"


async def test_skills_ref_accepts_created_and_patched_skills(library: SkillLibrary) -> None:
    messy = ("---\nname: agent-made\ndescription: 'Made by the agent: with colons, \"quotes\" and # hashes'\n"
             "version: 3\ntags: [x, y]\nmetadata:\n  nested:\n    deep: 1\n---\n\n# Steps\n\n1. do it\n")
    await library.create("agent-made", messy, category="research", origin="session:abc")
    await library.patch("agent-made", "1. do it", "1. do it carefully\n2. check it")
    await library.write_file("agent-made", "references/notes.md", "notes\n")
    await library.record_use("agent-made")
    skill = await library.get("agent-made")
    assert skills_ref_validate(skill.folder) == []
    assert skill.document.metadata["origin"] == "session:abc"


# ---------------------------------------------------------------- bundled install

def test_bundled_install_first_run_upgrade_and_user_changes(tmp_path: Path) -> None:
    source = tmp_path / "bundled"
    drop(source, "ops", "alpha", skill_text("alpha", body="alpha v1\n"))
    drop(source, "ops", "beta", skill_text("beta", body="beta v1\n"))
    drop(source, "ops", "gamma", skill_text("gamma", body="gamma v1\n"))
    library = SkillLibrary(tmp_path / "lib", rescan_interval=0)
    report = install_bundled(library, source)
    assert sorted(report.installed) == ["alpha", "beta", "gamma"]
    # the user edits beta and deletes gamma; a new release changes all three
    asyncio.run(library.patch("beta", "beta v1", "beta mine"))
    asyncio.run(library.delete("gamma"))
    asyncio.run(library.record_use("alpha"))
    for name in ("alpha", "beta", "gamma"):
        drop(source, "ops", name, skill_text(name, body=f"{name} v2\n"))
    report = install_bundled(library, source)
    assert report.updated == ["alpha"] and report.kept_user_copy == ["beta"] and report.skipped_deleted == ["gamma"]
    assert "alpha v2" in asyncio.run(library.read("alpha"))
    assert library.scan().get("alpha").use_count == 1
    assert "beta mine" in asyncio.run(library.read("beta"))
    assert library.scan().get("gamma") is None
    again = install_bundled(library, source)
    assert again.installed == again.updated == []


def test_real_bundled_skills_install(tmp_path: Path) -> None:
    library = SkillLibrary(tmp_path / "lib", rescan_interval=0)
    report = install_bundled(library, BUNDLED_ROOT)
    assert len(report.installed) == len(bundled_skills())
    assert len(library.scan().skills) == len(bundled_skills())
