"""The agent loop through the real LiteLLM against the fake model server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.builtin import builtin_tools
from agent.events import Compressed, Event, ModelFallback, TextDelta, ToolFinished
from agent.llm import LLMClient, LLMError
from agent.loop import Agent, Conversation
from agent.settings import AgentConfig, ModelConfig, ToolsConfig
from agent.tools.registry import ToolContext, ToolRegistry, tool
from agent.workspace import Workspace
from tests.fakes.model_server import FakeModelServer, context_overflow, fault, hang, text, tool_calls


def make_agent(server: FakeModelServer, tmp_path: Path, **model: object) -> tuple[Agent, ToolContext]:
    settings = dict(name="openai/fake-model", api_base=server.base_url, api_key="sk-test", retry_base_delay=0.01)
    settings.update(model)
    llm = LLMClient(ModelConfig(**settings))
    registry = ToolRegistry()
    agent = Agent(llm, registry, AgentConfig(max_iterations=6))
    for t in builtin_tools(ToolsConfig(), agent.run_sub_agent):
        registry.register(t)
    ctx = ToolContext(workspace=Workspace(tmp_path / "ws").ensure(), session_id="s1")
    return agent, ctx


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


async def test_multi_step_tool_turn_streams_and_feeds_results_back(model_server: FakeModelServer,
                                                                   tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path)
    (ctx.workspace.root / "a.txt").write_text("alpha")
    model_server.add(tool_calls(("read_file", {"path": "a.txt"})), text("The file says alpha."))
    recorder = Recorder()
    conversation = Conversation(system="be brief")
    result = await agent.run_turn(conversation, "what is in a.txt?", ctx, on_event=recorder, stream=True)
    assert result.status == "done" and result.text == "The file says alpha." and result.tool_calls == 1
    assert "".join(d.text for d in recorder.of(TextDelta)) == "The file says alpha."
    second = model_server.requests[1]
    assert second["stream"] is True
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": second["messages"][-2]["tool_calls"][0]["id"],
                                      "content": "alpha"}
    assert [m["role"] for m in conversation.messages] == ["user", "assistant", "tool", "assistant"]


async def test_tool_errors_go_back_to_the_model(model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path)
    model_server.add(
        tool_calls(("read_file", {"path": "missing.txt"})),
        tool_calls(("no_such_tool", {})),
        tool_calls(("read_file", {"wrong": 1})),
        text("done"),
    )
    recorder = Recorder()
    result = await agent.run_turn(Conversation(system=""), "go", ctx, on_event=recorder)
    assert result.status == "done"
    outcomes = [(f.name, f.ok, f.result) for f in recorder.of(ToolFinished)]
    assert outcomes[0][1] is False and "missing.txt: no such file" in outcomes[0][2]
    assert "there is no tool named 'no_such_tool'" in outcomes[1][2]
    assert "invalid arguments for read_file" in outcomes[2][2] and "path" in outcomes[2][2]


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "sub/../../x", "~/x"])
async def test_file_tools_stay_inside_the_workspace(model_server: FakeModelServer, tmp_path: Path,
                                                    path: str) -> None:
    agent, ctx = make_agent(model_server, tmp_path)
    (tmp_path / "outside.txt").write_text("secret")
    model_server.add(tool_calls(("write_file", {"path": path, "content": "pwned"})),
                     tool_calls(("read_file", {"path": path})), text("ok"))
    recorder = Recorder()
    await agent.run_turn(Conversation(system=""), "go", ctx, on_event=recorder)
    results = recorder.of(ToolFinished)
    assert all(not r.ok for r in results)
    assert all("outside" in r.result or "absolute" in r.result for r in results)
    assert (tmp_path / "outside.txt").read_text() == "secret"


async def test_symlink_out_of_the_workspace_is_refused(model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "key").write_text("secret")
    (ctx.workspace.root / "link").symlink_to(tmp_path / "private")
    model_server.add(tool_calls(("read_file", {"path": "link/key"})), text("ok"))
    recorder = Recorder()
    await agent.run_turn(Conversation(system=""), "go", ctx, on_event=recorder)
    [finished] = recorder.of(ToolFinished)
    assert not finished.ok and "outside" in finished.result and "secret" not in finished.result


async def test_retries_after_429_and_500(model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path)
    model_server.add(fault(429, retry_after=0.05), fault(500), text("recovered"))
    result = await agent.run_turn(Conversation(system=""), "hi", ctx, stream=False)
    assert result.text == "recovered"
    assert len(model_server.requests) == 3


async def test_falls_back_to_the_next_model(model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path, max_retries=1, fallbacks=["openai/backup-model"])
    model_server.add(fault(503), fault(503), model="fake-model")
    model_server.add(text("from the backup"), model="backup-model")
    recorder = Recorder()
    result = await agent.run_turn(Conversation(system=""), "hi", ctx, on_event=recorder, stream=False)
    assert result.text == "from the backup"
    assert [r["model"] for r in model_server.requests] == ["fake-model", "fake-model", "backup-model"]
    [fallback] = recorder.of(ModelFallback)
    assert fallback.failed_model == "openai/fake-model" and fallback.next_model == "openai/backup-model"


async def test_every_model_failing_is_an_error_naming_them(model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path, max_retries=0, fallbacks=["openai/backup-model"])
    model_server.add(fault(500), model="fake-model")
    model_server.add(fault(401), model="backup-model")
    with pytest.raises(LLMError) as info:
        await agent.run_turn(Conversation(system=""), "hi", ctx, stream=False)
    assert "openai/fake-model" in str(info.value) and "openai/backup-model" in str(info.value)


async def test_timeout_is_retried(model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path, timeout=0.5, max_retries=1)
    model_server.add(hang(3), text("second try"))
    result = await agent.run_turn(Conversation(system=""), "hi", ctx, stream=False)
    assert result.text == "second try"


async def test_interrupt_stops_a_running_tool_and_keeps_the_conversation_consistent(
        model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path)
    started = asyncio.Event()

    @tool
    async def slow(seconds: float) -> str:
        """Wait.

        Args:
            seconds: how long.
        """
        started.set()
        await asyncio.sleep(seconds)
        return "finished"

    agent.tools.register(slow)
    model_server.add(tool_calls(("slow", {"seconds": 30}), ("slow", {"seconds": 30})))
    interrupt = asyncio.Event()
    conversation = Conversation(system="")
    turn = asyncio.create_task(agent.run_turn(conversation, "wait", ctx, interrupt=interrupt))
    await asyncio.wait_for(started.wait(), 10)
    interrupt.set()
    result = await asyncio.wait_for(turn, 5)
    assert result.status == "interrupted"
    calls = conversation.messages[1]["tool_calls"]
    results = [m for m in conversation.messages if m["role"] == "tool"]
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in calls]
    assert all("Interrupted" in r["content"] for r in results)
    # the next turn works on the same conversation
    model_server.add(text("ready again"))
    again = await agent.run_turn(conversation, "hello?", ctx)
    assert again.text == "ready again"


async def test_iteration_cap_ends_the_turn_with_a_summary(model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path)
    for _ in range(6):
        model_server.add(tool_calls(("list_files", {})))
    model_server.add(text("I listed files six times; next, narrow the search."))
    result = await agent.run_turn(Conversation(system=""), "loop", ctx, max_iterations=6)
    assert result.status == "max_iterations" and result.tool_calls == 6
    assert "narrow the search" in result.text
    last = model_server.requests[-1]
    assert "tools" not in last and "used all 6 steps" in last["messages"][-1]["content"]


async def test_compression_keeps_first_and_recent_turns(model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path, context_window=1500)
    conversation = Conversation(system="sys")
    for i in range(12):
        conversation.messages.append({"role": "user", "content": f"question {i} " + "lorem ipsum " * 40})
        conversation.messages.append({"role": "assistant", "content": f"answer {i}"})
    model_server.add(text("SUMMARY: twelve questions about lorem ipsum"), text("final answer"))
    recorder = Recorder()
    result = await agent.run_turn(conversation, "latest question", ctx, on_event=recorder)
    assert result.text == "final answer"
    [compressed] = recorder.of(Compressed)
    assert compressed.tokens_after < compressed.tokens_before
    summarise_request, answer_request = model_server.requests
    assert "question 1 " in summarise_request["messages"][1]["content"]
    sent = answer_request["messages"]
    assert sent[1]["content"].startswith("question 0 ")          # first user turn kept
    assert sent[2]["content"].startswith("[Summary of earlier conversation]")
    assert "twelve questions" in sent[2]["content"]
    assert sent[-1] == {"role": "user", "content": "latest question"}  # recent turns kept
    assert sent[-2]["content"] == "answer 11"


async def test_context_overflow_from_the_model_triggers_compression(model_server: FakeModelServer,
                                                                    tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path, context_window=100_000)
    conversation = Conversation(system="")
    for i in range(6):
        conversation.messages += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    model_server.add(context_overflow(), text("short summary"), text("answer after compression"))
    agent.settings = AgentConfig(keep_recent_messages=2)
    result = await agent.run_turn(conversation, "now", ctx, stream=False)
    assert result.text == "answer after compression"
    assert any("[Summary of earlier conversation]" in str(m.get("content")) for m in conversation.messages)


async def test_delegate_runs_a_sub_agent_with_fresh_context(model_server: FakeModelServer, tmp_path: Path) -> None:
    agent, ctx = make_agent(model_server, tmp_path)
    model_server.add(
        tool_calls(("delegate", {"task": "count the files", "context": "the workspace is empty"})),
        text("There are 0 files."),      # the sub-agent's answer
        text("The sub-agent found 0 files."),
    )
    result = await agent.run_turn(Conversation(system="main prompt"), "delegate it", ctx)
    assert result.text == "The sub-agent found 0 files."
    sub_request = model_server.requests[1]
    assert "main prompt" not in json.dumps(sub_request["messages"])
    assert sub_request["messages"][-1]["content"].startswith("count the files")
    # the sub-agent (depth 1) is not allowed to delegate again
    assert model_server.requests[2]["messages"][-1]["content"] == "There are 0 files."
