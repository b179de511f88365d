"""`hermes batch` end to end: the real CLI process, the real LiteLLM, the fake model server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from agent.batch import BatchRunner, BatchSettings, ModelGate, PromptItem, parse_prompts, select_prompts
from agent.checkpoint_store import CheckpointStore, iter_checkpoint
from agent.llm import LLMClient
from agent.redact import Redactor
from agent.settings import ModelConfig
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer, Reply, fault, text, tool_calls


async def hermes(*args: str, home: Path, timeout: float = 90, env: dict[str, str] | None = None
                 ) -> tuple[int, str, str]:
    full_env = {**os.environ, "HERMES_HOME": str(home), **(env or {})}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=full_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(), err.decode()


def first_user(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def per_prompt(body: dict[str, Any]) -> Reply:
    """Each prompt: one list_files call, then an answer naming the prompt."""
    prompt = first_user(body)
    if not any(m["role"] == "tool" for m in body["messages"]):
        return tool_calls(("list_files", {"path": "."}))
    return text(f"answer to {prompt}")


def write_prompts(path: Path, count: int, extra_lines: list[tuple[int, str]] = ()) -> None:
    lines = [json.dumps({"id": f"p{i}", "prompt": f"task {i}", "metadata": {"n": i}}) for i in range(count)]
    for position, line in extra_lines:
        lines.insert(position, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def shard_lines(checkpoint: Path) -> list[bytes]:
    lines: list[bytes] = []
    for shard in sorted((checkpoint / "shards").glob("results-*.jsonl")):
        lines.extend(shard.read_bytes().splitlines(keepends=True))
    return lines


async def test_twenty_prompts_four_workers_complete_and_a_bad_line_is_reported(
        home: Path, model_server: FakeModelServer, tmp_path: Path) -> None:
    write_config(home, model_config(model_server))
    model_server.add(*[per_prompt] * 100)
    prompts = tmp_path / "prompts.jsonl"
    write_prompts(prompts, 20, extra_lines=[(5, '{"id": "broken", "prompt": '), (9, '{"id": "x", "promt": "typo"}')])
    checkpoint = tmp_path / "ck"
    code, out, err = await hermes("batch", "--input", str(prompts), "--workers", "4", "--checkpoint",
                                  str(checkpoint), "--toolsets", "files", home=home)
    assert code == 0, err
    assert f"{prompts}:6: not valid JSON" in err
    assert f"{prompts}:10: prompt: Field required; promt: unknown key" in err
    assert "completed  20" in out and "failed     0" in out
    assert "list_files" in out and "20/20 selected prompts done" in out
    lines = shard_lines(checkpoint)
    assert len(lines) == 20 and all(line.endswith(b"\n") for line in lines)
    results = {r["id"]: r for r in map(json.loads, lines)}
    assert set(results) == {f"p{i}" for i in range(20)}
    p7 = results["p7"]
    assert p7["success"] and p7["status"] == "done" and p7["final"] == "answer to task 7"
    assert p7["model"] == "openai/fake-model" and p7["metadata"] == {"n": 7}
    assert [m["role"] for m in p7["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert p7["tool_calls"][0]["name"] == "list_files" and p7["tool_calls"][0]["ok"]
    assert p7["usage"]["calls"] == 2 and p7["usage"]["prompt_tokens"] == 22
    assert [t["function"]["name"] for t in p7["tools"]] == ["read_file", "write_file", "list_files"]
    # 20 prompts x 2 model calls, each prompt in a fresh conversation
    assert len(model_server.requests) == 40
    assert all(sum(m["role"] == "user" for m in r["messages"]) == 1 for r in model_server.requests)
    # every workspace is cleaned up after its prompt
    assert not any((checkpoint / "workspaces").iterdir())
    index = [json.loads(line) for line in (checkpoint / "index.jsonl").read_text().splitlines()]
    assert sorted(e["id"] for e in index) == sorted(results)


def test_bad_lines_are_reported_with_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "prompt": "one"}\n'
                    "not json\n"
                    "\n"
                    '["a list"]\n'
                    '{"id": "a", "prompt": "again"}\n'
                    '{"id": "b", "prompt": "  "}\n'
                    '{"id": "c", "prompt": "ok", "toolsets": ["files", "rocket"]}\n'
                    '{"id": 7, "prompt": "integer id"}\n', encoding="utf-8")
    items, problems = parse_prompts(path)
    assert [i.id for i in items] == ["a", "7"]
    assert problems[0].startswith(f"{path}:2: not valid JSON")
    assert problems[1] == f"{path}:4: expected a JSON object, got list"
    assert problems[2] == f"{path}:5: duplicate id 'a' (first on line 1)"
    assert problems[3].startswith(f"{path}:6: prompt:") and "empty" in problems[3]
    assert problems[4].startswith(f"{path}:7: toolsets:") and "rocket" in problems[4]


def test_seed_fixes_order_and_limit_samples() -> None:
    items = [PromptItem(id=str(i), prompt=f"t{i}") for i in range(50)]
    first = [i.id for i in select_prompts(items, seed=3, limit=10)]
    assert first == [i.id for i in select_prompts(items, seed=3, limit=10)]
    assert first != [i.id for i in select_prompts(items, seed=4, limit=10)]
    assert first != [str(i) for i in range(10)]
    assert [i.id for i in select_prompts(items, seed=None, limit=3)] == ["0", "1", "2"]


async def test_a_failing_prompt_never_stops_the_batch(model_server: FakeModelServer, tmp_path: Path) -> None:
    def answer(body: dict[str, Any]) -> Reply:
        prompt = first_user(body)
        if prompt == "task 3":
            return fault(400)  # not retryable: the prompt fails
        return text(f"answer to {prompt}")

    model_server.add(*[answer] * 50)
    store, _ = CheckpointStore.open(tmp_path / "ck")
    llm = LLMClient(ModelConfig(name="openai/fake-model", api_base=model_server.base_url, api_key="sk-test",
                                retry_base_delay=0.01), concurrency=ModelGate(3))
    runner = BatchRunner(BatchSettings(workers=3, toolsets=[]), llm, store, Redactor.from_environ({}))
    try:
        summary = await runner.run([PromptItem(id=f"p{i}", prompt=f"task {i}") for i in range(8)])
    finally:
        store.close()
    assert (summary.ran, summary.succeeded, summary.failed) == (8, 7, 1)
    results = {t.id: t for t in iter_checkpoint(tmp_path / "ck")}
    assert len(results) == 8
    failed = results["p3"]
    assert not failed.success and failed.status == "error" and "LLMError" in (failed.error or "")
    assert failed.messages == [{"role": "user", "content": "task 3"}]
    assert results["p4"].final == "answer to task 4"


async def test_model_gate_bounds_concurrent_calls_and_spaces_them() -> None:
    gate = ModelGate(2, per_minute=600)  # 10 per second at most
    active = peak = 0
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def call() -> None:
        nonlocal active, peak
        async with gate:
            starts.append(loop.time())
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    await asyncio.gather(*(call() for _ in range(5)))
    assert peak <= 2
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.09
