"""Cluster figures: handover after SIGKILL of the leader, and turns per second with 1, 2, 3 processes.

    .venv/bin/python bench/cluster.py [--rounds 5] [--turns 200] [--processes 1,2,3]

Needs the machine's PostgreSQL (127.0.0.1:5432, user postgres, trust; HERMES_TEST_PG_* as in the
tests); each part runs on a fresh database that is dropped afterwards. Real `hermes gateway`
processes, each with its own home, share the store, the fake Telegram Bot API and an instant
fake model on 127.0.0.1.

- **Handover:** two processes; the one holding the `leader` duty (it holds every duty as the
  first one up) is SIGKILLed; printed is the time until Telegram is polled again (the first
  getUpdates the fake sees after the kill) and until another process owns the cron scheduler
  (its lease row names a live new owner), then the killed one is started again and given
  `--settle` seconds to finish starting (on a loaded 2-core machine a process still importing
  LiteLLM takes its duties over seconds later). Median and worst of `--rounds`.
- **Turns:** N processes; `--turns` chat completions (sessions kept on the server, 30 users),
  spread round robin over the processes' API ports, 8 in flight at a time: turns per second
  and p50/p99 latency. This machine has 2 cores: the figures are printed, not promised.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def _handover(rounds: int, workdir: Path, url: str, settle: float) -> None:
    from gateway.store import open_store
    from tests.cluster_support import Member, cluster_config, health, kill, owner_pid, start_member, stop_member
    from tests.fakes.model_server import FakeModelServer
    from tests.fakes.telegram_server import FakeTelegramServer

    model = await FakeModelServer().start()
    tg = await FakeTelegramServer().start()
    store = await open_store(url)
    config = cluster_config(url, model, tg)
    members: list[Member] = []
    polls, crons = [], []
    try:
        for i in range(2):
            members.append(await start_member(workdir / f"handover-{i}", config))
        for member in members:
            await health(member)
        await asyncio.sleep(settle)
        for n in range(rounds):
            leader = await store.lease("leader")
            assert leader is not None
            victim = next(m for m in members if m.pid == owner_pid(leader.owner))
            before = await store.lease("cron-scheduler")
            seen = len(tg.calls)
            killed = time.monotonic()
            kill(victim)
            await victim.process.wait()
            polled = cron = None
            while polled is None or cron is None:
                if polled is None and any(m == "getUpdates" for m, _ in tg.calls[seen:]):
                    polled = time.monotonic() - killed
                record = await store.lease("cron-scheduler")
                if cron is None and record is not None and before is not None and record.live() and \
                        record.generation > before.generation and owner_pid(record.owner) != victim.pid:
                    cron = time.monotonic() - killed
                if time.monotonic() - killed > 60:
                    raise SystemExit("no handover within 60 s")
                await asyncio.sleep(0.01)
            polls.append(polled)
            crons.append(cron)
            print(f"  round {n + 1}: Telegram polled again after {polled:.2f} s, cron owned again after {cron:.2f} s",
                  flush=True)
            restarted = await start_member(victim.home, config)
            members[members.index(victim)] = restarted
            await health(restarted)        # answering: started, LiteLLM imported (the warm-up)
            await asyncio.sleep(settle)
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))
        await store.close()
        await tg.stop()
        await model.stop()
    print(f"handover after SIGKILL of the leader ({rounds} rounds, target < 10 s): "
          f"Telegram polling median {statistics.median(polls):.2f} s (worst {max(polls):.2f} s), "
          f"cron median {statistics.median(crons):.2f} s (worst {max(crons):.2f} s)")


async def _turns(processes: int, turns: int, workdir: Path, url: str) -> None:
    import aiohttp

    from tests.cluster_support import Member, cluster_config, start_member, stop_member
    from tests.fakes.gateway_harness import TOKEN
    from tests.fakes.model_server import FakeModelServer
    from tests.fakes.telegram_server import FakeTelegramServer

    model = await FakeModelServer(default_text="done").start()
    tg = await FakeTelegramServer().start()
    config = cluster_config(url, model, tg, extra="[learning]\nauto_skills = \"off\"\n")
    members: list[Member] = []
    latencies: list[float] = []
    try:
        for i in range(processes):
            members.append(await start_member(workdir / f"turns-{processes}-{i}", config))
        gate = asyncio.Semaphore(8)
        async with aiohttp.ClientSession() as http:
            async def one(n: int) -> None:
                member = members[n % len(members)]
                body = {"model": "hermes", "user": f"user-{n % 30}",
                        "messages": [{"role": "user", "content": f"turn {n}"}]}
                headers = {"Authorization": f"Bearer {TOKEN}", "X-Hermes-Session-Id": f"bench-{n % 30}"}
                async with gate:
                    started = time.perf_counter()
                    async with http.post(member.url + "v1/chat/completions", json=body, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            raise SystemExit(f"turn {n}: HTTP {response.status}")
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(one(n) for n in range(10)))   # warm-up: LiteLLM imported everywhere
            latencies.clear()
            started = time.perf_counter()
            await asyncio.gather(*(one(n) for n in range(turns)))
            elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(stop_member(m) for m in members))
        await tg.stop()
        await model.stop()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{processes} process(es) on PostgreSQL: {turns / elapsed:.1f} turns/s, "
          f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({turns} turns, 30 sessions)",
          flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--processes", default="1,2,3", help="process counts for the turns figure ('' skips it)")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds a restarted process gets before the next kill")
    parser.add_argument("--skip-handover", action="store_true")
    args = parser.parse_args()
    from tests.postgres import PostgresServer

    server = PostgresServer()
    with TemporaryDirectory(prefix="hermes-bench-cluster-") as tmp:
        workdir = Path(tmp)
        if not args.skip_handover:
            with server.database() as url:
                await _handover(args.rounds, workdir, url, args.settle)
        for count in [int(c) for c in args.processes.split(",") if c.strip()]:
            with server.database() as url:
                await _turns(count, args.turns, workdir, url)


if __name__ == "__main__":
    asyncio.run(main())
