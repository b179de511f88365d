"""Backup figures: `hermes backup create` and `restore` (format 2) on SQLite and PostgreSQL, for a
home with `--messages` messages, each step timed as a user runs it (a process of its own, from
start to exit), with the archive's size.

    .venv/bin/python bench/backup.py [--messages 10000]

Steps: a SQLite home is filled through the store (conversations of 20 messages); `backup create`
from it; `backup restore` of that archive into a fresh PostgreSQL database (HERMES_STORE_URL);
`backup create` from PostgreSQL; `backup restore` of that archive into a fresh SQLite home. The
last home's message count is checked against what was written.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), as the tests do; the database it
creates is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.store import PG, psql  # noqa: E402


async def fill(state_db: Path, messages: int) -> list[str]:
    from gateway.store import open_store

    store = await open_store(state_db)
    sessions: list[str] = []
    try:
        for n in range(messages):
            if n % 20 == 0:
                session = await store.active_session(f"bench:{n // 20}", platform="api", user_id=f"u{n // 20}")
                sessions.append(session.id)
            role = "user" if n % 2 == 0 else "assistant"
            await store.add_message(sessions[-1], {"role": role, "content": f"message {n}: " + "lorem ipsum " * 8})
    finally:
        await store.close()
    return sessions


async def count(url: str | Path, sessions: list[str]) -> int:
    from gateway.store import open_store

    store = await open_store(url, migrate=False)
    try:
        return sum([len(await store.message_seqs(s)) for s in sessions])
    finally:
        await store.close()


def hermes(home: Path, store_url: str | None, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "HERMES_STORE_URL"}
    env["HERMES_HOME"] = str(home)
    if store_url:
        env["HERMES_STORE_URL"] = store_url
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "gateway", *args], env=env, capture_output=True, text=True,
                          timeout=1800)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"hermes {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    options = parser.parse_args()
    name = f"bench_backup_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE DATABASE {name}")
    pg_url = f"{PG}/{name}"
    try:
        with tempfile.TemporaryDirectory(prefix="hermes-bench-backup-") as scratch:
            root = Path(scratch)
            first, second, third = root / "sqlite-home", root / "pg-home", root / "sqlite-again"
            first.mkdir()
            started = time.monotonic()
            sessions = asyncio.run(fill(first / "state.db", options.messages))
            print(f"filled a SQLite home with {options.messages} messages in {time.monotonic() - started:.1f} s")
            rows = [
                ("create from SQLite", hermes(first, None, "backup", "create", "-o", str(root / "a.tar.gz")),
                 root / "a.tar.gz"),
                ("restore into PostgreSQL", hermes(second, pg_url, "backup", "restore", str(root / "a.tar.gz")),
                 None),
                ("create from PostgreSQL", hermes(second, pg_url, "backup", "create", "-o", str(root / "b.tar.gz")),
                 root / "b.tar.gz"),
                ("restore into SQLite", hermes(third, None, "backup", "restore", str(root / "b.tar.gz")), None),
            ]
            print(f"\n{'step':<26}{'seconds':>9}{'archive bytes':>16}")
            for label, seconds, archive in rows:
                size = f"{archive.stat().st_size:,}" if archive else ""
                print(f"{label:<26}{seconds:>9.2f}{size:>16}")
            restored = asyncio.run(count(third / "state.db", sessions))
            print(f"\nmessages after the round trip: {restored} of {options.messages}"
                  f"{'' if restored == options.messages else '  MISMATCH'}")
    finally:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
