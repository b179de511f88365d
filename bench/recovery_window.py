"""The local part of the one window crash recovery leaves: committing an answer's message id.

    .venv/bin/python bench/recovery_window.py [--rounds 300] [--skip-postgresql]

A message is posted twice only when the process dies between the platform accepting its send
call and the commit of its message id (`sent_record` with `ends_inbox`: the outbound_sent row and
the end of the inbox row in one transaction). The platform's round trip is the platform's; this
prints the commit's wall time per answer (median and p95) on SQLite and PostgreSQL, as the
gateway runs it (an inbox row is taken first, as for a received message). PostgreSQL needs the
server the tests use (127.0.0.1:5432, user postgres, trust); a fresh database is created and
dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.store import drop_database, new_database  # noqa: E402
from gateway.store import open_store  # noqa: E402
from gateway.store.delivery import SentRow  # noqa: E402


async def measure(url: str, rounds: int) -> list[float]:
    store = await open_store(url)
    times: list[float] = []
    try:
        for i in range(rounds):
            row = await store.inbox_take("telegram", f"bench-{i}", "{}")
            began = time.perf_counter()
            await store.sent_record(f"telegram:bench-{i}:0:0", SentRow("telegram", "1", str(i)), ends_inbox=row)
            times.append((time.perf_counter() - began) * 1000)
    finally:
        await store.close()
    return sorted(times)


def line(engine: str, times: list[float]) -> str:
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return f"{engine}: answer recorded and inbox row ended in one commit: median {statistics.median(times):.2f} ms, " \
           f"p95 {p95:.2f} ms ({len(times)} answers)"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--skip-postgresql", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(line("sqlite", await measure(f"sqlite:///{work}/state.db", args.rounds)))
    if not args.skip_postgresql:
        name, url = new_database()
        try:
            print(line("postgresql", await measure(url, args.rounds)))
        finally:
            drop_database(name)


if __name__ == "__main__":
    asyncio.run(main())
