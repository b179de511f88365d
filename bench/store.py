"""Store figures: gateway CPU per turn on SQLite and PostgreSQL beside bare LiteLLM, and the time
of `hermes store copy` for a sizeable home.

    .venv/bin/python bench/store.py [--duration 6] [--concurrency 1] [--rounds 3] [--model-workers 0]
                                    [--messages 10000] [--skill-versions 500] [--skip-turns] [--skip-copy]

1. Turns. The fake model server of `bench/gateway_load.py` (it answers at once), and two real
   `hermes gateway` processes on it: one whose home keeps its state in SQLite (the default), one
   with `HERMES_STORE_URL` naming a fresh PostgreSQL database on 127.0.0.1:5432. The driver sends
   the requests of `bench/gateway_load.py` through each gateway's OpenAI-compatible API (a user per
   worker, a new conversation every `--turns-per-session` turns) and, beside them, the very request
   the gateway sends (system prompt, tools, history, taken from the fake server) with bare LiteLLM
   `acompletion` from this process. Slices alternate (bare, SQLite, PostgreSQL, `--rounds` times),
   so drifting load from other processes hits every side alike, and what is compared is CPU time,
   which does not depend on that load: the gateway's (its process and its model workers) per turn,
   and this process's per bare call (on a machine under heavy load CPU time per call still grows,
   for every side alike). Targets: SQLite <= 1.25x bare, PostgreSQL <= 1.35x. Also the PostgreSQL
   gateway's transactions per turn, as the server counts them (pg_stat_database), which no load moves.
2. Copy. A SQLite home with `--messages` messages (in conversations of 20) and `--skill-versions`
   skill versions (skills of 10 versions each, through the store's compare-and-set), then
   `hermes store copy --to postgresql+asyncpg://...` as a user runs it (a process of its own, the
   verification of every table included), timed from start to exit.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), as the tests do; each run creates its
databases and drops them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

from bench.gateway_load import Side, cpu_seconds, run_load, tree_cpu_seconds  # noqa: E402

PG = os.environ.get("HERMES_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
TARGETS = {"sqlite": 1.25, "postgresql": 1.35}


def psql(sql: str) -> str:
    """Run `sql` on the server's postgres database; its result rows as unaligned text."""
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-tA", "-v",
                           "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def new_database() -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {name}")
    return name, f"{PG}/{name}"


def pg_transactions(name: str) -> int:
    """Transactions committed or rolled back in database `name` so far, as PostgreSQL counts them."""
    return int(psql(f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{name}'").strip()
               or 0)


STATS_FLUSH = 11.0   # PostgreSQL 15 backends report their counts within 10 s of going idle


def drop_database(name: str) -> None:
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def start_gateway(home: Path, api_base: str, token: str, workers: int, store_url: str = "") -> tuple[
        asyncio.subprocess.Process, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[model]\nname = "openai/fake-model"\napi_base = "{api_base}"\napi_key = "sk-bench"\n'
        f'context_window = 128000\n[agent]\nmax_concurrent_model_calls = 64\nmodel_workers = {workers}\n'
        f'[api]\nport = 0\ntoken = "{token}"\n[logging]\nlevel = "WARNING"\n')
    env = {**os.environ, "HERMES_HOME": str(home)}
    env.pop("HERMES_STORE_URL", None)
    if store_url:
        env["HERMES_STORE_URL"] = store_url
    gateway = await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway", "gateway", cwd=ROOT,
                                                   stdout=asyncio.subprocess.PIPE, env=env)
    banner = ""
    while "Stop with" not in banner:
        line = (await gateway.stdout.readline()).decode()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"the gateway of {home} stopped at start:\n{banner}")
        banner += line
    url = re.search(r"Web chat:\s+(\S+)", banner).group(1) + "v1/chat/completions"  # type: ignore[union-attr]
    return gateway, url


