"""Ask mode writes nothing until a user approves; a secret in the transcript never reaches a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.sessions import SessionService
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.learning_support import (
    CHECKPOINT_MODEL,
    DEPLOY_SKILL,
    checkpoint_requests,
    hermes,
    open_runtime,
    user_text,
)

ENV_SECRET = "hunter2-staging-deploy-credential"
SHAPED_SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


async def test_ask_mode_records_a_proposal_and_writes_only_after_approval(
        home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server, learning='checkpoint_every = 1\nauto_skills = "ask"')
    announced: list[tuple[str, str]] = []

    async def announce(session, message: str) -> None:  # type: ignore[no-untyped-def]
        announced.append((session.id, message))

    runtime.services["announce"] = announce
    try:
        model_server.add(tool_calls(("list_files", {"path": "."})), text("ok"))
        model_server.add(
            tool_calls(("skill_manage", {"action": "create", "name": "deploy-staging", "category": "devops",
                                         "content": DEPLOY_SKILL})),
            text("Skill: created deploy-staging\nAnnounce: deploy-staging: the 4 steps and the migration pitfall"),
            model=CHECKPOINT_MODEL)
        session = await runtime.store.new_session("slack:C1:U1", platform="slack", chat_id="C1", user_id="U1",
                                                  team="ops")
        await SessionService(runtime).run_turn(session, "deploy main to staging")
        await runtime.drain()
        library = await loop.library_for("ops")
        assert (await library.snapshot(force=True)).get("deploy-staging") is None
        assert not list((home / "teams" / "ops" / "skills").rglob("deploy-staging"))
        # the model was told it is a proposal; the channel hears the proposal and how to approve it
        tool_result = [m for m in checkpoint_requests(model_server)[1]["messages"] if m["role"] == "tool"][0]
        assert "recorded as proposal #1" in tool_result["content"]
        assert announced == [(session.id, "Proposed: create skill `/deploy-staging` — the 4 steps and the "
                                          "migration pitfall. Approve with `/approve 1` (or reject with "
                                          "`/reject 1`).")]
    finally:
        await runtime.close()

    code, out, err = await hermes("learning", "pending", "--json", home=home)
    assert code == 0, err
    pending = json.loads(out)
    assert [(p["id"], p["action"], p["skill"], p["team"]) for p in pending] == [(1, "create", "deploy-staging", "ops")]
    assert not list((home / "teams" / "ops" / "skills").rglob("deploy-staging"))

    code, out, err = await hermes("learning", "approve", "1", "--by", "alice", home=home)
    assert code == 0, err
    assert "Approved #1: created skill 'deploy-staging'" in out
    assert (home / "teams" / "ops" / "skills" / "devops" / "deploy-staging" / "SKILL.md").is_file()
    code, out, err = await hermes("learning", "approve", "1", home=home)
    assert code != 0 and "already approved" in err
    code, out, err = await hermes("learning", "pending", "--json", home=home)
    assert json.loads(out) == []


async def test_approve_and_reject_through_the_service(home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server, learning='checkpoint_every = 1\nauto_skills = "ask"')
    announced: list[str] = []

    async def announce(session, message: str) -> None:  # type: ignore[no-untyped-def]
        announced.append(message)

    runtime.services["announce"] = announce
    try:
        library = await loop.library_for("")
        await library.create("deploy-staging", DEPLOY_SKILL, "devops")
        model_server.add(tool_calls(("list_files", {"path": "."})), text("ok"))
        model_server.add(
            tool_calls(("skill_manage", {"action": "patch", "name": "deploy-staging",
                                         "old_text": "## Verification",
                                         "new_text": "## Verification\n- Smoke-test the login page."})),
            tool_calls(("skill_manage", {"action": "patch", "name": "deploy-staging",
                                         "old_text": "1. Build the image with `make image`.",
                                         "new_text": "1. Build the image with `make image PLATFORM=amd64`."})),
            text("done"), model=CHECKPOINT_MODEL)
        session = await runtime.store.new_session("cli:a", platform="cli", user_id="local")
        await SessionService(runtime).run_turn(session, "deploy")
        await runtime.drain()
        assert [p.id for p in await loop.pending()] == [1, 2]
        assert "Smoke-test" not in await library.read("deploy-staging")
        applied = await loop.approve(1, by="telegram:42")
        assert "Smoke-test the login page" in await library.read("deploy-staging")
        assert "+- Smoke-test the login page." in applied.diff
        assert announced[-1].startswith("Updated `/deploy-staging`")
        await loop.reject(2, by="telegram:42")
        assert "PLATFORM=amd64" not in await library.read("deploy-staging")
        assert await loop.pending() == []
    finally:
        await runtime.close()


async def test_a_secret_in_the_transcript_never_reaches_a_written_file(
        home: Path, model_server: FakeModelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGING_DEPLOY_TOKEN", ENV_SECRET)
    runtime, loop = await open_runtime(home, model_server, learning="checkpoint_every = 1")
    leaky_skill = DEPLOY_SKILL.replace("2. Push it with `make push TAG=staging`.",
                                       f"2. Push it with `make push TAG=staging TOKEN={ENV_SECRET}` "
                                       f"(GitHub token {SHAPED_SECRET}).")
    try:
        model_server.add(tool_calls(("list_files", {"path": "."})), text("ok"))
        model_server.add(
            tool_calls(("memory", {"action": "add", "text": f"The deploy token is {ENV_SECRET}"})),
            tool_calls(("memory", {"action": "add", "target": "user", "text": f"Their token: {SHAPED_SECRET}"})),
            tool_calls(("memory", {"action": "add", "text": "The deploy token lives in STAGING_DEPLOY_TOKEN"})),
            tool_calls(("skill_manage", {"action": "create", "name": "deploy-staging", "category": "devops",
                                         "content": leaky_skill})),
            text(f"Remember: token {ENV_SECRET} and {SHAPED_SECRET}\nAnnounce: deploy-staging: uses {ENV_SECRET}"),
            model=CHECKPOINT_MODEL)
        session = await runtime.store.new_session("tg:5", platform="telegram", chat_id="5", user_id="5",
                                                  team="ops")
        await SessionService(runtime).run_turn(
            session, f"deploy staging with token {ENV_SECRET}, and my github token is {SHAPED_SECRET}")
        await runtime.drain()

        # the checkpoint model never sees the secrets again
        request = user_text(checkpoint_requests(model_server)[0])
        assert ENV_SECRET not in request and SHAPED_SECRET not in request and "[REDACTED]" in request
        # refused in memory, with a reason the model can act on
        mid_task = checkpoint_requests(model_server)[4]  # the last call of the review
        results = [m["content"] for m in mid_task["messages"] if m["role"] == "tool"]
        assert "looks like a secret" in results[0] and "looks like a secret" in results[1]
        # nothing under the home's files holds them (skills, histories, memories, workspaces)
        written = [p for p in home.rglob("*") if p.is_file() and p.suffix != ".db" and "state.db" not in p.name]
        assert any(p.name == "SKILL.md" and "deploy-staging" in str(p) for p in written)
        assert any(p.name == "MEMORY.md" for p in written)
        for path in written:
            content = path.read_bytes()
            assert ENV_SECRET.encode() not in content and SHAPED_SECRET.encode() not in content, path
        # nor does the learning log
        log_text = json.dumps(await loop.log.entries())
        assert ENV_SECRET not in log_text and SHAPED_SECRET not in log_text
        rows: list[object] = [dict(r) for r in await runtime.store.checkpoint_rows(100)]
        rows += await runtime.store.reviews_all()  # the queued slices too
        assert len(rows) == 3  # one review of the whole task (the mid-task one folded into it)
        assert all(ENV_SECRET not in repr(r) and SHAPED_SECRET not in repr(r) for r in rows)
    finally:
        await runtime.close()
