"""This process as a member of the cluster: its id, its row in `cluster_members`, its leases and duties.

`Node.start()` joins (host, pid, version, started), makes the first round of duty acquisitions
and starts one background task that every `renew_every` seconds renews the leases and the
member heartbeat. `Node.stop()` stops the duties, releases the leases (a clean stop hands over
at once) and leaves. `role` is `leader` while this process holds the `leader` duty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from importlib import metadata

from gateway.cluster.duties import LEADER, Duty, DutyRunner
from gateway.cluster.lease import DEFAULT_RENEW_EVERY, DEFAULT_TTL, Lease, LeaseKeeper
from gateway.store import StateStore
from gateway.store.leases import MemberRecord

log = logging.getLogger(__name__)


def hermes_version() -> str:
    try:
        return metadata.version("hermes-gateway")
    except metadata.PackageNotFoundError:
        return "unknown"


def new_process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Node:
    def __init__(self, store: StateStore, *, ttl: float = DEFAULT_TTL, renew_every: float = DEFAULT_RENEW_EVERY,
                 retry: float = 1.0, on_change: Callable[[str, bool, Lease], None] | None = None) -> None:
        self.store = store
        self.process = new_process_id()
        self.started_at = time.time()
        self.keeper = LeaseKeeper(store, self.process, ttl=ttl, renew_every=renew_every)
        self.runner = DutyRunner(self.keeper, retry=retry, on_change=on_change)
        self.runner.add(Duty(LEADER))
        self._renewer: asyncio.Task[None] | None = None

    def add(self, duty: Duty) -> None:
        self.runner.add(duty)

    @property
    def role(self) -> str:
        return "leader" if self.runner.owns(LEADER) else "follower"

    def owned(self) -> list[str]:
        return sorted(name for name in self.runner.running if self.runner.owns(name))

    async def start(self) -> None:
        now = time.time()
        await self.store.join_cluster(MemberRecord(self.process, socket.gethostname(), os.getpid(),
                                                   hermes_version(), self.started_at, now))
        await self.runner.start_all()
        self._renewer = asyncio.create_task(self._renew_forever(), name="cluster-renew")
        log.info("cluster: process %s joined as %s (duties: %s)", self.process, self.role,
                 ", ".join(self.owned()) or "none")

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.keeper.renew_every)
            try:
                await self.keeper.renew()
                if not await self.store.member_heartbeat(self.process):  # removed as silent: join again
                    await self.store.join_cluster(MemberRecord(
                        self.process, socket.gethostname(), os.getpid(), hermes_version(), self.started_at,
                        time.time()))
            except Exception as exc:  # noqa: BLE001 - the leases judge themselves by their TTL
                log.warning("cluster: heartbeat failed: %s", exc)

    async def stop(self) -> None:
        await self.runner.stop_all()
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await self.keeper.close()
        try:
            await self.store.leave_cluster(self.process)
        except Exception as exc:  # noqa: BLE001 - the row is forgotten after its silence anyway
            log.warning("cluster: could not leave the member list: %s", exc)
