"""`hermes trajectories compress`: long trajectories fit the target, first and last turns intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.compress import SPAN_SUMMARY_PREFIX, TOOL_SUMMARY_PREFIX, CompressSettings, TrajectoryCompressor
from agent.llm import LLMClient
from agent.settings import ModelConfig
from agent.trajectory import Trajectory
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, Reply, text
from tests.test_batch_run import hermes


def long_trajectory(ident: str = "long", steps: int = 4, output_chars: int = 4000) -> Trajectory:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Survey the logs and report the errors."}]
    for n in range(steps):
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"c{n}", "type": "function",
             "function": {"name": "read_file", "arguments": json.dumps({"path": f"log{n}.txt"})}}]})
        body = " ".join(f"line{n}-{i} status=ok latency={i % 97}ms" for i in range(output_chars // 30))
        messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": body[:output_chars]})
    messages.append({"role": "assistant", "content": "Found 3 errors: disk full on log1, timeout on log2."})
    return Trajectory(id=ident, prompt=messages[0]["content"], system="You are a log analyst.", messages=messages,
                      success=True, status="done")


def summariser(body: dict[str, Any]) -> Reply:
    return text("log lines, all ok except one timeout")


async def test_compression_fits_the_target_and_keeps_first_and_last_turns(model_server: FakeModelServer) -> None:
    model_server.add(*[summariser] * 50)
    llm = LLMClient(ModelConfig(name="openai/fake-model", api_base=model_server.base_url, api_key="sk-test"))
    compressor = TrajectoryCompressor(llm, CompressSettings(target_tokens=700, keep_last=1))
    original = long_trajectory()
    before = compressor.count(original)
    assert before > 3000
    result = await compressor.compress(original)
    info = result.compression
    assert info is not None and info.tokens_before == before
    assert info.tokens_after == compressor.count(result) <= 700 and info.fits
    assert result.system == original.system
    assert result.messages[0] == original.messages[0]                    # the first user turn
    assert result.messages[-1] == original.messages[-1]                  # the final answer, untouched
    assert info.summarised_tool_outputs >= 1
    summarised = [m for m in result.messages if str(m.get("content") or "").startswith(TOOL_SUMMARY_PREFIX)]
    assert summarised and all(m["role"] == "tool" for m in summarised)
    # the summaries were asked of the model with the tool output to summarise
    assert any("line0-1 status=ok" in r["messages"][-1]["content"] for r in model_server.requests)
    assert original.messages[2]["content"].startswith("line0-0")       # the input is not modified


async def test_span_summary_when_tool_summaries_are_not_enough(model_server: FakeModelServer) -> None:
    model_server.add(*[summariser] * 50)
    llm = LLMClient(ModelConfig(name="openai/fake-model", api_base=model_server.base_url, api_key="sk-test"))
    original = long_trajectory(steps=30, output_chars=400)
    compressor = TrajectoryCompressor(llm, CompressSettings(target_tokens=400, keep_last=2))
    result = await compressor.compress(original)
    assert result.compression is not None and result.compression.summarised_span and result.compression.fits
    assert result.messages[0] == original.messages[0]
    assert result.messages[1]["role"] == "user" and result.messages[1]["content"].startswith(SPAN_SUMMARY_PREFIX)
    # the last 2 messages start with a tool result: the kept tail widens to its assistant call
    assert result.messages[2:] == original.messages[-3:]
    assert result.messages[2]["role"] == "assistant"


async def test_compress_command_prints_the_figures(home: Path, model_server: FakeModelServer, tmp_path: Path) -> None:
    write_config(home, model_config(model_server))
    model_server.add(*[summariser] * 50)
    source = tmp_path / "trajectories.jsonl"
    short = Trajectory(id="short", prompt="hi", messages=[{"role": "user", "content": "hi"},
                                                        {"role": "assistant", "content": "hello"}], success=True)
    source.write_text(long_trajectory().to_line() + short.to_line(), encoding="utf-8")
    output = tmp_path / "compressed.jsonl"
    code, out, err = await hermes("trajectories", "compress", "--input", str(source), "--target-tokens", "700",
                                  "--keep-last", "1", "--output", str(output), home=home)
    assert code == 0, err
    assert "2 trajectories:" in out and "2/2 (100%) fit in 700 tokens" in out
    records = [Trajectory.from_line(line) for line in output.read_text().splitlines(keepends=True)]
    assert [r.id for r in records] == ["long", "short"]
    assert records[0].compression.tokens_after <= 700 < records[0].compression.tokens_before
    assert records[1].messages == short.messages
    # the compressed file exports like a checkpoint
    exported = tmp_path / "train.jsonl"
    code, out, err = await hermes("trajectories", "export", "--input", str(output), "--output", str(exported),
                                  home=home)
    assert code == 0 and "wrote 2 trajectories" in out
