"""Leases on duties: who in the cluster may run what must run once, and the fencing check.

`LeaseKeeper` is one per process. On PostgreSQL it holds a dedicated connection
(`LockConnection`, TCP keepalives on) on which each owned duty is a session-level advisory lock,
plus the duty's lease row whose generation is bumped on every acquisition. A `Lease` is lost:

- at once when the lock connection ends (`pg_terminate_backend`, a server restart, a cut socket
  the driver notices): every lease of the process is lost together;
- when renewing fails for longer than the TTL (a network partition the driver does not notice):
  the process fences itself before the lease row expires for the others;
- when the row no longer names this owner and generation (someone took over).

`Lease.still_owner()` is the fencing check every singleton action makes before it acts. A
follower whose `try_acquire` finds the lock taken but the row expired for longer than the TTL
ends the silent holder's server session, so a partitioned leader cannot keep a duty for longer
than the server's keepalive timeout would allow.

On SQLite the one process owns every duty (the pid file refuses a second gateway on a home); the
rows are still written, so `hermes status` reads the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from gateway.store import StateStore
from gateway.store.leases import LockConnection

log = logging.getLogger(__name__)

DEFAULT_TTL = 6.0
DEFAULT_RENEW_EVERY = 1.0


@dataclass
class Lease:
    """This process's hold on one duty under one generation."""

    duty: str
    generation: int
    keeper: LeaseKeeper
    previous_owner: str = ""
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    renewed_at: float = field(default_factory=time.monotonic)

    @property
    def held(self) -> bool:
        """The local part of the fencing check: no lost connection, renewed within the TTL."""
        return not self.lost.is_set() and time.monotonic() - self.renewed_at < self.keeper.ttl

    async def still_owner(self) -> bool:
        """The fencing check: held here, and the store's row still has our owner and generation.
        False always leaves the lease lost, so its duty stops and is acquired afresh."""
        if not self.held:
            self.keeper._lose(self, f"not renewed for {self.keeper.ttl:.0f}s")
            return False
        try:
            ok = await self.keeper.store.lease_still_held(self.duty, self.keeper.owner, self.generation)
        except Exception as exc:  # noqa: BLE001 - a store we cannot read is not a lease we hold
            log.warning("cluster: could not check the lease of %s: %s", self.duty, exc)
            return False
        if not ok:
            self.keeper._lose(self, "another process holds it now")
        return ok and self.held

    async def save_cursor(self, cursor: str) -> bool:
        """Record where the duty got to (the poller's offset) and make the fencing check in the
        same statement; False (and the lease is lost) when another process holds the duty now."""
        if not self.held:
            self.keeper._lose(self, f"not renewed for {self.keeper.ttl:.0f}s")
            return False
        try:
            ok = await self.keeper.store.save_cursor(self.duty, self.keeper.owner, self.generation, cursor)
        except Exception as exc:  # noqa: BLE001 - judged by the local check: renewed within the TTL
            log.warning("cluster: could not record where the %s duty got to: %s", self.duty, exc)
            if not self.held:
                self.keeper._lose(self, f"not renewed for {self.keeper.ttl:.0f}s")
            return self.held
        if not ok:
            self.keeper._lose(self, "another process holds it now")
        return ok and self.held


