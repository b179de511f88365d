"""What the tools' bounds cost: sandbox start-up per terminal command, and memory of a huge read_file.

1. Runs `true` N times through the terminal tool under each sandbox this machine has (bubblewrap,
   Landlock, none) and prints the median and 90th percentile wall time per command.
2. In a fresh process, reads a generated 300 MB text file with read_file asking for 10^9
   characters (and again at an offset near its end), and prints the process's peak resident size
   before and after. Target: the read adds well under 1 GB (it returns at most
   `[tools] max_read_chars` characters and streams the file).

    .venv/bin/python bench/tool_bounds.py [--runs 30] [--megabytes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.sandbox.policy import choose_backend
from agent.settings import TerminalConfig
from agent.tools.registry import ToolContext, ToolRegistry
from agent.tools.terminal import make_terminal_tool
from agent.workspace import Workspace


async def sandbox_startup(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ToolContext(workspace=Workspace(Path(tmp) / "ws").ensure())
        for mode in ("bubblewrap", "landlock", "none"):
            backend = choose_backend(mode)
            if not backend.usable:
                print(f"{mode:>10}: not available here ({backend.problem})")
                continue
            registry = ToolRegistry([make_terminal_tool(TerminalConfig(enabled=True, sandbox=mode))])
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                result = await registry.execute(ctx, "terminal", json.dumps({"command": "true"}))
                times.append(time.perf_counter() - started)
                assert result.ok, result.content
            times.sort()
            print(f"{mode:>10}: median {statistics.median(times) * 1000:.1f} ms, "
                  f"p90 {times[int(len(times) * 0.9) - 1] * 1000:.1f} ms per command ({runs} runs)")


READER = """
import asyncio, json, resource, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from agent.tools.files import file_tools
from agent.tools.registry import ToolContext, ToolRegistry
from agent.workspace import Workspace
async def main():
    ctx = ToolContext(workspace=Workspace(Path(sys.argv[2])))
    registry = ToolRegistry(file_tools())
    size = (Path(sys.argv[2]) / "big.log").stat().st_size
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    a = await registry.execute(ctx, "read_file", json.dumps({"path": "big.log", "max_chars": 10**9}))
    b = await registry.execute(ctx, "read_file", json.dumps({"path": "big.log", "offset": size - 1000, "max_chars": 10**9}))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "after_kb": after, "returned": [len(a.content), len(b.content)]}))
asyncio.run(main())
"""


def huge_read(megabytes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.log"
        line = b"2026-01-01T00:00:00Z INFO worker: processed item with a perfectly ordinary log line\n"
        block = line * ((1 << 20) // len(line) + 1)
        with big.open("wb") as handle:
            for _ in range(megabytes):
                handle.write(block[: 1 << 20])
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", READER, str(ROOT), tmp], capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
        figures = json.loads(out.stdout)
        print(f"read_file of a {megabytes} MB file (10^9 characters asked, then near the end): "
              f"peak resident {figures['before_kb'] / 1024:.0f} MB before, {figures['after_kb'] / 1024:.0f} MB after; "
              f"returned {figures['returned'][0]} and {figures['returned'][1]} characters; {seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--megabytes", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(sandbox_startup(args.runs))
    huge_read(args.megabytes)



if __name__ == "__main__":
    main()
