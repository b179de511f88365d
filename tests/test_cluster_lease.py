"""Duty leases on PostgreSQL: one owner, fencing when the lock connection ends, handover after a death."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from gateway.cluster.duties import Duty, DutyRunner
from gateway.cluster.lease import LeaseKeeper
from gateway.store import open_store

REPO = Path(__file__).resolve().parents[1]

HOLDER = """
import asyncio, sys
from gateway.cluster.lease import LeaseKeeper
from gateway.store import open_store

async def main():
    store = await open_store(sys.argv[1])
    keeper = LeaseKeeper(store, "holder-process", ttl=6.0)
    lease = await keeper.try_acquire("cron-scheduler")
    print("held" if lease else "refused", flush=True)
    while True:
        await asyncio.sleep(0.5)
        await keeper.renew()

asyncio.run(main())
"""


async def test_two_clients_racing_for_a_lease_get_one_owner(postgres_url: str) -> None:
    stores = [await open_store(postgres_url) for _ in range(2)]
    keepers = [LeaseKeeper(store, f"process-{i}") for i, store in enumerate(stores)]
    try:
        for _round in range(5):
            leases = await asyncio.gather(*(k.try_acquire("telegram-poller") for k in keepers))
            owners = [k.owner for k, lease in zip(keepers, leases, strict=True) if lease is not None]
            assert len(owners) == 1, owners
            record = await stores[0].lease("telegram-poller")
            assert record is not None and record.owner == owners[0]
            winner = next(lease for lease in leases if lease is not None)
            assert await winner.still_owner()
            await winner.keeper.release(winner)
        assert record.generation == 5   # every acquisition bumped it
    finally:
        for keeper, store in zip(keepers, stores, strict=True):
            await keeper.close()
            await store.close()


async def test_a_terminated_lease_connection_fences_the_old_owner_once_the_other_acquires(postgres_url: str) -> None:
    store_a, store_b = await open_store(postgres_url), await open_store(postgres_url)
    a, b = LeaseKeeper(store_a, "process-a"), LeaseKeeper(store_b, "process-b")
    acted: list[str] = []
    try:
        lease = await a.try_acquire("cron-scheduler")
        assert lease is not None and await b.try_acquire("cron-scheduler") is None
        assert a._lock is not None
        assert await store_b.end_backend(a._lock.backend_pid)   # what a network blip looks like to the server
        taken = None
        deadline = time.monotonic() + 5
        while taken is None and time.monotonic() < deadline:
            taken = await b.try_acquire("cron-scheduler")
            if taken is None:
                await asyncio.sleep(0.01)
        assert taken is not None, "the other process never got the duty"
        # once the other process holds the duty, the old owner's fencing check refuses every act
        # (its own connection's end may reach it a moment later: that race is the server's, not ours)
        if await lease.still_owner():
            acted.append("old owner")
        if await taken.still_owner():
            acted.append("new owner")
        assert acted == ["new owner"]
        assert lease.lost.is_set() and not lease.held
        assert taken.generation == lease.generation + 1
    finally:
        for keeper, store in ((a, store_a), (b, store_b)):
            await keeper.close()
            await store.close()


async def test_a_follower_takes_over_within_10_s_of_the_owners_death(postgres_url: str) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, postgres_url, cwd=REPO, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    store = await open_store(postgres_url)
    started: list[float] = []

    async def start(lease: object) -> None:
        started.append(time.monotonic())

    runner = DutyRunner(LeaseKeeper(store, "follower"), retry=0.5)
    runner.add(Duty("cron-scheduler", start=start))
    try:
        assert holder.stdout is not None
        assert (await asyncio.wait_for(holder.stdout.readline(), 60)).strip() == b"held"
        await runner.start_all()
        await asyncio.sleep(1.5)
        assert started == [], "the follower ran the duty while its owner was alive"
        killed = time.monotonic()
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        while not started and time.monotonic() - killed < 10:
            await asyncio.sleep(0.05)
        assert started, "no handover within 10 s"
        assert started[0] - killed < 10
        record = await store.lease("cron-scheduler")
        assert record is not None and record.owner == "follower" and record.generation == 2
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await runner.stop_all()
        await runner.keeper.close()
        await store.close()


async def test_on_sqlite_the_one_process_owns_every_duty(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state.db")
    keeper = LeaseKeeper(store, "only-process")
    try:
        for duty in ("leader", "telegram-poller", "cron-scheduler"):
            lease = await keeper.try_acquire(duty)
            assert lease is not None and await lease.still_owner()
        assert [r.duty for r in await store.list_leases()] == ["cron-scheduler", "leader", "telegram-poller"]
    finally:
        await keeper.close()
        await store.close()


@pytest.fixture(autouse=True)
def _needs_no_home() -> None:
    """These tests open stores directly (no HERMES_HOME)."""
