"""Cold-start figures: wall time of `hermes --help` and of `hermes chat -q` against the fake model.

    python bench/cold_start.py [--runs 7]

Prints the median (and min/max) over several runs, each a fresh process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.model_server import FakeModelServer


async def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {err.decode()[-500:]}")
    return elapsed


def report(name: str, samples: list[float]) -> None:
    print(f"{name:<32} median {statistics.median(samples) * 1000:8.1f} ms   "
          f"min {min(samples) * 1000:8.1f} ms   max {max(samples) * 1000:8.1f} ms   ({len(samples)} runs)")


async def main(runs: int) -> None:
    hermes = str(Path(sys.executable).with_name("hermes"))
    with tempfile.TemporaryDirectory() as home:
        server = await FakeModelServer(default_text="pong").start()
        Path(home, "config.toml").write_text(
            f'[model]\nname = "openai/bench"\napi_base = "{server.base_url}"\napi_key = "sk-bench"\n')
        env = {**os.environ, "HERMES_HOME": home, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        await timed([hermes, "--help"], env)  # warm the file cache once
        help_times = [await timed([hermes, "--help"], env) for _ in range(runs)]
        chat_times = [await timed([hermes, "chat", "-q", "ping"], env) for _ in range(runs)]
        await server.stop()
    report("hermes --help", help_times)
    report("hermes chat -q (fake model)", chat_times)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    asyncio.run(main(parser.parse_args().runs))
