"""`hermes batch` offers the tools chat has: the configured MCP servers' tools (the fake stdio
server of tests/fakes/mcp_server.py, over a real MCP connection), filtered by the same
`[toolsets]` rules (as for a platform named `batch`); `--help` names what is left out and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, text, tool_calls
from tests.mcp_support import stdio_server
from tests.test_batch_run import hermes


def offered(request: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools") or []}


def trajectories(checkpoint: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for shard in sorted((checkpoint / "shards").glob("*.jsonl"))
            for line in shard.read_text(encoding="utf-8").splitlines() if line.strip()]


async def test_batch_offers_and_calls_mcp_tools(home: Path, model_server: FakeModelServer, tmp_path: Path) -> None:
    write_config(home, model_config(model_server) + stdio_server("fake"))
    model_server.add(tool_calls(("fake__add", {"a": 2, "b": 3})), text("2 + 3 = 5"))
    prompts = tmp_path / "in.jsonl"
    prompts.write_text(json.dumps({"id": "sum-1", "prompt": "add 2 and 3 with your tool"}) + "\n", encoding="utf-8")
    checkpoint = tmp_path / "ck"
    code, out, err = await hermes("batch", "--input", str(prompts), "--checkpoint", str(checkpoint), "--workers",
                                  "1", home=home)
    assert code == 0, err
    assert {"fake__add", "fake__shout", "read_file"} <= offered(model_server.requests[0])
    [trajectory] = trajectories(checkpoint)
    assert trajectory["success"] is True and "mcp" in trajectory["toolsets"]
    tool_messages = [m for m in trajectory["messages"] if m["role"] == "tool"]
    assert tool_messages and tool_messages[0]["content"] == "5"
    assert "fake__add" in {t["function"]["name"] for t in trajectory["tools"]}
    assert "fake__add" in out      # the summary's tool-call table


async def test_toolsets_rules_and_the_toolsets_option_apply_to_batch(home: Path, model_server: FakeModelServer,
                                                                     tmp_path: Path) -> None:
    write_config(home, model_config(model_server) + stdio_server("fake")
                 + '[toolsets]\n[toolsets.sets]\nno_shout = ["*", "!fake__shout"]\n'
                   '[toolsets.platforms]\nbatch = "no_shout"\n')
    prompts = tmp_path / "in.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "hello"}) + "\n"
                       + json.dumps({"id": "b", "prompt": "hello", "toolsets": ["files"]}) + "\n", encoding="utf-8")
    model_server.add(text("hi"), text("hi"))
    code, _, err = await hermes("batch", "--input", str(prompts), "--checkpoint", str(tmp_path / "ck"), "--workers",
                                "1", home=home)
    assert code == 0, err
    assert len(model_server.requests) == 2
    with_mcp, files_only = sorted((offered(r) for r in model_server.requests), key=len, reverse=True)
    assert "fake__add" in with_mcp and "fake__shout" not in with_mcp     # [toolsets] removed it
    assert files_only == {"read_file", "write_file", "list_files"}        # the prompt's own toolsets


async def test_help_says_which_tools_are_left_out_and_why(home: Path) -> None:
    code, out, _ = await hermes("batch", "--help", home=home)
    assert code == 0
    flat = " ".join(out.split())
    assert "MCP servers' tools" in flat and "[toolsets]" in flat
    assert "Left out: skill_*, memory and cron, because a batch has no state store or skill library" in flat
