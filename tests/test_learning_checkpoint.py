"""The checkpoint end to end: real agent turns through LiteLLM against the fake model server."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from skills_ref.validator import validate as skills_ref_validate

from agent.checkpoint import CHECKPOINT_SYSTEM
from agent.skill_writes import checkpoint_policy
from agent.prompt import PromptContext
from gateway.sessions import SessionService
from tests.fakes.model_server import FakeModelServer, hang, text, tool_calls
from tests.learning_support import (
    CHECKPOINT_MODEL,
    DEPLOY_SKILL,
    PDF_SKILL,
    checkpoint_requests,
    hermes,
    open_runtime,
    user_text,
)


async def test_fifteen_tool_calls_start_a_checkpoint_that_creates_a_shared_team_skill(
        home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server)
    announced: list[tuple[str, str]] = []

    async def announce(session, message: str) -> None:  # type: ignore[no-untyped-def]
        announced.append((session.id, message))

    runtime.services["announce"] = announce
    try:
        service = SessionService(runtime)
        alice = await runtime.store.new_session("slack:C1:U1", platform="slack", chat_id="C1", user_id="U1",
                                                team="ops")
        # the task runs on after call 15 (a slow last step): the mid-task review does not wait for it
        model_server.add(*[tool_calls(("list_files", {"path": "."})) for _ in range(15)],
                         text("Deployed.", delay=3.0))
        model_server.add(
            tool_calls(("skill_manage", {"action": "create", "name": "deploy-staging", "category": "devops",
                                         "content": DEPLOY_SKILL})),
            tool_calls(("memory", {"action": "add", "target": "memory",
                                   "text": "Staging deploys: migrate before release"})),
            text("Accomplished: deployed staging.\nSkill: created deploy-staging\n"
                 "Announce: deploy-staging: the 4 steps and the migration pitfall"),
            model=CHECKPOINT_MODEL)
        result = await service.run_turn(alice, "please deploy branch main to the staging cluster")
        assert result.tool_calls == 15 and result.text == "Deployed."
        await runtime.drain()

        requests = checkpoint_requests(model_server)
        # the mid-task review at call 15 (create, memory, report), then the review of the whole task
        assert len(requests) == 4
        assert model_server.purposes.count("checkpoint") == 4
        first = requests[0]
        assert first["messages"][0]["content"] == CHECKPOINT_SYSTEM
        request = user_text(first)
        assert "please deploy branch main to the staging cluster" in request  # the transcript slice
        assert request.count("[calls list_files(") == 15 and request.count("[list_files ok]") == 15
        assert "the answer is not known yet" in request and "Deployed." not in request
        final = user_text(requests[3])  # the whole task again: request, steps, answer, and what was done
        assert "please deploy branch main to the staging cluster" in final and "ASSISTANT: Deployed." in final
        assert final.count("[calls list_files(") == 15
        assert "## An earlier review of this same task already did" in final
        assert "skill create deploy-staging" in final and "Staging deploys: migrate before release" in final
        assert "## Current skill index" in request and "code-review" in request  # the skill index
        assert {t["function"]["name"] for t in first["tools"]} == {"skill_manage", "memory", "skill_view",
                                                                     "skill_search"}

        # the skill is valid, in the ops library only
        skill_file = home / "teams" / "ops" / "skills" / "devops" / "deploy-staging" / "SKILL.md"
        assert skill_file.is_file()
        assert skills_ref_validate(skill_file.parent) == []
        assert not list((home / "skills").rglob("deploy-staging"))
        memory_file = home / "teams" / "ops" / "memories" / "MEMORY.md"
        assert "Staging deploys: migrate before release" in memory_file.read_text()

        # the originating session hears about it, with the name usable as a slash command
        assert announced == [(alice.id, "Learned: created skill `/deploy-staging` — the 4 steps and the "
                                        "migration pitfall")]

        # another user of the same team gets it in the next session's index; another team does not
        bob = await runtime.store.new_session("slack:C1:U2", platform="slack", chat_id="C1", user_id="U2",
                                              team="ops")
        model_server.add(text("Sure."))
        await service.run_turn(bob, "deploy the staging cluster again")
        bob_system = model_server.requests_for("fake-model")[-1]["messages"][0]["content"]
        assert "- deploy-staging:" in bob_system
        assert "migrate before release" in bob_system  # the team memory, in the new session's snapshot
        carol = await runtime.store.new_session("slack:C9:U3", platform="slack", chat_id="C9", user_id="U3",
                                                team="sales")
        model_server.add(text("Sure."))
        await service.run_turn(carol, "deploy the staging cluster again")
        carol_system = model_server.requests_for("fake-model")[-1]["messages"][0]["content"]
        assert "deploy-staging" not in carol_system and "migrate before release" not in carol_system
        assert not (home / "teams" / "sales" / "skills" / "devops" / "deploy-staging").exists()

        entries = await loop.log.entries()
        assert [e["cause"] for e in entries] == ["end_of_turn", "mid_task"]
        entry = entries[1]
        assert entry["session"] == alice.id and entry["status"] == "done"
        assert entry["skills"][0]["name"] == "deploy-staging" and entry["skills"][0]["action"] == "create"
        assert "+## Procedure" in entry["skills"][0]["diff"]
        assert entry["memory"][0]["action"] == "add"
        assert entry["prompt_tokens"] == 33 and entry["completion_tokens"] == 21
    finally:
        await runtime.close()


async def test_a_task_that_ends_just_after_call_15_gets_one_review_of_the_whole_task(
        home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server)
    try:
        model_server.add(*[tool_calls(("list_files", {"path": "."})) for _ in range(16)], text("All 16 done."))
        session = await runtime.store.new_session("cli:q", platform="cli", user_id="local")
        result = await SessionService(runtime).run_turn(session, "run the sixteen step release checklist")
        assert result.tool_calls == 16
        await runtime.drain()
        requests = model_server.requests_with_purpose("checkpoint")
        assert len(requests) == 1  # the mid-task review had not started: folded into the whole-task one
        request = user_text(requests[0])
        assert "run the sixteen step release checklist" in request and "ASSISTANT: All 16 done." in request
        assert request.count("[calls list_files(") == 16
        reviews = await runtime.store.reviews_all()
        assert [(r.reason, r.status) for r in reviews] == [("mid_task", "merged"), ("end_of_turn", "done")]
    finally:
        await runtime.close()


async def test_a_patch_to_the_used_skill_lands_and_shows_in_history(home: Path,
                                                                     model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server, learning="checkpoint_every = 50")
    try:
        library = await loop.library_for("design")
        # a skill an earlier review created (a person's would be protected: its patches become proposals)
        await library.create("pdf-report", PDF_SKILL, "reports", origin="test", policy=checkpoint_policy())
        service = SessionService(runtime)
        session = await runtime.store.new_session("tg:42", platform="telegram", chat_id="42", user_id="42",
                                                  team="design")
        model_server.add(tool_calls(("skill_view", {"name": "pdf-report"})),
                         *[tool_calls(("list_files", {"path": "."})) for _ in range(7)],
                         text("Here is the report."))
        model_server.add(
            tool_calls(("skill_manage", {"action": "patch", "name": "pdf-report",
                                         "old_text": "Place the logo at 100% opacity in the header.",
                                         "new_text": "Place the logo in the header: 50% opacity on light "
                                                     "backgrounds, 100% on dark ones."})),
            text("Skill: patched pdf-report"),  # no Announce line: the summary comes from the diff
            model=CHECKPOINT_MODEL)
        result = await service.run_turn(session, "make the monthly pdf report")
        assert result.tool_calls == 8
        await runtime.drain()

        request = user_text(checkpoint_requests(model_server)[0])
        assert "## Skill used: pdf-report" in request and "100% opacity" in request
        body = (await library.read("pdf-report"))
        assert "50% opacity on light backgrounds" in body and "100% opacity in the header" not in body
        code, out, err = await hermes("skills", "--team", "design", "history", "pdf-report", "--json", home=home)
        assert code == 0, err
        changes = json.loads(out)
        assert [c["action"] for c in changes] == ["create", "patch"]
        assert changes[-1]["origin"] == f"session:{session.id}"
        entry = (await loop.log.entries())[0]
        assert entry["cause"] == "end_of_turn" and entry["skills"][0]["action"] == "patch"
    finally:
        await runtime.close()


async def test_near_duplicate_create_is_refused_and_the_model_told_to_patch(
        home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server, learning="checkpoint_every = 2")
    try:
        library = await loop.library_for("")
        await library.create("deploy-staging", DEPLOY_SKILL, "devops", policy=checkpoint_policy())
        duplicate = DEPLOY_SKILL.replace("name: deploy-staging", "name: staging-deploy")
        model_server.add(tool_calls(("list_files", {"path": "."})), tool_calls(("list_files", {"path": "."})),
                         text("ok"))
        model_server.add(
            tool_calls(("skill_manage", {"action": "create", "name": "staging-deploy", "content": duplicate})),
            tool_calls(("skill_manage", {"action": "patch", "name": "deploy-staging",
                                         "old_text": "## Verification",
                                         "new_text": "## Verification\n- The release tag shows in the UI."})),
            text("Skill: patched deploy-staging\nAnnounce: deploy-staging: check the release tag in the UI"),
            model=CHECKPOINT_MODEL)
        session = await runtime.store.new_session("cli:x", platform="cli", user_id="local")
        await SessionService(runtime).run_turn(session, "deploy to staging")
        await runtime.drain()
        requests = checkpoint_requests(model_server)
        refusal = [m for m in requests[1]["messages"] if m["role"] == "tool"][0]["content"]
        assert "is the same procedure as existing skill(s) deploy-staging" in refusal and "patch" in refusal
        assert "## Similar existing skills" in user_text(requests[0])
        snapshot = await library.snapshot(force=True)
        assert snapshot.get("staging-deploy") is None
        assert "release tag" in (await library.read("deploy-staging"))
    finally:
        await runtime.close()


async def test_the_users_turn_returns_before_the_checkpoint_model_answers(
        home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server, learning="checkpoint_every = 3")
    try:
        model_server.add(*[tool_calls(("list_files", {"path": "."})) for _ in range(3)], text("Done."))
        model_server.add(hang(1.5), model=CHECKPOINT_MODEL)
        session = await runtime.store.new_session("cli:y", platform="cli", user_id="local")
        started = time.perf_counter()
        result = await SessionService(runtime).run_turn(session, "list things three times")
        elapsed = time.perf_counter() - started
        assert result.text == "Done."
        assert elapsed < 1.2, f"the turn waited for the checkpoint ({elapsed:.2f}s)"
        assert runtime.background, "the checkpoint should still be running"
        for _ in range(200):  # the review starts in the background, right after the turn
            entries = await loop.log.entries()
            if entries:
                break
            await asyncio.sleep(0.01)
        assert entries[0]["status"] == "running" and entries[0]["cause"] == "end_of_turn"
        await runtime.drain()  # what hermes chat -q does before it exits
        assert not runtime.background
        assert (await loop.log.entries())[0]["status"] == "done"
    finally:
        await runtime.close()


async def test_off_mode_offers_no_skill_writes_but_memory_still_learns(
        home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server,
                                       learning='checkpoint_every = 1\nauto_skills = "off"')
    try:
        model_server.add(tool_calls(("list_files", {"path": "."})), text("ok"))
        model_server.add(tool_calls(("memory", {"action": "add", "target": "user",
                                                "text": "Wants answers as bullet lists"})),
                         text("Remember: bullet lists"), model=CHECKPOINT_MODEL)
        session = await runtime.store.new_session("tg:7", platform="telegram", chat_id="7", user_id="7")
        await SessionService(runtime).run_turn(session, "no, always answer me with bullet lists")
        await runtime.drain()
        request = checkpoint_requests(model_server)[0]
        assert "skill_manage" not in {t["function"]["name"] for t in request["tools"]}
        assert "no, always answer me with bullet lists" in user_text(request).split(
            "## Possible corrections")[1]  # the correction is called out for the checkpoint
        user_file = home / "memories" / "users" / "telegram" / "7" / "USER.md"
        assert "Wants answers as bullet lists" in user_file.read_text()
    finally:
        await runtime.close()


async def test_the_daily_budget_defers_reviews_and_says_so(home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server, learning="end_of_turn_min_tool_calls = 1\n"
                                                                      "daily_token_budget = 10")
    try:
        service = SessionService(runtime)
        session = await runtime.store.new_session("cli:z", platform="cli", user_id="local")
        for _ in range(2):
            model_server.add(tool_calls(("list_files", {"path": "."})), text("ok"))
            await service.run_turn(session, "list files")
            await runtime.drain()
        entries = await loop.log.entries()
        assert [e["status"] for e in entries] == ["deferred", "done"]
        assert "daily learning budget of team (default library) (10 tokens) is spent" in entries[0]["error"]
        assert entries[0]["refusals"][0]["kind"] == "budget"
        assert len(checkpoint_requests(model_server)) == 1
        # the deferred review is kept in the queue for tomorrow, not dropped
        assert [r.reason for r in await loop.queue.waiting(("deferred",))] == ["end_of_turn"]
        usage = await runtime.store.usage_since(0, purpose="checkpoint")
        assert usage.total_tokens == 18
    finally:
        await runtime.close()


async def test_memory_snapshot_is_frozen_for_the_session(home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server)
    try:
        service = SessionService(runtime)
        session = await runtime.store.new_session("cli:m", platform="cli", user_id="local")
        model_server.add(tool_calls(("memory", {"action": "add", "text": "The NAS is at nas.lan"})), text("Noted."),
                         text("Yes."))
        await service.run_turn(session, "remember the NAS is at nas.lan")
        await service.run_turn(session, "thanks")
        prompts = [r["messages"][0]["content"] for r in model_server.requests_for("fake-model")]
        assert len(set(prompts)) == 1 and "nas.lan" not in prompts[0]  # byte-identical within the session
        fresh = await runtime.prompt.build(PromptContext(session_id="another", platform="cli", user_id="local"))
        assert "- " in fresh and "The NAS is at nas.lan" in fresh
    finally:
        await runtime.close()
