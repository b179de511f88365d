"""A batch killed with SIGKILL and started again ends with every prompt done exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from agent.checkpoint_store import CheckpointError, CheckpointStore
from agent.trajectory import Trajectory
from tests.conftest import model_config, write_config
from tests.fakes.model_server import FakeModelServer
from tests.test_batch_run import hermes, per_prompt, shard_lines, write_prompts


async def batch_with_results(home: Path, model_server: FakeModelServer, tmp_path: Path, results: int,
                             latency: float, output: int | None) -> tuple[asyncio.subprocess.Process, tuple[str, ...],
                                                                      Path]:
    """A 20-prompt `hermes batch` process, once `results` results are in its checkpoint."""
    write_config(home, model_config(model_server))
    model_server.add(*[per_prompt] * 200)
    model_server.latency = latency
    prompts = tmp_path / "prompts.jsonl"
    write_prompts(prompts, 20)
    checkpoint = tmp_path / "ck"
    args = ("batch", "--input", str(prompts), "--workers", "2", "--checkpoint", str(checkpoint), "--toolsets", "files")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env={**os.environ, "HERMES_HOME": str(home)},
        stdout=output, stderr=output)
    deadline = time.monotonic() + 60
    while len(shard_lines(checkpoint) if (checkpoint / "shards").exists() else []) < results:
        assert time.monotonic() < deadline, "the batch wrote no results"
        assert process.returncode is None, "the batch ended early"
        await asyncio.sleep(0.02)
    return process, args, checkpoint


async def test_killed_batch_resumes_to_exactly_twenty_results(home: Path, model_server: FakeModelServer,
                                                              tmp_path: Path) -> None:
    process, args, checkpoint = await batch_with_results(home, model_server, tmp_path, 4, 0.1,
                                                         asyncio.subprocess.DEVNULL)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    before_kill = len(shard_lines(checkpoint))
    assert 4 <= before_kill < 20
    # a write torn by the kill: half a line at the end of the shard
    shard = sorted((checkpoint / "shards").glob("results-*.jsonl"))[-1]
    with open(shard, "ab") as handle:
        handle.write(b'{"id":"p19","prompt":"task 19","model":"openai/fa')

    model_server.latency = 0.0
    requests_before = len(model_server.requests)
    code, out, err = await hermes(*args, home=home)
    assert code == 0, err
    assert "truncated a torn final line" in err
    lines = shard_lines(checkpoint)
    assert all(line.endswith(b"\n") for line in lines)
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == 20 and sorted(ids) == sorted(f"p{i}" for i in range(20))
    assert f"skipped    {before_kill}" in out and f"completed  {20 - before_kill}" in out
    # only the missing prompts ran again (2 model calls each)
    assert len(model_server.requests) - requests_before == 2 * (20 - before_kill)

    # a third run finds everything done and runs nothing
    code, out, err = await hermes(*args, home=home)
    assert code == 0, err
    assert "20 already done, 0 to run" in err
    assert len(shard_lines(checkpoint)) == 20


def _trajectory(ident: str) -> Trajectory:
    return Trajectory(id=ident, prompt=f"prompt {ident}", messages=[{"role": "user", "content": "x"}], success=True)


async def test_recovery_rebuilds_the_index_from_the_shards(tmp_path: Path) -> None:
    store, report = CheckpointStore.open(tmp_path, shard_records=2)
    for n in range(5):
        await store.append(_trajectory(f"t{n}"))
    with pytest.raises(CheckpointError):
        await store.append(_trajectory("t1"))
    store.close()
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [
        "results-00000.jsonl", "results-00001.jsonl", "results-00002.jsonl"]
    (tmp_path / "index.jsonl").write_text("garbage\n")   # the index is derived: a broken one is rebuilt
    last = tmp_path / "shards" / "results-00002.jsonl"
    last.write_bytes(last.read_bytes() + b'{"id": "t9", "pro')
    store, report = CheckpointStore.open(tmp_path, shard_records=2)
    try:
        assert report.results == 5 and report.torn_bytes_truncated == len(b'{"id": "t9", "pro')
        assert store.completed_ids() == {f"t{n}" for n in range(5)}
        index = [json.loads(line)["id"] for line in (tmp_path / "index.jsonl").read_text().splitlines()]
        assert sorted(index) == [f"t{n}" for n in range(5)]
        with pytest.raises(CheckpointError, match="another hermes batch"):
            CheckpointStore.open(tmp_path)
    finally:
        store.close()
    store, report = CheckpointStore.open(tmp_path, resume=False)
    try:
        assert report.moved_aside_to is not None and report.results == 0
        assert len(list((report.moved_aside_to / "shards").iterdir())) == 3
    finally:
        store.close()


async def test_ctrl_c_names_the_checkpoint_and_the_command_that_resumes(home: Path, model_server: FakeModelServer,
                                                                       tmp_path: Path) -> None:
    process, args, checkpoint = await batch_with_results(home, model_server, tmp_path, 2, 0.2,
                                                         asyncio.subprocess.PIPE)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err_bytes = await asyncio.wait_for(process.communicate(), 30)
    err = err_bytes.decode()
    assert process.returncode == 130, err
    assert "Aborted!" not in err and "Traceback" not in err
    assert f"finished prompts are kept in {checkpoint}" in err
    assert "Run the same command again to resume" in err and f"--checkpoint {checkpoint}" in err
    stopped_at = len(shard_lines(checkpoint))
    model_server.latency = 0.0
    code, _, err = await hermes(*args, home=home)
    assert code == 0, err
    assert f"{stopped_at} already done, {20 - stopped_at} to run" in err
