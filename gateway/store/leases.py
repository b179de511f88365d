"""Duty leases and cluster membership: the statements behind "one owner for what runs once".

- `leases` has a row per duty (the Telegram poller, the cron scheduler, ...): its owner (a
  process id), a `generation` bumped on every acquisition, and `expires_at`/`heartbeat_at` the
  owner renews. A singleton action asks `lease_still_held(duty, owner, generation)` before it
  acts (fencing): once another process has taken the duty the generation differs and the old
  owner's check fails. `cursor` is where the duty got to (the Telegram poller's offset), written
  by `save_cursor` under the same check, so a new owner resumes from it and a fenced one cannot
  move it.
- `cluster_members` has a row per gateway process (host, pid, version, started, heartbeat).
- `LockConnection` is the dedicated PostgreSQL connection (gateway/store/dedicated.py) that holds the session-level advisory
  locks (`pg_try_advisory_lock`), one per owned duty, with TCP keepalives on; the server releases
  them when the connection ends (a crash, `pg_terminate_backend`), and `on_lost` callbacks run the
  moment the driver sees the connection close. SQLite has no such connection: one process owns
  every duty (the home's pid file refuses a second gateway).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.dedicated import DedicatedConnection
from gateway.store.schema import cluster_members, leases

log = logging.getLogger(__name__)

LOCK_APPLICATION_NAME = "hermes-lease"


def lock_key(duty: str) -> int:
    """The advisory lock key of a duty: a stable signed 64-bit hash of its name."""
    return int.from_bytes(hashlib.sha256(f"hermes-duty:{duty}".encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class LeaseRecord:
    duty: str
    owner: str
    generation: int
    expires_at: float
    heartbeat_at: float

    def live(self, now: float | None = None) -> bool:
        return bool(self.owner) and self.expires_at > (time.time() if now is None else now)


@dataclass(frozen=True)
class MemberRecord:
    process: str
    host: str
    pid: int
    version: str
    started_at: float
    heartbeat_at: float


class LockConnection(DedicatedConnection):
    """One PostgreSQL connection of its own that holds this process's advisory locks."""

    backend_pid: int = 0

    @classmethod
    async def open_for_locks(cls, db: Database) -> LockConnection:
        lock = await cls.open(db, LOCK_APPLICATION_NAME)
        try:
            lock.backend_pid = int(await lock.scalar(sa.select(sa.func.pg_backend_pid())))
        except BaseException:
            await lock.close()
            raise
        lock.on_lost(lambda: log.warning(
            "cluster: the lease connection to the store ended; every duty of this process stops"))
        return lock

    async def try_lock(self, duty: str) -> bool:
        return bool(await self.scalar(sa.select(sa.func.pg_try_advisory_lock(lock_key(duty)))))

    async def unlock(self, duty: str) -> None:
        await self.scalar(sa.select(sa.func.pg_advisory_unlock(lock_key(duty))))

    async def ping(self) -> None:
        await self.scalar(sa.select(sa.literal(1)))