async def turns(args: argparse.Namespace, work: Path) -> None:
    model = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "bench" / "gateway_load.py"),
                                                 "--serve-model", stdout=asyncio.subprocess.PIPE,
                                                 env={**os.environ, "BENCH_DUMP_REQUEST": str(work / "last.json")})
    port = int((await model.stdout.readline()).decode())  # type: ignore[union-attr]
    api_base = f"http://127.0.0.1:{port}/v1"
    token = secrets.token_urlsafe(32)
    database, pg_url = new_database()
    gateways: dict[str, tuple[asyncio.subprocess.Process, str]] = {}
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        gateways["sqlite"] = await start_gateway(work / "home-sqlite", api_base, token, args.model_workers)
        gateways["postgresql"] = await start_gateway(work / "home-pg", api_base, token, args.model_workers, pg_url)
        from agent.llm import import_litellm

        litellm = import_litellm()
        run_id = secrets.token_hex(3)

        def gateway_call(url: str, prefix: str):  # type: ignore[no-untyped-def]
            async def call(index: int, turn: int) -> None:  # the requests of bench/gateway_load.py
                user = f"{prefix}-{index}-{turn // args.turns_per_session}"
                async with http.post(url, json={"model": "hermes", "user": user,
                                                "messages": [{"role": "user", "content": f"message {turn}"}]},
                                     headers={"X-Hermes-Session-Id": user}) as r:
                    body = await r.json()
                    if r.status != 200:
                        raise RuntimeError(f"gateway answered {r.status}: {body}")
            return call

        same_request: dict = {}

        async def bare_same(_index: int, _turn: int) -> None:
            await litellm.acompletion(model="openai/fake-model", api_base=api_base, api_key="sk-bench",
                                      num_retries=0, max_retries=0, **same_request)

        for engine, (_, url) in gateways.items():  # warm up: imports, pools, first pages; not counted
            await run_load(4, 1.5, gateway_call(url, f"warm{engine}{run_id}"))
        model.send_signal(signal.SIGUSR1)
        dump = work / "last.json"
        for _ in range(200):
            if dump.exists() and dump.stat().st_size:
                break
            await asyncio.sleep(0.02)
        body = json.loads(dump.read_text())
        same_request.update({k: body[k] for k in ("messages", "tools") if body.get(k)})
        await run_load(4, 1.0, bare_same)

        load = os.getloadavg()
        print(f"turns: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
              f"[agent] model_workers = {args.model_workers}; {args.rounds} alternating slices, "
              f"{args.duration:.0f}s per side per level; the gateway's request: {len(same_request['messages'])} "
              f"messages, {len(same_request.get('tools', []))} tools")
        print(f"{'users':>5} | {'bare CPU ms/call':>16} | {'SQLite CPU ms/turn':>18} | {'ratio':>5} | "
              f"{'PostgreSQL CPU ms/turn':>22} | {'ratio':>5} | {'turns/s bare / SQLite / PG':>26}")
        await asyncio.sleep(STATS_FLUSH)
        transactions_before, pg_turns = pg_transactions(database), 0
        for n in args.concurrency:
            bare = Side(bare_same, time.process_time, lambda: 0.0)
            sides = {engine: Side(gateway_call(url, f"u{engine}{run_id}n{n}"),
                                  (lambda pid=proc.pid: tree_cpu_seconds(pid)), lambda: 0.0,
                                  (lambda pid=proc.pid: cpu_seconds(pid)))
                     for engine, (proc, url) in gateways.items()}
            for _ in range(args.rounds):
                await bare.slice(n, args.duration / args.rounds)
                for side in sides.values():
                    await side.slice(n, args.duration / args.rounds)
            lite, pg = sides["sqlite"], sides["postgresql"]
            pg_turns += pg.count
            print(f"{n:>5} | {bare.cpu_ms:>16.2f} | {lite.cpu_ms:>18.2f} | {lite.cpu_ms / bare.cpu_ms:>5.2f} | "
                  f"{pg.cpu_ms:>22.2f} | {pg.cpu_ms / bare.cpu_ms:>5.2f} | "
                  f"{bare.rate:>8.1f} / {lite.rate:>6.1f} / {pg.rate:>6.1f}", flush=True)
            for engine, side in sides.items():
                ratio = side.cpu_ms / bare.cpu_ms
                print(f"{'':>5}   {engine}: {ratio:.2f}x bare (target <= {TARGETS[engine]:.2f}x: "
                      f"{'met' if ratio <= TARGETS[engine] else 'NOT met'}); gateway process "
                      f"{side.main_ms:.2f} ms/turn, model workers {side.cpu_ms - side.main_ms:.2f}", flush=True)
        await asyncio.sleep(STATS_FLUSH)
        transactions = pg_transactions(database) - transactions_before
        print(f"        postgresql: {transactions / pg_turns:.2f} transactions per turn ({transactions} over "
              f"{pg_turns} turns, the gateway's background work over the same minutes included)", flush=True)
    finally:
        await http.close()
        for proc, _ in gateways.values():
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
        model.kill()
        await model.wait()
        drop_database(database)


