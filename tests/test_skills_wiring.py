"""Skills in the running agent: tools through a real agent turn, the prompt index, slash commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from skills_ref.validator import validate as skills_ref_validate

from agent.loop import Conversation
from agent.prompt import PromptContext
from agent.tools.registry import ToolContext, ToolRegistry
from agent.tools.skills import skill_tools
from agent.workspace import Workspace
from gateway.config import load_config
from gateway.home import Home
from gateway.runtime import Runtime
from gateway.skills_wiring import expand_skill_command, install_skills, library_root
from skills import index_prompt
from skills.library import SkillLibrary
from skills.search import estimate_tokens
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, text, tool_calls

NEW_SKILL = """---
name: rotate-nginx-logs
description: Rotate and compress nginx access logs on a host. Use when nginx logs grow too large.
---

# Rotate nginx logs

## When to use
- nginx logs are large.

## Procedure
1. Run logrotate -f /etc/logrotate.d/nginx.

## Pitfalls
- Forgetting to reopen logs.

## Verification
- New log files exist.
"""


def synthetic(library: SkillLibrary, count: int) -> None:
    topics = ["kafka", "redis", "postgres", "terraform", "invoices", "payroll", "sourdough", "chess", "satellite",
              "greenhouse", "violin", "mortgage", "tax", "kubernetes", "genealogy"]
    verbs = ["tune", "audit", "migrate", "plan", "repair", "document", "forecast", "inspect"]
    for i in range(count):
        topic, verb = topics[i % len(topics)], verbs[(i // len(topics)) % len(verbs)]
        name = f"{verb}-{topic}-{i}"
        folder = library.root / "synthetic" / name
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text(
            f"---\nname: {name}\ndescription: {verb.title()} {topic} setups step by step, number {i}. "
            f"Use when someone needs to {verb} their {topic}.\n---\n\n# {name}\n\n1. {verb} the {topic}.\n")


async def test_agent_turn_creates_views_and_searches_skills(home: Path, model_server: FakeModelServer) -> None:
    write_config(home, model_config(model_server))
    runtime = await Runtime.open(load_config(None, Home.from_env()), Home.from_env())
    try:
        library = await install_skills(runtime)
        assert runtime.services["skills"] is library
        assert {"skill_manage", "skill_view", "skill_search"} <= set(runtime.tools.names())
        assert (home / "skills" / "engineering" / "code-review" / "SKILL.md").is_file()

        model_server.add(
            tool_calls(("skill_manage", {"action": "create", "name": "rotate-nginx-logs", "category": "ops",
                                         "content": NEW_SKILL})),
            tool_calls(("skill_manage", {"action": "patch", "name": "rotate-nginx-logs",
                                         "old_text": "nope, not there", "new_text": "x"})),
            tool_calls(("skill_search", {"query": "nginx logs too large"})),
            tool_calls(("skill_view", {"name": "rotate-nginx-logs"})),
            text("done"))
        session = await runtime.store.active_session("chat")
        system = await runtime.prompt.build(PromptContext(session_id=session.id, query="please review my pull request"))
        assert "code-review" in system and "skills in all; use skill_search" in system
        ctx = runtime.tool_context(session)
        result = await runtime.agent.run_turn(Conversation(system=system), "learn nginx rotation", ctx)
        assert result.status == "done"
        tool_results = [m["content"] for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]
        assert tool_results[0].startswith("created skill 'rotate-nginx-logs'")
        assert "occurs 0 times" in tool_results[1]
        assert tool_results[2].splitlines()[0].startswith("- rotate-nginx-logs")
        assert "logrotate -f /etc/logrotate.d/nginx" in tool_results[3]
        skill = await library.get("rotate-nginx-logs")
        assert skill.use_count == 1 and skill.document.metadata["origin"] == f"session:{session.id}"
        assert skills_ref_validate(skill.folder) == []
    finally:
        await runtime.close()


async def test_tool_errors_reach_the_model_as_text(tmp_path: Path) -> None:
    library = SkillLibrary(tmp_path / "lib", rescan_interval=0)
    registry = ToolRegistry(skill_tools())
    ctx = ToolContext(workspace=Workspace(tmp_path / "ws").ensure(), services={"skills": library})
    bad = await registry.execute(ctx, "skill_manage", json.dumps(
        {"action": "create", "name": "../evil", "content": "---\nname: x\ndescription: y\n---\nz"}))
    assert not bad.ok and "lowercase" in bad.content
    missing = await registry.execute(ctx, "skill_view", json.dumps({"name": "ghost"}))
    assert not missing.ok and "no skill named 'ghost'" in missing.content
    need = await registry.execute(ctx, "skill_manage", json.dumps({"action": "patch", "name": "ghost"}))
    assert not need.ok and "old_text" in need.content
    none = await registry.execute(ToolContext(workspace=ctx.workspace), "skill_search", json.dumps({"query": "x"}))
    assert not none.ok and "not available" in none.content


async def test_prompt_index_within_budget_and_byte_stable(tmp_path: Path) -> None:
    library = SkillLibrary(tmp_path / "lib", rescan_interval=0)
    synthetic(library, 1000)
    snapshot = await library.snapshot()
    selector = index_prompt.IndexSelector(1500)
    first = selector.text(snapshot, "s1", "how do I migrate postgres")
    assert estimate_tokens(first) <= 1500
    assert "1000 skills in all; use skill_search to find others." in first
    assert "migrate-postgres" in first
    lines = [line for line in first.splitlines() if line.startswith("- ")]
    assert 3 <= len(lines) <= index_prompt.MAX_ENTRIES
    # a follow-up on the same topic keeps the bytes; another session with the same selection agrees
    assert selector.text(snapshot, "s1", "and then migrate the postgres replicas") == first
    assert index_prompt.IndexSelector(1500).text(snapshot, "s2", "how do I migrate postgres") == first
    # a new topic changes the selection
    other = selector.text(snapshot, "s1", "inspect the greenhouse")
    assert other != first and "inspect-greenhouse" in other
    # a tiny budget is still respected
    small = index_prompt.IndexSelector(200).text(snapshot, "s3", "tune redis")
    assert estimate_tokens(small) <= 200 and "tune-redis" in small


async def test_prompt_index_for_a_small_library_lists_everything(tmp_path: Path) -> None:
    library = SkillLibrary(tmp_path / "lib", rescan_interval=0)
    synthetic(library, 5)
    snapshot = await library.snapshot()
    a = index_prompt.IndexSelector(1500).text(snapshot, "s", "")
    b = index_prompt.IndexSelector(1500).text(snapshot, "s", "tune kafka")
    assert a == b and a.count("\n- ") == 5 and "5 skills in all" in a


async def test_slash_command_expands_a_skill(tmp_path: Path) -> None:
    library = SkillLibrary(tmp_path / "lib", rescan_interval=0)
    await library.create("rotate-nginx-logs", NEW_SKILL, "ops")
    request = await expand_skill_command(library, "/rotate-nginx-logs on web-3 please")
    assert request is not None
    assert request.startswith("Follow the skill rotate-nginx-logs")
    assert "logrotate -f" in request and request.endswith("Request: on web-3 please")
    assert await expand_skill_command(library, "/rotate_nginx_logs@hermes_bot") is not None
    assert await expand_skill_command(library, "/help") is None
    assert await expand_skill_command(library, "/../../etc") is None
    assert await expand_skill_command(library, "not a command") is None
    assert (await library.get("rotate-nginx-logs")).use_count == 2


def test_team_library_root(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert library_root(home) == home.skills_dir
    assert library_root(home, "blue") == (tmp_path / "teams" / "blue" / "skills").resolve()
    with pytest.raises(ValueError):
        library_root(home, "../../x")