class LeasesStore:
    """Duty leases (fencing generations) and the member processes; see the module docstring."""

    db: Database

    # -- leases ---------------------------------------------------------------------------------
    async def open_lock_connection(self) -> LockConnection | None:
        """The dedicated advisory-lock connection on PostgreSQL; None on SQLite."""
        return await LockConnection.open_for_locks(self.db) if self.db.is_postgresql else None

    async def take_lease(self, duty: str, owner: str, ttl: float) -> int:
        """Record `owner` as the duty's holder under a new generation (the caller holds its lock)."""
        now = time.time()
        async with self.db.transaction():
            updated = await self.db.execute(
                sa.update(leases).where(leases.c.duty == duty)
                .values(owner=owner, generation=leases.c.generation + 1, expires_at=now + ttl, heartbeat_at=now))
            if not updated.rowcount:
                await self.db.execute(self.db.insert_ignore(leases).values(
                    duty=duty, owner=owner, generation=1, expires_at=now + ttl, heartbeat_at=now))
            return int(await self.db.scalar(sa.select(leases.c.generation).where(leases.c.duty == duty)))

    async def renew_leases(self, owner: str, generations: dict[str, int], ttl: float) -> set[str]:
        """Renew every lease `owner` holds in one statement; the duties whose row still named it
        under the given generation (the others were taken over)."""
        if not generations:
            return set()
        now = time.time()
        rows = await self.db.write_returning(
            sa.update(leases).where(leases.c.owner == owner, leases.c.duty.in_(list(generations)))
            .values(expires_at=now + ttl, heartbeat_at=now).returning(leases.c.duty, leases.c.generation))
        return {r[0] for r in rows if generations.get(r[0]) == int(r[1])}

    async def lease_still_held(self, duty: str, owner: str, generation: int) -> bool:
        """The fencing check: the row still names this owner and generation and has not expired."""
        row = await self.db.one(sa.select(leases.c.expires_at).where(
            leases.c.duty == duty, leases.c.owner == owner, leases.c.generation == generation))
        return row is not None and float(row[0]) > time.time()

    async def save_cursor(self, duty: str, owner: str, generation: int, cursor: str) -> bool:
        """Record where the duty got to, only while the row names this owner and generation and has
        not expired: the fencing check and the write in one statement (False: not the owner)."""
        result = await self.db.execute(
            sa.update(leases).where(leases.c.duty == duty, leases.c.owner == owner,
                                    leases.c.generation == generation, leases.c.expires_at > time.time())
            .values(cursor=cursor))
        return bool(result.rowcount)

    async def lease_cursor(self, duty: str) -> str:
        """Where the duty's last owner got to ('' when it never recorded anything)."""
        return str(await self.db.scalar(sa.select(leases.c.cursor).where(leases.c.duty == duty)) or "")

    async def end_lease(self, duty: str, owner: str, generation: int) -> None:
        """A clean release: the row stays (its generation goes on), expired at once."""
        await self.db.execute(
            sa.update(leases).where(leases.c.duty == duty, leases.c.owner == owner,
                                    leases.c.generation == generation)
            .values(expires_at=0.0))

    async def lease(self, duty: str) -> LeaseRecord | None:
        row = await self.db.one(sa.select(leases).where(leases.c.duty == duty))
        return _lease(row) if row is not None else None

    async def list_leases(self) -> list[LeaseRecord]:
        return [_lease(r) for r in await self.db.rows(sa.select(leases).order_by(leases.c.duty))]

    async def lock_holder(self, duty: str) -> int | None:
        """PostgreSQL: the backend pid holding a duty's advisory lock (None when free, or on SQLite)."""
        if not self.db.is_postgresql:
            return None
        from sqlalchemy.dialects.postgresql import OID

        key = lock_key(duty) & 0xFFFFFFFFFFFFFFFF  # a bigint key is (classid, objid) = (high, low) 32 bits
        locks = sa.table("pg_locks", sa.column("pid"), sa.column("locktype"), sa.column("classid"),
                         sa.column("objid"), sa.column("objsubid"), sa.column("granted"))
        return await self.db.scalar(sa.select(locks.c.pid).where(
            locks.c.locktype == "advisory", locks.c.classid == sa.cast(key >> 32, OID),
            locks.c.objid == sa.cast(key & 0xFFFFFFFF, OID), locks.c.objsubid == 1,
            locks.c.granted.is_(True)).limit(1))

    async def end_backend(self, backend_pid: int) -> bool:
        """PostgreSQL: end a server session (a lease holder that stopped renewing)."""
        if not self.db.is_postgresql:
            return False
        return bool(await self.db.scalar(sa.select(sa.func.pg_terminate_backend(backend_pid))))

    # -- members ----------------------------------------------------------------------------------
    async def join_cluster(self, member: MemberRecord) -> None:
        await self.db.execute(self.db.upsert(cluster_members, {
            "process": member.process, "host": member.host, "pid": member.pid, "version": member.version,
            "started_at": member.started_at, "heartbeat_at": member.heartbeat_at}, ["process"]))

    async def member_heartbeat(self, process: str) -> bool:
        result = await self.db.execute(sa.update(cluster_members).where(cluster_members.c.process == process)
                                       .values(heartbeat_at=time.time()))
        return bool(result.rowcount)

    async def leave_cluster(self, process: str) -> None:
        await self.db.execute(sa.delete(cluster_members).where(cluster_members.c.process == process))

    async def list_members(self, *, forget_after: float = 3600.0) -> list[MemberRecord]:
        """The processes, newest heartbeat first; rows silent for `forget_after` s are removed."""
        await self.db.execute(sa.delete(cluster_members).where(
            cluster_members.c.heartbeat_at < time.time() - forget_after))
        rows = await self.db.rows(sa.select(cluster_members).order_by(cluster_members.c.started_at))
        return [MemberRecord(r.process, r.host, int(r.pid), r.version, float(r.started_at),
                             float(r.heartbeat_at)) for r in rows]


def _lease(row: Any) -> LeaseRecord:
    return LeaseRecord(row.duty, row.owner, int(row.generation), float(row.expires_at), float(row.heartbeat_at))
