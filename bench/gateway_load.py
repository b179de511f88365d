"""Load figures for the gateway, driven through its OpenAI-compatible endpoint.

    .venv/bin/python bench/gateway_load.py [--duration 5] [--concurrency 1,10,50] [--sessions 10000]
                                           [--model-workers 2]

Three processes, as in production: the fake model server (answers at once), a real
`hermes gateway` (with `--model-workers` LiteLLM worker processes of its own), and this driver.
For each concurrency N the driver measures
1. bare LiteLLM `acompletion` against the same fake server with N concurrent callers (the
   model's own time, and the calls/s ceiling of one model call per turn), and
2. the gateway with N concurrent users, each sending its next message when the last was answered
   (one model call per turn); a user starts a new conversation every `--turns-per-session` turns,
   so the history the agent sends stays the length of a typical chat (it grows without bound
   otherwise, and so does the client-side cost of serialising it).
It prints turns/s, the ratio to bare calls/s (target >= 0.8), and the latency the gateway adds
over the model's own time (gateway percentile minus bare LiteLLM percentile at the same N;
targets: p50 < 15 ms at 1 user, p99 < 25 ms at 50 users). Then it opens `--sessions` distinct
sessions (one turn each), lets them go idle, and prints the gateway's resident memory per idle
session (target < 20 KB).

Fairness on a shared machine: both sides are measured in the same run against the same fake
server, after a warm-up that is not counted, and in alternating slices (bare, gateway, bare,
gateway ... `--rounds` of each, `--duration` seconds in all per side), so load from other
processes drifting during the run hits both sides alike. CPU time per call (the bare client's
process, the gateway's process) is printed too: it does not depend on what else the machine
runs. A second bare figure sends the request the gateway actually sends (system prompt, tools,
history, taken from the fake server), separating the gateway's own overhead from what its
bigger request costs LiteLLM. "rest" is the CPU per call of everything else in the test: the fake
model server for bare LiteLLM, the fake model server plus this driver for the gateway; on two
cores it bounds how much of the machine the gateway can have.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def serve_model() -> None:
    from tests.fakes.model_server import FakeModelServer

    server = FakeModelServer(default_text="ok, done.")
    await server.start()
    requests = server.requests = _Discard()  # type: ignore[assignment]
    dump_to = os.environ.get("BENCH_DUMP_REQUEST", "")
    if dump_to:  # SIGUSR1: write the last request body received (what the gateway sends)
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGUSR1, lambda: Path(dump_to).write_text(json.dumps(requests.last)))
    print(server.port, flush=True)
    await asyncio.Event().wait()


class _Discard(list):  # type: ignore[type-arg]
    last: object = None

    def append(self, item: object) -> None:  # keep the fake server's memory flat
        self.last = item


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Side:
    """One side of the comparison: calls, wall time, latencies and CPU time, over all its slices."""

    def __init__(self, call, cpu, others, main=None) -> None:  # type: ignore[no-untyped-def]
        self.call, self.cpu, self.others, self.main = call, cpu, others, main or cpu
        self.count, self.elapsed, self.cpu_used, self.others_used, self.main_used = 0, 0.0, 0.0, 0.0, 0.0
        self.latencies: list[float] = []

    async def slice(self, concurrency: int, duration: float) -> None:
        cpu_before, others_before, main_before = self.cpu(), self.others(), self.main()
        count, elapsed, latencies = await run_load(concurrency, duration, self.call)
        self.cpu_used += self.cpu() - cpu_before
        self.others_used += self.others() - others_before
        self.main_used += self.main() - main_before
        self.count += count
        self.elapsed += elapsed
        self.latencies += latencies

    @property
    def rate(self) -> float:
        return self.count / self.elapsed

    @property
    def cpu_ms(self) -> float:
        return self.cpu_used / self.count * 1000

    @property
    def main_ms(self) -> float:
        """CPU per call of the main process alone (the rest ran in model worker processes)."""
        return self.main_used / self.count * 1000

    @property
    def others_ms(self) -> float:
        """CPU per call of the processes serving this side (the fake model server, the driver)."""
        return self.others_used / self.count * 1000

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live descendants (the gateway and any worker processes)."""
    total = 0.0
    for child in Path("/proc").glob("[0-9]*"):
        try:
            fields = (child / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += tree_cpu_seconds(int(child.name))
        except (OSError, IndexError, ValueError):
            continue
    return total + cpu_seconds(pid)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run_load(concurrency: int, duration: float, call) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + duration
    count = 0

    async def worker(index: int) -> None:
        nonlocal count
        turn = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await call(index, turn)
            latencies.append(time.perf_counter() - started)
            count += 1
            turn += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return count, time.perf_counter() - started, latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--turns-per-session", type=int, default=5,
                        help="each user starts a new conversation after this many turns (history length)")
    parser.add_argument("--model-workers", type=int, default=2,
                        help="the gateway's [agent] model_workers, processes running LiteLLM (default 2, one per "
                             "core here: the setting for a busy gateway; the shipped default is 0, in-process)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating bare/gateway slices per concurrency level")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]

    home = Path(tempfile.mkdtemp(prefix="hermes-bench-"))
    dump = home / "last-request.json"
    model = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve-model",
                                                 stdout=asyncio.subprocess.PIPE,
                                                 env={**os.environ, "BENCH_DUMP_REQUEST": str(dump)})
    port = int((await model.stdout.readline()).decode())  # type: ignore[union-attr]
    api_base = f"http://127.0.0.1:{port}/v1"
    token = secrets.token_urlsafe(32)
    (home / "config.toml").write_text(
        f'[model]\nname = "openai/fake-model"\napi_base = "{api_base}"\napi_key = "sk-bench"\n'
        f'context_window = 128000\n[agent]\nmax_concurrent_model_calls = 64\n'
        f'model_workers = {args.model_workers}\n'
        f'[api]\nport = 0\ntoken = "{token}"\n[logging]\nlevel = "WARNING"\n')
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "gateway", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "HERMES_HOME": str(home)})
    banner = ""
    while "Stop with" not in banner:
        banner += (await gateway.stdout.readline()).decode()  # type: ignore[union-attr]
    url = re.search(r"Web chat:\s+(\S+)", banner).group(1) + "v1/chat/completions"  # type: ignore[union-attr]

    from agent.llm import import_litellm

    litellm = import_litellm()
    connector = aiohttp.TCPConnector(limit=0)
    http = aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {token}"})
    run_id = secrets.token_hex(3)

    async def bare(_index: int, _turn: int) -> None:
        await litellm.acompletion(model="openai/fake-model", api_base=api_base, api_key="sk-bench",
                                  messages=[{"role": "user", "content": "hi"}], num_retries=0, max_retries=0)

    def gateway_call(prefix: str):
        async def call(index: int, turn: int) -> None:
            user = f"{prefix}-{index}-{turn // args.turns_per_session}"
            async with http.post(url, json={"model": "hermes", "user": user,
                                            "messages": [{"role": "user", "content": f"message {turn}"}]},
                                 headers={"X-Hermes-Session-Id": user}) as r:  # a conversation kept on the server
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"gateway answered {r.status}: {body}")
        return call

    same_request: dict = {}

    async def bare_same(_index: int, _turn: int) -> None:
        await litellm.acompletion(model="openai/fake-model", api_base=api_base, api_key="sk-bench",
                                  num_retries=0, max_retries=0, **same_request)

    try:
        # warm up both paths (imports, connection pools, first SQLite pages); not counted
        await run_load(4, 1.0, bare)
        await run_load(4, 1.0, gateway_call(f"warm{run_id}"))
        model.send_signal(signal.SIGUSR1)  # the fake server writes the gateway's last request
        for _ in range(100):
            if dump.exists() and dump.stat().st_size:
                break
            await asyncio.sleep(0.02)
        body = json.loads(dump.read_text())
        same_request.update({k: body[k] for k in ("messages", "tools") if body.get(k)})
        await run_load(4, 0.5, bare_same)
        load = os.getloadavg()
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores; other processes "
              f"share them); {args.rounds} alternating slices per side, {args.duration:.0f}s per side per level")
        print(f"gateway: [agent] model_workers = {args.model_workers}; ", end="")
        print(f"the gateway's request: {len(same_request['messages'])} messages, "
              f"{len(same_request.get('tools', []))} tools, {len(json.dumps(same_request))} bytes of JSON")
        print(f"{'users':>5} | {'bare calls/s':>12} | {'gateway turns/s':>15} | {'ratio':>5} | "
              f"{'bare p50/p99 ms':>15} | {'gw p50/p99 ms':>13} | {'added p50/p99 ms':>16} | "
              f"{'CPU ms/call: bare / gw':>22} | {'rest ms: bare / gw':>18} | {'bare same-request: calls/s, ratio, CPU ms':>41}")
        own_cpu = time.process_time

        def model_cpu() -> float:
            return cpu_seconds(model.pid)

        for n in levels:
            sides = (Side(bare, own_cpu, model_cpu),
                     Side(gateway_call(f"u{run_id}n{n}"), lambda: tree_cpu_seconds(gateway.pid),
                          lambda: model_cpu() + own_cpu(), lambda: cpu_seconds(gateway.pid)),
                     Side(bare_same, own_cpu, model_cpu))
            for _ in range(args.rounds):
                for side in sides:
                    await side.slice(n, args.duration / args.rounds)
            b, g, same = sides
            print(f"{n:>5} | {b.rate:>12.1f} | {g.rate:>15.1f} | {g.rate / b.rate:>5.2f} | "
                  f"{b.p(50):>6.1f} / {b.p(99):>6.1f} | {g.p(50):>5.1f} / {g.p(99):>5.1f} | "
                  f"{g.p(50) - b.p(50):>7.1f} / {g.p(99) - b.p(99):>6.1f} | "
                  f"{b.cpu_ms:>10.2f} / {g.cpu_ms:>7.2f} | {b.others_ms:>8.2f} / {g.others_ms:>5.2f} | {same.rate:>20.1f}, {g.rate / same.rate:>5.2f}, "
                  f"{same.cpu_ms:>6.2f}",
                  flush=True)
            if args.model_workers:
                print(f"{'':>5}   gateway CPU ms/turn: {g.main_ms:.2f} in the gateway process, "
                      f"{g.cpu_ms - g.main_ms:.2f} in its {args.model_workers} model workers", flush=True)
        print("targets: ratio >= 0.8; added p50 < 15 ms at 1 user; added p99 < 25 ms at 50 users; "
              "< 20 KB per idle session")

        if args.sessions:
            before = rss_kb(gateway.pid)
            opened = 0
            call = gateway_call(f"idle{run_id}")
            started = time.perf_counter()

            async def opener(worker: int) -> None:
                nonlocal opened
                while opened < args.sessions:
                    index = opened
                    opened += 1
                    await call(index, 0)

            await asyncio.gather(*(opener(w) for w in range(50)))
            elapsed = time.perf_counter() - started
            await asyncio.sleep(1.0)
            after = rss_kb(gateway.pid)
            per_session = (after - before) * 1024 / args.sessions
            print(f"idle sessions: opened {args.sessions} sessions (one turn each) in {elapsed:.1f}s; "
                  f"gateway RSS {before / 1024:.1f} MB -> {after / 1024:.1f} MB; "
                  f"{per_session / 1024:.2f} KB per idle session")
    finally:
        await http.close()
        gateway.send_signal(signal.SIGTERM)
        await gateway.wait()
        model.kill()
        await model.wait()


if __name__ == "__main__":
    if "--serve-model" in sys.argv:
        asyncio.run(serve_model())
    else:
        asyncio.run(main())
