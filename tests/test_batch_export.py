"""`hermes trajectories export`: the exact ShareGPT shape, OpenAI format, filters, and no secret leaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.export import TOOL_CALL_INSTRUCTIONS, TOOLS_PREAMBLE
from agent.tools.files import FILE_TOOLS
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, Reply, text
from tests.store_support import home_store
from tests.test_batch_run import first_user, hermes

ENV_SECRET = "zq81-very-secret-value-4402"
SHAPED_SECRET = "sk-proj-abcdefghijklmnop1234567890"


def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def tool_using(body: dict[str, Any]) -> Reply:
    """write a file, then read it back together with a listing, then answer."""
    tool_turns = sum(1 for m in body["messages"] if m["role"] == "assistant" and m.get("tool_calls"))
    prompt = first_user(body)
    if tool_turns == 0:
        return Reply(content="Saving it.", calls=[call("call_w", "write_file", {"path": "n.txt", "content": prompt})])
    if tool_turns == 1:
        return Reply(calls=[call("call_r", "read_file", {"path": "n.txt"}), call("call_l", "list_files", {})])
    return text("Saved and checked.")


async def test_sharegpt_export_of_a_tool_using_trajectory(home: Path, model_server: FakeModelServer,
                                                          tmp_path: Path) -> None:
    write_config(home, model_config(model_server))
    model_server.add(*[tool_using] * 10, text("just text"))
    prompts = tmp_path / "in.jsonl"
    prompts.write_text(json.dumps({"id": "job-1", "prompt": "note: buy milk", "system": "You are a test agent."})
                       + "\n", encoding="utf-8")
    checkpoint = tmp_path / "ck"
    code, _, err = await hermes("batch", "--input", str(prompts), "--checkpoint", str(checkpoint),
                                "--toolsets", "files", "--workers", "1", home=home)
    assert code == 0, err
    output = tmp_path / "sharegpt.jsonl"
    code, out, err = await hermes("trajectories", "export", "--checkpoint", str(checkpoint), "--format", "sharegpt",
                                  "--output", str(output), home=home)
    assert code == 0, err
    assert "wrote 1 trajectories" in out
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    tools = json.dumps([t.schema() for t in FILE_TOOLS], ensure_ascii=False)
    assert record == {"id": "job-1", "conversations": [
        {"from": "system", "value": f"You are a test agent.\n\n{TOOLS_PREAMBLE}\n<tools>\n{tools}\n</tools>\n"
                                    f"{TOOL_CALL_INSTRUCTIONS}"},
        {"from": "human", "value": "note: buy milk"},
        {"from": "gpt", "value": 'Saving it.\n<tool_call>\n{"name": "write_file", "arguments": '
                                 '{"path": "n.txt", "content": "note: buy milk"}}\n</tool_call>'},
        {"from": "tool", "value": '<tool_response>\n{"tool_call_id": "call_w", "name": "write_file", '
                                  '"content": "wrote 14 characters to n.txt"}\n</tool_response>'},
        {"from": "gpt", "value": '<tool_call>\n{"name": "read_file", "arguments": {"path": "n.txt"}}\n</tool_call>\n'
                                 '<tool_call>\n{"name": "list_files", "arguments": {}}\n</tool_call>'},
        {"from": "tool", "value": '<tool_response>\n{"tool_call_id": "call_r", "name": "read_file", '
                                  '"content": "note: buy milk"}\n</tool_response>\n'
                                  '<tool_response>\n{"tool_call_id": "call_l", "name": "list_files", '
                                  '"content": "n.txt (14 bytes)"}\n</tool_response>'},
        {"from": "gpt", "value": "Saved and checked."},
    ]}
    assert "<tools>" in record["conversations"][0]["value"]

    # OpenAI chat format keeps the tool calls structured, and the id
    openai_out = tmp_path / "openai.jsonl"
    code, out, err = await hermes("trajectories", "export", "--checkpoint", str(checkpoint), "--format", "openai",
                                  "--output", str(openai_out), "--min-turns", "3", "--max-turns", "3", home=home)
    assert code == 0, err
    record = json.loads(openai_out.read_text(encoding="utf-8"))
    assert record["id"] == "job-1"
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant", "tool", "assistant", "tool",
                                                        "tool", "assistant"]
    assert record["messages"][4]["tool_calls"][1]["function"] == {"name": "list_files", "arguments": "{}"}
    assert record["messages"][6] == {"role": "tool", "tool_call_id": "call_l", "content": "n.txt (14 bytes)"}
    assert [t["function"]["name"] for t in record["tools"]] == ["read_file", "write_file", "list_files"]
    # the filters: 3 model replies is not "at least 4"
    code, out, err = await hermes("trajectories", "export", "--checkpoint", str(checkpoint), "--output",
                                  str(tmp_path / "none.jsonl"), "--min-turns", "4", home=home)
    assert code == 0 and "wrote 0 trajectories" in out and "1 of 1 left out" in out
    assert (tmp_path / "none.jsonl").read_text() == ""


async def test_success_only_filter_and_missing_checkpoint(home: Path, model_server: FakeModelServer,
                                                          tmp_path: Path) -> None:
    write_config(home, model_config(model_server))

    def answer(body: dict[str, Any]) -> Reply:
        return Reply(status=400) if first_user(body) == "bad" else text("fine")

    model_server.add(*[answer] * 10)
    prompts = tmp_path / "in.jsonl"
    prompts.write_text('{"id": "a", "prompt": "good"}\n{"id": "b", "prompt": "bad"}\n', encoding="utf-8")
    code, out, err = await hermes("batch", "--input", str(prompts), "--checkpoint", str(tmp_path / "ck"),
                                  "--toolsets", "", home=home)
    assert code == 0, err
    assert "completed  1" in out and "failed     1" in out
    output = tmp_path / "out.jsonl"
    code, out, err = await hermes("trajectories", "export", "--checkpoint", str(tmp_path / "ck"), "--output",
                                  str(output), "--success-only", home=home)
    assert code == 0, err
    assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == ["a"]
    code, out, err = await hermes("trajectories", "export", "--checkpoint", str(tmp_path / "nope"), "--output",
                                  str(output), home=home)
    assert code == 2 and "nope" in err and "no such checkpoint" in err


async def test_secrets_never_reach_the_output_files(home: Path, model_server: FakeModelServer,
                                                    tmp_path: Path) -> None:
    write_config(home, model_config(model_server))

    def leaky(body: dict[str, Any]) -> Reply:
        tool_turns = sum(1 for m in body["messages"] if m["role"] == "assistant" and m.get("tool_calls"))
        if tool_turns == 0:  # the model writes the secret into a file (tool arguments) ...
            return Reply(calls=[call("c1", "write_file", {"path": "s.txt", "content": f"token {ENV_SECRET}"})])
        if tool_turns == 1:  # ... and reads it back (tool output)
            return Reply(calls=[call("c2", "read_file", {"path": "s.txt"})])
        return text(f"the token is {ENV_SECRET} and the key {SHAPED_SECRET}")

    model_server.add(*[leaky] * 10)
    prompts = tmp_path / "in.jsonl"
    prompts.write_text(json.dumps({"id": "s1", "prompt": f"use key {SHAPED_SECRET}",
                                   "metadata": {"note": f"api_key={SHAPED_SECRET}"}}) + "\n", encoding="utf-8")
    checkpoint = tmp_path / "ck"
    env = {"HERMES_BENCH_API_TOKEN": ENV_SECRET}
    code, _, err = await hermes("batch", "--input", str(prompts), "--checkpoint", str(checkpoint), "--toolsets",
                                "files", home=home, env=env)
    assert code == 0, err
    # the secret did go through the model and the tools (so the test can fail) ...
    assert any(ENV_SECRET in m.get("content") or "" for r in model_server.requests for m in r["messages"]
               if m["role"] == "tool")
    for fmt in ("sharegpt", "openai"):
        code, _, err = await hermes("trajectories", "export", "--checkpoint", str(checkpoint), "--format", fmt,
                                    "--output", str(tmp_path / f"{fmt}.jsonl"), home=home, env=env)
        assert code == 0, err
    written = [(checkpoint / "shards").glob("*.jsonl"), [checkpoint / "index.jsonl"],
               [tmp_path / "sharegpt.jsonl", tmp_path / "openai.jsonl"]]
    files = [path for group in written for path in group]
    assert len(files) == 4
    assert not any((checkpoint / "workspaces").iterdir())  # the file the model wrote went with its workspace
    for path in files:
        content = path.read_text(encoding="utf-8")
        assert ENV_SECRET not in content and SHAPED_SECRET not in content, path
    shard = next((checkpoint / "shards").glob("*.jsonl")).read_text(encoding="utf-8")
    record = json.loads(shard)
    assert record["prompt"] == "use key [REDACTED]"
    assert record["tool_calls"][1]["result"] == "token [REDACTED]"
    assert json.loads(record["tool_calls"][0]["arguments"]) == {"path": "s.txt", "content": "token [REDACTED]"}
    assert "[REDACTED]" in (tmp_path / "sharegpt.jsonl").read_text()


async def test_export_from_sessions_only_for_teams_that_opted_in(home: Path, tmp_path: Path) -> None:
    write_config(home, '[[teams]]\nname = "research"\nchannels = ["slack:C1"]\ntrajectories_export = true\n\n'
                       '[[teams]]\nname = "legal"\nchannels = ["slack:C2"]\n')
    async with home_store(home, migrate=True) as store:   # the home's store on either engine (--store=postgresql)
        for team, channel, words in (("research", "C1", "research question"), ("legal", "C2", "legal question")):
            session = await store.new_session(f"slack:{channel}", platform="slack", chat_id=channel, team=team)
            await store.add_message(session.id, {"role": "user", "content": f"{words} password=hunter2hunter2"})
            await store.add_message(session.id, {"role": "assistant", "content": "an answer"})
    output = tmp_path / "sessions.jsonl"
    code, out, err = await hermes("trajectories", "export", "--from-sessions", "--format", "sharegpt", "--output",
                                  str(output), home=home)
    assert code == 0, err
    assert "1 session left out" in err
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 1
    turns = records[0]["conversations"]
    assert turns[-2] == {"from": "human", "value": "research question password=[REDACTED]"}
    assert turns[-1] == {"from": "gpt", "value": "an answer"}
    assert "legal" not in output.read_text()

    write_config(home, '[[teams]]\nname = "legal"\nchannels = ["slack:C2"]\n')
    code, out, err = await hermes("trajectories", "export", "--from-sessions", "--output", str(output), home=home)
    assert code == 2 and "trajectories_export = true" in err
