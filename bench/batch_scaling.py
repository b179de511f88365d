"""How `hermes batch` scales with workers against a model with a fixed 200 ms latency.

Runs 200 prompts (each: one tool call, then an answer: two model calls) through the real
BatchRunner, LiteLLM and checkpoint store, against the fake model server running in its own
process (`server.latency = 0.2`), at 1, 4 and 16 workers. Prints trajectories per minute and
the speed-up over one worker. Targets: >= 3.5x at 4 workers, >= 12x at 16.

    .venv/bin/python bench/batch_scaling.py [--prompts 200] [--latency 0.2] [--workers 1,4,16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")


def serve(latency: float) -> None:
    """Child process: the fake model server; prints its port, serves until stdin closes."""
    from tests.fakes.model_server import FakeModelServer, Reply, text, tool_calls

    class BenchServer(FakeModelServer):
        def _next(self, body: dict[str, Any], purpose: str = "") -> Reply:
            self.requests.clear()  # do not keep thousands of request bodies
            if any(m.get("role") == "tool" for m in body["messages"]):
                return text("done")
            return tool_calls(("list_files", {"path": "."}))

    async def main() -> None:
        server = BenchServer()
        server.latency = latency
        await server.start()
        print(server.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop()

    asyncio.run(main())


async def run_batch(base_url: str, prompts: int, workers: int, checkpoint: Path) -> float:
    from agent.batch import BatchRunner, BatchSettings, ModelGate, PromptItem
    from agent.checkpoint_store import CheckpointStore
    from agent.llm import LLMClient
    from agent.redact import Redactor
    from agent.settings import ModelConfig

    llm = LLMClient(ModelConfig(name="openai/bench", api_base=base_url, api_key="sk-bench", stream=False),
                    concurrency=ModelGate(workers))
    store, _ = CheckpointStore.open(checkpoint)
    runner = BatchRunner(BatchSettings(workers=workers, toolsets=["files"]), llm, store, Redactor.from_environ())
    items = [PromptItem(id=f"b{n}", prompt=f"bench task {n}") for n in range(prompts)]
    started = time.perf_counter()
    try:
        summary = await runner.run(items)
    finally:
        store.close()
    elapsed = time.perf_counter() - started
    if summary.succeeded != prompts:
        raise SystemExit(f"only {summary.succeeded}/{prompts} prompts succeeded: {dict(summary.errors)}")
    return elapsed


async def warm_up(base_url: str, directory: Path) -> None:
    """Import LiteLLM and open its HTTP client before timing anything."""
    await run_batch(base_url, 2, 2, directory / "warmup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", default="1,4,16")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency)
        return
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(args.latency)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        base_url = f"http://127.0.0.1:{port}/v1"
        counts = [int(w) for w in args.workers.split(",")]
        print(f"{args.prompts} prompts x 2 model calls, model latency {args.latency * 1000:.0f} ms")
        print(f"{'workers':>8} {'seconds':>9} {'traj/min':>10} {'speed-up':>9}")
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(warm_up(base_url, Path(tmp)))
            baseline = None
            for workers in counts:
                elapsed = asyncio.run(run_batch(base_url, args.prompts, workers, Path(tmp) / f"w{workers}"))
                rate = args.prompts / elapsed * 60
                baseline = baseline or rate
                print(f"{workers:>8} {elapsed:>9.2f} {rate:>10.1f} {rate / baseline:>8.2f}x", flush=True)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
