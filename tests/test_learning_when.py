"""When a review runs: counters that survive a restart, every N user turns, idle sessions; the cost
of every model call attributed by `X-Hermes-Purpose`; the learning log for API users."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from gateway.commands import CommandContext, parse_command
from gateway.sessions import SessionService
from tests.conftest import model_config
from tests.fakes.gateway_harness import TOKEN, api_section, start_gateway
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.learning_support import open_runtime, user_text


async def test_the_tool_call_counter_survives_a_restart(home: Path, model_server: FakeModelServer) -> None:
    settings = "checkpoint_every = 6\nend_of_turn_min_tool_calls = 50"
    runtime, _loop = await open_runtime(home, model_server, learning=settings)
    session = await runtime.store.new_session("cli:r", platform="cli", user_id="local")
    try:
        model_server.add(*[tool_calls(("list_files", {"path": "."})) for _ in range(4)], text("Four done."))
        await SessionService(runtime).run_turn(session, "first half: four listings")
        await runtime.drain()
        assert model_server.requests_with_purpose("checkpoint") == []
    finally:
        await runtime.close()
    runtime, _loop = await open_runtime(home, model_server, learning=settings)  # a new process, same state.db
    try:
        model_server.add(*[tool_calls(("list_files", {"path": "."})) for _ in range(3)], text("Seven done."))
        await SessionService(runtime).run_turn(session, "second half: three more")
        await runtime.drain()
        reviews = [(r.reason, r.status) for r in await runtime.store.reviews_all()]
        assert reviews == [("mid_task", "merged"), ("end_of_turn", "done")]  # call 6 counted across the restart
        request = user_text(model_server.requests_with_purpose("checkpoint")[0])
        assert "first half: four listings" in request and "ASSISTANT: Seven done." in request
    finally:
        await runtime.close()


async def test_every_n_user_turns_and_an_idle_session_are_reviewed(home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server, learning="review_every_user_turns = 3\n"
                                                                     "review_idle_seconds = 1")
    try:
        service = SessionService(runtime)
        session = await runtime.store.new_session("cli:n", platform="cli", user_id="local")
        for number in range(1, 5):
            model_server.add(text(f"Reply {number}."), purpose="chat")
            await service.run_turn(session, f"small talk {number}")
        await runtime.drain()
        reasons = [r.reason for r in await runtime.store.reviews_all()]
        assert reasons == ["user_turns"]  # after the third turn; the fourth waits
        await loop.resume()  # the gateway starts the idle sweeper
        for _ in range(100):
            rows = [(r.reason, r.status) for r in await runtime.store.reviews_all()]
            if len(rows) == 2 and rows[1][1] == "done":
                break
            await asyncio.sleep(0.05)
        assert rows == [("user_turns", "done"), ("idle", "done")]
        requests = [user_text(r) for r in model_server.requests_with_purpose("checkpoint")]
        assert "small talk 1" in requests[0] and "small talk 3" in requests[0] and "small talk 4" not in requests[0]
        assert "small talk 4" in requests[1] and "small talk 3" not in requests[1]
    finally:
        await runtime.close()


async def test_delegated_and_review_calls_say_their_purpose(home: Path, model_server: FakeModelServer) -> None:
    runtime, _loop = await open_runtime(home, model_server, learning="end_of_turn_min_tool_calls = 1")
    try:
        model_server.add(tool_calls(("delegate", {"task": "count the files"})), text("There are none."),
                         purpose="chat")
        model_server.add(text("Zero files."), purpose="delegate")
        session = await runtime.store.new_session("cli:d", platform="cli", user_id="local")
        result = await SessionService(runtime).run_turn(session, "how many files are there?")
        await runtime.drain()
        assert result.text == "There are none."
        assert model_server.purposes == ["chat", "delegate", "chat", "checkpoint"]
    finally:
        await runtime.close()


async def test_api_users_read_the_learning_log_as_json_and_tokens_split_by_purpose(
        home: Path, model_server: FakeModelServer) -> None:
    config = (model_config(model_server) + api_section()
              + "[learning]\nend_of_turn_min_tool_calls = 1\n[skills]\ninstall_bundled = false\n")
    gateway, _ = await start_gateway(home, config, platforms=())
    auth = {"Authorization": f"Bearer {TOKEN}"}
    model_server.add(tool_calls(("list_files", {"path": "."})), text("Listed."), purpose="chat")
    model_server.add(tool_calls(("memory", {"action": "add", "target": "user", "text": "Likes short answers"})),
                     text("Remember: short answers"), purpose="checkpoint")
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.post(gateway.url + "v1/chat/completions", json={
                    "model": "hermes", "user": "web-1", "messages": [{"role": "user", "content": "list my files"}]}) as r:
                assert r.status == 200
            assert gateway.runtime is not None
            await gateway.runtime.drain(30)
            async with http.get(gateway.url + "learning?user=web-1&after=0",
                                headers={"Accept": "application/json"}) as r:
                assert r.status == 200 and r.content_type == "application/json"
                data = await r.json()
            async with http.get(gateway.url + "learning?limit=nope", headers={"Accept": "application/json"}) as r:
                assert r.status == 400 and "limit" in (await r.json())["error"]["message"]
            async with http.get(gateway.url + "learning?user=someone-else",
                                headers={"Accept": "application/json"}) as r:
                assert (await r.json())["entries"] == []  # another user's conversation shows nothing
            async with http.get(gateway.url + "metrics") as r:
                metrics = await r.text()
        entry = data["entries"][0]
        assert entry["cause"] == "end_of_turn" and entry["status"] == "done"
        assert "Likes short answers" in entry["memory"][0]["diff"]
        assert data["notices"] == [{"id": entry["id"], "text": "Remembered about you: "
                                                               f"{entry['memory'][0]['diff'].splitlines()[-1][3:]}"}]
        assert data["notices"][0]["text"].endswith("Likes short answers")
        assert set(data["usage_by_purpose"]) == {"chat", "checkpoint"}
        assert data["usage_by_purpose"]["checkpoint"]["calls"] == 2
        assert 'hermes_purpose_tokens_total{kind="prompt",purpose="chat"} 22.0' in metrics
        assert 'hermes_purpose_tokens_total{kind="prompt",purpose="checkpoint"} 22.0' in metrics
        command = parse_command("/usage")
        assert command is not None
        answer = await gateway.dispatcher.commands.answer(command, CommandContext("api:web-1", "api", "web-1",
                                                                                   "web-1", ""))
        assert "By purpose, last 24 hours: chat 36, checkpoint 36 tokens." in answer
    finally:
        await gateway.stop()


async def test_a_review_stops_at_review_max_tokens_and_logs_what_it_did(
        home: Path, model_server: FakeModelServer) -> None:
    runtime, loop = await open_runtime(home, model_server, learning="end_of_turn_min_tool_calls = 1\n"
                                                                     "review_max_tokens = 30")
    try:
        model_server.add(tool_calls(("list_files", {"path": "."})), text("Listed."), purpose="chat")
        model_server.add(tool_calls(("memory", {"action": "add", "text": "Listing is cheap here"})),
                         tool_calls(("memory", {"action": "add", "text": "A second, costly thought"})),
                         tool_calls(("memory", {"action": "add", "text": "A third one, never reached"})),
                         purpose="checkpoint")
        session = await runtime.store.new_session("cli:cap", platform="cli", user_id="local")
        await SessionService(runtime).run_turn(session, "list the files")
        await runtime.drain()
        assert len(model_server.requests_with_purpose("checkpoint")) == 2  # 18 tokens a call: stopped at 36
        entry = (await loop.log.entries())[0]
        assert entry["status"] == "capped" and entry["prompt_tokens"] + entry["completion_tokens"] == 36
        assert entry["refusals"][-1]["kind"] == "budget" and "review_max_tokens" in entry["refusals"][-1]["message"]
        assert [m["action"] for m in entry["memory"]] == ["add"]  # what it did before the cap is logged
        memory = (home / "memories" / "MEMORY.md").read_text()
        assert "Listing is cheap here" in memory and "never reached" not in memory
        assert [r.status for r in await runtime.store.reviews_all()] == ["capped"]
    finally:
        await runtime.close()
