"""Skills and memory in the store on both engines: a write is a compare-and-set on the version
the writer read, so of two writers who read one version exactly one commits and the other hears
of the conflict; nothing is lost."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store import open_store
from skills.versions import Commit, NewEntry, Provenance, VersionConflict

SKILL = "---\nname: deploy\ndescription: Deploy the app\n---\nRun make deploy.\n"


async def test_two_writers_of_one_version_give_one_commit_and_one_conflict(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        a, b = first.skill_versions("sales"), second.skill_versions("sales")
        created = Commit(0, {"SKILL.md": SKILL}, [NewEntry("create", "SKILL.md", None, SKILL, "test")],
                         category="ops", owner=Provenance("fp", "test", "now"))
        results = await asyncio.gather(a.skill_commit("deploy", created), b.skill_commit("deploy", created),
                                       return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["VersionConflict", "int"]
        state = await b.skill_state("deploy")
        assert state.seq == 1 and state.version == 1 and state.category == "ops"
        assert state.files == {"SKILL.md": SKILL} and state.owner == Provenance("fp", "test", "now")

        patched = SKILL.replace("make deploy", "make deploy-prod")
        change = Commit(1, {"SKILL.md": patched, "scripts/run.sh": "make\n"},
                        [NewEntry("patch", "SKILL.md", SKILL, patched), NewEntry("write_file", "scripts/run.sh",
                                                                               None, "make\n")], owner=None)
        applied: list[str] = []

        async def apply() -> None:
            applied.append("files")

        assert await a.skill_commit("deploy", change, apply) == 2
        with pytest.raises(VersionConflict):
            await b.skill_commit("deploy", change)  # read version 1, but it is at 2 now
        assert applied == ["files"]
        state = await b.skill_state("deploy")
        assert state.files == {"SKILL.md": patched, "scripts/run.sh": "make\n"} and state.owner is None
        assert [e.action for e in await b.skill_entries("deploy")] == ["create", "patch", "write_file"]
        assert "+Run make deploy-prod." in (await b.skill_entries("deploy"))[1].diff
        # another library's skill of the same name is another skill
        assert (await first.skill_versions("").skill_state("deploy")).seq == 0

        # a failing apply (the file could not be written) leaves the store as it was
        async def broken() -> None:
            raise OSError("disk full")

        with pytest.raises(OSError, match="disk full"):
            await a.skill_commit("deploy", Commit(2, gone=True, entries=[NewEntry("delete:ops", "SKILL.md",
                                                                              patched, None)]), broken)
        assert (await b.skill_state("deploy")).present
        assert await b.skill_commit("deploy", Commit(2, gone=True)) == 3
        state = await a.skill_state("deploy")
        assert not state.present and state.files == {} and state.version == 3
        assert await a.skill_names() == {"deploy": 3}
    finally:
        await first.close()
        await second.close()


async def test_memory_writes_are_compare_and_set(store_url: str) -> None:
    first, second = await open_store(store_url), await open_store(store_url)
    try:
        key = "memories/MEMORY.md"
        assert (await first.memory_state(key)).version == 0
        results = await asyncio.gather(
            first.memory_commit(key, 0, "- a\n", action="add"), second.memory_commit(key, 0, "- b\n", action="add"),
            return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["VersionConflict", "int"]
        state = await second.memory_state(key)
        assert state.version == 1 and state.content in ("- a\n", "- b\n")
        assert await second.memory_commit(key, 1, state.content + "- c\n", action="add") == 2
        with pytest.raises(VersionConflict):
            await first.memory_commit(key, 1, "- lost\n", action="add")
        assert [v[0] for v in await first.memory_versions(key)] == [1, 2]
    finally:
        await first.close()
        await second.close()