class LeaseKeeper:
    """Acquires, renews and releases this process's leases (see the module docstring)."""

    def __init__(self, store: StateStore, owner: str, *, ttl: float = DEFAULT_TTL,
                 renew_every: float = DEFAULT_RENEW_EVERY) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self.renew_every = renew_every
        self.leases: dict[str, Lease] = {}
        self._lock: LockConnection | None = None
        self._guard = asyncio.Lock()
        self._closed = False
        self._suspects: dict[str, tuple[str, int, float]] = {}
        self._locked: set[str] = set()   # advisory locks held on the current lock connection

    @property
    def shared(self) -> bool:
        """Several processes may share this store (PostgreSQL)."""
        return self.store.db.is_postgresql

    async def _connection(self) -> LockConnection | None:
        if not self.shared:
            return None
        if self._lock is None or self._lock.lost:
            if self._lock is not None:
                await self._lock.close()
            self._lock = await self.store.open_lock_connection()
            self._locked.clear()
            assert self._lock is not None
            self._lock.on_lost(self._connection_lost)
        return self._lock

    def _connection_lost(self) -> None:
        for lease in list(self.leases.values()):
            self._lose(lease, "the lease connection to the store ended")

    def _lose(self, lease: Lease, why: str) -> None:
        if self.leases.get(lease.duty) is lease:
            del self.leases[lease.duty]
        if not lease.lost.is_set():
            log.warning("cluster: lost the %s duty (generation %d): %s", lease.duty, lease.generation, why)
            lease.lost.set()

    async def try_acquire(self, duty: str) -> Lease | None:
        """The duty's lease if it is free (or already ours), else None; never waits for it."""
        async with self._guard:
            if self._closed:
                return None
            held = self.leases.get(duty)
            if held is not None and held.held:
                return held
            connection = await self._connection()
            # a lease lost here while its lock stayed ours (renewals fell behind): the lock is not
            # taken twice (advisory locks stack), only the row gets a new generation
            if connection is not None and duty not in self._locked:
                if not await connection.try_lock(duty):
                    await self._end_silent_holder(duty)
                    return None
                self._locked.add(duty)
            before = await self.store.lease(duty)
            generation = await self.store.take_lease(duty, self.owner, self.ttl)
            lease = Lease(duty, generation, self, previous_owner=before.owner if before else "")
            if connection is not None and connection.lost:  # ended while we wrote the row
                return None
            self.leases[duty] = lease
            log.info("cluster: this process now runs the %s duty (generation %d)", duty, generation)
            return lease

    async def _end_silent_holder(self, duty: str) -> None:
        """The lock is taken. If its row stays expired (not released) under the same owner and
        generation for a whole TTL of our own watching, the holder is cut off: end its session."""
        record = await self.store.lease(duty)
        now = time.monotonic()
        if record is None or record.expires_at <= 0 or record.expires_at > time.time():
            self._suspects.pop(duty, None)
            return
        seen = self._suspects.get(duty)
        if seen is None or seen[:2] != (record.owner, record.generation):
            self._suspects[duty] = (record.owner, record.generation, now)
            return
        if now - seen[2] < self.ttl:
            return
        pid = await self.store.lock_holder(duty)
        if pid is not None and (self._lock is None or pid != self._lock.backend_pid):
            log.warning("cluster: the %s duty's holder (%s) stopped renewing %.0fs ago; ending its session",
                        duty, record.owner, time.time() - record.expires_at)
            await self.store.end_backend(pid)
        self._suspects.pop(duty, None)

    async def renew(self) -> None:
        """Renew every held lease (one round); a lease that cannot be renewed within the TTL is lost."""
        if self._lock is not None and not self._lock.lost:
            try:
                await self._lock.ping()
            except Exception:  # noqa: BLE001 - the connection's own callbacks already fired
                return
        held = list(self.leases.values())
        asked = time.monotonic()   # the rows expire TTL after this, at the latest: count from here
        try:  # one statement for all of them: a slow store must not make the last ones late
            renewed: set[str] | None = await self.store.renew_leases(
                self.owner, {lease.duty: lease.generation for lease in held}, self.ttl)
        except Exception as exc:  # noqa: BLE001 - judged by the TTL below
            log.warning("cluster: could not renew the leases: %s", exc)
            renewed = None
        for lease in held:
            if renewed is not None and lease.duty in renewed:
                lease.renewed_at = asked
            elif renewed is not None:
                self._lose(lease, "its lease row names another owner")
            if not lease.held:
                self._lose(lease, f"not renewed for {self.ttl:.0f}s")

    async def release(self, lease: Lease) -> None:
        """Give a duty back (a clean stop): the row expires now and the lock is freed."""
        async with self._guard:
            if self.leases.get(lease.duty) is lease:
                del self.leases[lease.duty]
            lease.lost.set()
            try:
                await self.store.end_lease(lease.duty, self.owner, lease.generation)
                if self._lock is not None and not self._lock.lost and lease.duty in self._locked:
                    self._locked.discard(lease.duty)
                    await self._lock.unlock(lease.duty)
            except Exception as exc:  # noqa: BLE001 - the lock ends with the connection anyway
                log.warning("cluster: could not release the %s lease cleanly: %s", lease.duty, exc)

    async def close(self) -> None:
        for lease in list(self.leases.values()):
            await self.release(lease)
        self._closed = True
        if self._lock is not None:
            await self._lock.close()
            self._lock = None
