"""The skill library with the store as its source of truth, on both engines: every write is a
compare-and-set, so two store clients patching one skill at once lose nothing; the files under
the library root stay equal to the store; a person's edit of a file is picked up (and makes the
skill protected); a library made before the store is adopted with its history. Memory files
likewise."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.memory import MemoryStore, Scope
from agent.redact import Redactor
from gateway.store import StateStore, open_store
from skills.library import SkillLibrary, SkillRefused, WritePolicy

CHECKPOINT = WritePolicy(protect=True, writer="checkpoint")
END = "<!-- end of steps -->"


def skill_text(name: str, body: str = f"# Steps\n\n{END}\n") -> str:
    return f"---\nname: {name}\ndescription: Does a thing. Use when testing.\n---\n\n{body}"


@pytest.fixture
async def stores(store_url: str) -> AsyncIterator[tuple[StateStore, StateStore]]:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def library(root: Path, store: StateStore, team: str = "") -> SkillLibrary:
    return SkillLibrary(root, rescan_interval=0, versions=store.skill_versions(team))


async def files_equal_store(lib: SkillLibrary, name: str) -> None:
    assert lib.versions is not None
    stored = await lib.versions.skill_state(name)
    folder = lib.root / stored.category / name
    on_disk = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
               for p in folder.rglob("*") if p.is_file()}
    assert on_disk == stored.files


async def test_two_store_clients_patching_one_skill_50_times_each_lose_nothing(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    root = tmp_path / "skills"
    first, second = library(root, stores[0]), library(root, stores[1])
    await first.create("busy", skill_text("busy"), category="ops")

    async def writer(lib: SkillLibrary, who: str) -> None:
        for n in range(50):
            await lib.patch("busy", END, f"- step {who}{n}\n{END}", origin=who)

    await asyncio.gather(writer(first, "a"), writer(second, "b"))

    text = (await second.get("busy")).skill_file.read_text(encoding="utf-8")
    for who in "ab":
        steps = [line for line in text.splitlines() if line.startswith(f"- step {who}")]
        assert steps == [f"- step {who}{n}" for n in range(50)]  # every patch, in each writer's order
    history = await first.history_of("busy")
    assert [e.number for e in history] == list(range(1, 102))
    assert [e.action for e in history] == ["create"] + ["patch"] * 100
    assert sorted(e.origin for e in history[1:]) == ["a"] * 50 + ["b"] * 50
    await files_equal_store(first, "busy")
    # the .history folder mirrors the store entry by entry
    assert [e.after for e in first.history.entries("busy")] == [e.after for e in history]


async def test_a_persons_edit_of_the_file_becomes_a_version_and_protects_the_skill(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    lib = library(tmp_path / "skills", stores[0])
    skill = await lib.create("tidy", skill_text("tidy"), policy=CHECKPOINT)
    assert not await lib.is_protected("tidy")
    by_hand = skill.skill_file.read_text(encoding="utf-8").replace(END, f"- ask Dana first\n{END}")
    skill.skill_file.write_text(by_hand, encoding="utf-8")

    assert await lib.is_protected("tidy")
    with pytest.raises(SkillRefused) as refused:
        await lib.patch("tidy", END, f"- a review's step\n{END}", policy=CHECKPOINT)
    assert refused.value.kind == "protected"
    await lib.patch("tidy", END, f"- a person's step\n{END}")
    history = await lib.history_of("tidy")
    assert [(e.action, e.origin) for e in history] == [("create", ""), ("edit", "file"), ("patch", "")]
    assert "+- ask Dana first" in history[1].diff
    assert [(e.number, e.action) for e in lib.history.entries("tidy")] == [(e.number, e.action) for e in history]
    text = skill.skill_file.read_text(encoding="utf-8")
    assert "- ask Dana first" in text and "- a person's step" in text
    await files_equal_store(lib, "tidy")


async def test_supporting_files_delete_and_revert_go_through_the_store(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    lib = library(tmp_path / "skills", stores[0])
    await lib.create("ship", skill_text("ship"), category="release")
    await lib.write_file("ship", "scripts/ship.sh", "make ship\n")
    await files_equal_store(lib, "ship")
    await lib.delete("ship")
    assert not (tmp_path / "skills" / "release" / "ship").exists()
    other = library(tmp_path / "skills", stores[1])
    assert not (await other.versions.skill_state("ship")).present  # type: ignore[union-attr]
    await other.revert("ship", 2)
    assert (tmp_path / "skills" / "release" / "ship" / "scripts" / "ship.sh").read_text() == "make ship\n"
    await files_equal_store(lib, "ship")
    assert [e.action for e in await lib.history_of("ship")] == [
        "create", "write_file", "delete:release", "delete:release", "revert", "revert"]


async def test_a_library_made_before_the_store_is_adopted_with_its_history(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    root = tmp_path / "skills"
    plain = SkillLibrary(root, rescan_interval=0)  # today's main: files and .history only
    await plain.create("old", skill_text("old"), policy=CHECKPOINT)
    await plain.patch("old", END, f"- first\n{END}", policy=CHECKPOINT)
    await plain.create("gone", skill_text("gone"))
    await plain.delete("gone")
    (root / "general" / "hand").mkdir(parents=True)
    (root / "general" / "hand" / "SKILL.md").write_text(skill_text("hand"), encoding="utf-8")
    file_history = plain.history.entries("old")

    lib = library(root, stores[0])
    assert await lib.sync_store() == 3
    assert [(e.number, e.action, e.after) for e in await lib.history_of("old")] == \
        [(e.number, e.action, e.after) for e in file_history]
    assert not await lib.is_protected("old")  # the provenance came along: still the checkpoint's
    await lib.patch("old", END, f"- second\n{END}", policy=CHECKPOINT)
    assert [e.action for e in await lib.history_of("hand")] == ["import"]
    await lib.revert("gone", 1)
    assert (root / "general" / "gone" / "SKILL.md").exists()
    assert await lib.sync_store() == 0  # in step: nothing to do


async def test_a_second_home_on_the_same_store_gets_the_skills_and_refreshes_a_stale_copy(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    here, there = library(tmp_path / "a" / "skills", stores[0]), library(tmp_path / "b" / "skills", stores[1])
    await here.create("shared", skill_text("shared"), category="ops")
    assert await there.sync_store() == 1  # written into b's folder from the store
    await files_equal_store(there, "shared")
    stale = (tmp_path / "b" / "skills" / "ops" / "shared" / "SKILL.md").read_text(encoding="utf-8")
    await here.patch("shared", END, f"- newer\n{END}")
    await there.patch("shared", END, f"- from b\n{END}")  # b's copy was stale: refreshed, not an edit
    text = (tmp_path / "b" / "skills" / "ops" / "shared" / "SKILL.md").read_text(encoding="utf-8")
    assert "- newer" in text and "- from b" in text and text != stale
    assert [e.action for e in await there.history_of("shared")] == ["create", "patch", "patch"]
    assert await here.sync_store() == 1  # a's copy was one version behind: refreshed at a's next start
    await files_equal_store(here, "shared")
    assert [e.action for e in await here.history_of("shared")] == ["create", "patch", "patch"]


# ---------------------------------------------------------------- memory


def memory(home: Path, store: StateStore, chars: int = 20_000) -> MemoryStore:
    return MemoryStore(home, chars, chars, Redactor.from_environ({}), versions=store)


async def test_two_store_clients_adding_memory_at_once_lose_no_entry(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    home = tmp_path / "home"
    first, second = memory(home, stores[0]), memory(home, stores[1])
    scope = Scope("sales", "slack", "U1")

    async def writer(mem: MemoryStore, who: str) -> None:
        for n in range(30):
            await mem.add("memory", scope, f"note {who}{n}")
            await mem.add("user", scope, f"likes {who}{n}")

    await asyncio.gather(writer(first, "a"), writer(second, "b"))
    for target, word in (("memory", "note"), ("user", "likes")):
        path = first.path_for(target, scope)  # type: ignore[arg-type]
        texts = [e.text for e in await second.entries(target, scope)]  # type: ignore[arg-type]
        for who in "ab":
            assert [t for t in texts if t.startswith(f"{word} {who}")] == [f"{word} {who}{n}" for n in range(30)]
        state = await stores[1].memory_state(first.key_of(path))
        assert state.version == 60 and state.content == path.read_text(encoding="utf-8")


async def test_a_persons_edit_of_a_memory_file_is_kept_and_a_home_from_before_is_taken_in(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "memories").mkdir(parents=True)
    (home / "memories" / "MEMORY.md").write_text("- 2025-01-01 Deploys go through CI only\n", encoding="utf-8")
    mem = memory(home, stores[0])
    assert await mem.sync_store() == 1
    await mem.add("memory", Scope(), "Staging is at staging.example.test")
    path = mem.memory_path()
    path.write_text(path.read_text(encoding="utf-8") + "- Ask Dana before a release\n", encoding="utf-8")
    change = await memory(home, stores[1]).remove("memory", Scope(), "Deploys go through CI")
    assert change.before is not None and "Ask Dana" in change.before
    text = path.read_text(encoding="utf-8")
    assert "Ask Dana before a release" in text and "staging.example.test" in text and "CI only" not in text
    assert [v[1] for v in await stores[0].memory_versions("memories/MEMORY.md")] == ["import", "add", "file", "remove"]
    assert (await stores[0].memory_state("memories/MEMORY.md")).content == text


async def test_counting_a_use_from_a_stale_snapshot_keeps_the_other_clients_patch(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    root = tmp_path / "skills"
    here = SkillLibrary(root, rescan_interval=3600, versions=stores[0].skill_versions(""))
    there = library(root, stores[1])
    await here.create("used", skill_text("used"))
    await here.snapshot(force=True)  # `here` now reads from a snapshot it will not rescan for an hour
    await there.patch("used", END, f"- patched by the other client\n{END}")
    await here.record_use("used")
    await here.record_use("used")
    text = (root / "general" / "used" / "SKILL.md").read_text(encoding="utf-8")
    assert "- patched by the other client" in text and "use_count: '2'" in text.replace('"', "'")
    await files_equal_store(there, "used")


async def test_a_second_home_on_the_same_store_gets_the_memory_files_at_start(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    here, there = memory(tmp_path / "a", stores[0]), memory(tmp_path / "b", stores[1])
    scope = Scope("ops", "telegram", "42")
    await here.add("memory", scope, "The runbook is in docs/runbook.md")
    await here.add("user", scope, "Prefers short answers")
    assert await there.sync_store() == 2
    assert await there.read("memory", scope) == await here.read("memory", scope)
    assert "Prefers short answers" in await there.read("user", scope)
    old = await there.read("memory", scope)
    await here.add("memory", scope, "Releases on Tuesdays")
    assert await there.sync_store() == 1  # its copy was an older version: rewritten, not taken as an edit
    assert "Releases on Tuesdays" in await there.read("memory", scope) and old != await there.read("memory", scope)
    assert await there.sync_store() == 0
    assert [v[1] for v in await stores[0].memory_versions("teams/ops/memories/MEMORY.md")] == ["add", "add"]


async def test_uses_counted_in_one_home_are_not_undone_by_another_homes_older_copy(
        stores: tuple[StateStore, StateStore], tmp_path: Path) -> None:
    here, there = library(tmp_path / "a" / "skills", stores[0]), library(tmp_path / "b" / "skills", stores[1])
    await here.create("counted", skill_text("counted"))
    await there.sync_store()
    for _ in range(3):
        await here.record_use("counted")
    await there.record_use("counted")  # b's copy says 0 uses: it is rewritten from the store first
    assert (await there.get("counted")).use_count == 4
    await files_equal_store(there, "counted")


WRITER = """
import asyncio, sys
from pathlib import Path
from gateway.store import open_store
from skills.library import SkillLibrary

async def main(url, root, who):
    store = await open_store(url)
    try:
        library = SkillLibrary(Path(root), rescan_interval=0, versions=store.skill_versions(""))
        for n in range(20):
            await library.patch("shared", "END", f"- {who}{n}\\nEND", origin=who)
    finally:
        await store.close()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_two_processes_patching_one_skill_lose_nothing(store_url: str, tmp_path: Path) -> None:
    root = tmp_path / "skills"
    store = await open_store(store_url)
    try:
        lib = library(root, store)
        await lib.create("shared", skill_text("shared", "# Steps\n\nEND\n"))
        writers = [await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, store_url, str(root), who)
                   for who in "pq"]
        assert [await w.wait() for w in writers] == [0, 0]
        text = (root / "general" / "shared" / "SKILL.md").read_text(encoding="utf-8")
        for who in "pq":
            assert [line for line in text.splitlines() if line.startswith(f"- {who}")] == \
                [f"- {who}{n}" for n in range(20)]
        assert [e.number for e in await lib.history_of("shared")] == list(range(1, 42))
        await files_equal_store(lib, "shared")
    finally:
        await store.close()
