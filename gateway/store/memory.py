"""Memory files in the store: each MEMORY.md and USER.md (table memory_files) and every change
to them (memory_versions), implementing `agent.memory.MemoryVersionStore`.

`memory_commit` is the compare-and-set of a memory write: one transaction that reads the file's
row (`FOR UPDATE` on PostgreSQL; `BEGIN IMMEDIATE` on SQLite), refuses with `VersionConflict`
when its version is not the one the writer read, stores the new text and its version, and runs
`apply` (the write of the file under HERMES_HOME) before committing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from agent.memory import StoredMemory
from gateway.store.database import Database
from gateway.store.schema import memory_files, memory_versions
from skills.versions import Apply, VersionConflict, text_digest

M, MV = memory_files.c, memory_versions.c


class MemoryFilesStore:
    """Mixin of the store: tables memory_files and memory_versions, keyed by the file's path
    under HERMES_HOME (`memories/MEMORY.md`, `teams/<team>/memories/MEMORY.md`, ...)."""

    db: Database

    async def memory_state(self, key: str) -> StoredMemory:
        row = await self.db.one(sa.select(M.version, M.content, M.digest).where(M.key == key))
        if row is None:
            return StoredMemory()
        return StoredMemory(row.version, row.content, row.digest)

    async def memory_commit(self, key: str, expected: int, content: str | None, *, action: str,
                            origin: str = "", apply: Apply | None = None) -> int:
        try:
            async with self.db.transaction() as connection:
                query = sa.select(M.version, M.content).where(M.key == key)
                if self.db.is_postgresql:
                    query = query.with_for_update()
                row = (await connection.execute(query)).first()
                version = row.version if row is not None else 0
                if version != expected:
                    raise VersionConflict(f"{key} changed since it was read (version {version}, read {expected})")
                now = time.time()
                digest = text_digest(content) if content is not None else ""
                if row is None:
                    await connection.execute(memory_files.insert().values(
                        key=key, version=1, content=content, digest=digest, updated_at=now))
                else:
                    await connection.execute(memory_files.update().where(M.key == key).values(
                        version=version + 1, content=content, digest=digest, updated_at=now))
                await connection.execute(memory_versions.insert().values(
                    key=key, version=version + 1, action=action, origin=origin,
                    before=row.content if row is not None else None, after=content, digest=digest, time=now))
                if apply is not None:
                    await apply()
                return version + 1
        except sa.exc.IntegrityError as exc:  # another writer stored the file's first version first
            raise VersionConflict(f"{key} was first written by another writer") from exc

    async def memory_refresh(self, key: str, write: Callable[[str | None, int], Awaitable[None]]) -> None:
        """Run `write(content, version)` with the file's stored text while its row is locked, so no
        commit lands in between (a stale or missing copy of the file rewritten from the store)."""
        async with self.db.transaction() as connection:
            query = sa.select(M.version, M.content).where(M.key == key)
            if self.db.is_postgresql:
                query = query.with_for_update()
            row = (await connection.execute(query)).first()
            if row is not None:
                await write(row.content, row.version)

    async def memory_keys(self) -> list[str]:
        return [r.key for r in await self.db.rows(sa.select(M.key).order_by(M.key))]

    async def memory_known(self, key: str, digest: str) -> bool:
        return await self.db.scalar(sa.select(sa.literal(1)).where(
            MV.key == key, MV.digest == digest).limit(1)) is not None

    async def memory_versions(self, key: str) -> list[tuple[int, str, str | None]]:
        """(version, action, text after) of every change to the file, oldest first."""
        rows = await self.db.rows(sa.select(MV.version, MV.action, MV.after).where(MV.key == key)
                                  .order_by(MV.version))
        return [(r.version, r.action, r.after) for r in rows]