async def build_home(home: Path, messages: int, versions: int) -> None:
    """A SQLite home with `messages` messages and `versions` skill versions, through the store."""
    from gateway.store import open_store
    from gateway.store.snapshot import row_counts
    from skills.versions import Commit, NewEntry

    store = await open_store(home / "state.db")
    try:
        per_session = 20
        for start in range(0, messages, 1000):
            async with store.db.transaction():
                for number in range(start, min(messages, start + 1000)):
                    if number % per_session == 0:
                        session = await store.new_session(f"api:bench-{number // per_session}", platform="api",
                                                          user_id=f"u{number // per_session}")
                    role = "user" if number % 2 == 0 else "assistant"
                    await store.add_message(session.id, {"role": role, "content": f"message {number} " * 8})
        library = store.skill_versions("")
        for number in range(versions):
            name, step = f"skill-{number // 10:03d}", number % 10
            text = (f"---\nname: {name}\ndescription: Bench skill {name}. Use when benchmarking.\n---\n\n"
                    + "".join(f"{i}. step {i} of the procedure\n" for i in range(step + 5)))
            before = (await library.skill_state(name)).files.get("SKILL.md")
            await library.skill_commit(name, Commit(
                step, {"SKILL.md": text}, [NewEntry("create" if step == 0 else "patch", "SKILL.md", before, text)],
                category="bench" if step == 0 else None))
        counts = await row_counts(store.db)
        print(f"copy: home built: {counts.get('messages', 0)} messages in {counts.get('sessions', 0)} sessions, "
              f"{counts.get('skill_versions', 0)} skill versions of {counts.get('skill_heads', 0)} skills", flush=True)
    finally:
        await store.close()


async def copy_time(args: argparse.Namespace, work: Path) -> None:
    home = work / "home-copy"
    home.mkdir(parents=True)
    started = time.perf_counter()
    await build_home(home, args.messages, args.skill_versions)
    built = time.perf_counter() - started
    size = (home / "state.db").stat().st_size
    database, url = new_database()
    try:
        env = {**os.environ, "HERMES_HOME": str(home)}
        env.pop("HERMES_STORE_URL", None)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "gateway", "store", "copy", "--to", url], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"hermes store copy failed ({done.returncode}): {done.stderr.strip()}")
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        print(f"copy: home of {args.messages} messages and {args.skill_versions} skill versions "
              f"(state.db {size / 1e6:.1f} MB, built in {built:.1f}s); `hermes store copy --to postgresql` "
              f"took {elapsed:.2f}s, process start and verification included ({last})")
    finally:
        drop_database(database)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per side per concurrency level")
    parser.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns-per-session", type=int, default=5)
    parser.add_argument("--model-workers", type=int, default=0,
                        help="the gateways' [agent] model_workers (default 0, the shipped default: in-process)")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--skill-versions", type=int, default=500)
    parser.add_argument("--skip-turns", action="store_true")
    parser.add_argument("--skip-copy", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hermes-bench-store-"))
    if not args.skip_turns:
        await turns(args, work)
    if not args.skip_copy:
        await copy_time(args, work)


if __name__ == "__main__":
    asyncio.run(main())
