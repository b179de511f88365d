"""Skill versions in the store: the source of truth of every skill library (tables skill_heads,
skill_files, skill_versions), implementing `skills.versions.SkillVersionStore` per library.

`skill_commit` is the compare-and-set: one transaction that reads the skill's head (`FOR UPDATE`
on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds the write lock), refuses with
`VersionConflict` when its `seq` is not the one the writer read, appends the history entries,
stores the files' new text, bumps `seq`, and runs the library's `apply` (the file writes under
HERMES_HOME) before committing. Two creators of one new skill meet on the head's primary key:
the loser gets `VersionConflict` too.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from gateway.store.database import Database
from gateway.store.schema import skill_files, skill_heads, skill_versions
from skills.history import SKILL_FILE, HistoryEntry, unified_diff
from skills.versions import KEEP, Apply, Commit, Provenance, StoredSkill, VersionConflict, file_digest, text_digest

H, F, V = skill_heads.c, skill_files.c, skill_versions.c


class SkillsStore:
    """Mixin of the store: the skill tables, by library ("" = the home's, else the team's)."""

    db: Database

    def skill_versions(self, library: str = "") -> LibraryVersions:
        """The `SkillVersionStore` of one library."""
        return LibraryVersions(self, library)

    async def skill_state(self, library: str, name: str) -> StoredSkill:
        async with self.db.reading() as connection:
            head = (await connection.execute(sa.select(skill_heads).where(
                H.library == library, H.name == name))).first()
            if head is None:
                return StoredSkill()
            files = (await connection.execute(sa.select(F.file, F.content, F.digest).where(
                F.library == library, F.name == name))).all()
        owner = Provenance(head.owner_fingerprint, head.owner_origin, head.owner_time) \
            if head.owner_fingerprint is not None else None
        return StoredSkill(seq=head.seq, version=head.version, category=head.category,
                           files={r.file: r.content for r in files}, digests={r.file: r.digest for r in files},
                           owner=owner)

    async def skill_commit(self, library: str, name: str, commit: Commit, apply: Apply | None = None) -> int:
        try:
            async with self.db.transaction() as connection:
                return await self._commit(connection, library, name, commit, apply)
        except sa.exc.IntegrityError as exc:  # another writer created the skill's head first
            raise VersionConflict(f"skill {name!r} was created by another writer") from exc

    async def _commit(self, connection: Any, library: str, name: str, commit: Commit, apply: Apply | None) -> int:
        now = time.time()
        query = sa.select(H.seq, H.version, H.category, H.present).where(H.library == library, H.name == name)
        if self.db.is_postgresql:
            query = query.with_for_update()
        head = (await connection.execute(query)).first()
        seq = head.seq if head is not None else 0
        if seq != commit.expected:
            raise VersionConflict(f"skill {name!r} changed since it was read (version {seq}, "
                                  f"read {commit.expected})")
        if head is None:
            await connection.execute(skill_heads.insert().values(
                library=library, name=name, seq=0, version=0, category=commit.category or "",
                present=0, updated_at=now))
        number = head.version if head is not None else 0
        for entry in commit.entries:
            number += 1
            await connection.execute(skill_versions.insert().values(
                library=library, name=name, number=number, action=entry.action, file=entry.file,
                time=entry.time if entry.time is not None else now, origin=entry.origin,
                before=entry.before, after=entry.after, diff=unified_diff(entry.before, entry.after, entry.file),
                digest=file_digest(entry.file, entry.after) if entry.after is not None else ""))
        mine = (F.library == library) & (F.name == name)
        if commit.gone:
            await connection.execute(skill_files.delete().where(mine))
        for file, text in sorted(commit.files.items()):
            if text is None:
                await connection.execute(skill_files.delete().where(mine, F.file == file))
            else:
                await connection.execute(self.db.upsert(skill_files, {
                    "library": library, "name": name, "file": file, "content": text,
                    "digest": text_digest(text)}, ["library", "name", "file"]))
        if commit.gone:
            present = 0
        elif SKILL_FILE in commit.files:
            present = 1 if commit.files[SKILL_FILE] is not None else 0
        else:
            present = head.present if head is not None else 0
        values: dict[str, Any] = {"seq": seq + 1, "version": number, "present": present, "updated_at": now}
        if commit.category is not None:
            values["category"] = commit.category
        if commit.owner != KEEP:
            owner = commit.owner if isinstance(commit.owner, Provenance) else None
            values.update(owner_fingerprint=owner.fingerprint if owner else None,
                          owner_origin=owner.origin if owner else "", owner_time=owner.time if owner else "")
        await connection.execute(skill_heads.update().where(H.library == library, H.name == name).values(**values))
        if apply is not None:
            await apply()
        return seq + 1

    async def skill_entries(self, library: str, name: str) -> list[HistoryEntry]:
        rows = await self.db.rows(sa.select(skill_versions).where(
            V.library == library, V.name == name).order_by(V.number))
        return [HistoryEntry(number=r.number, action=r.action, file=r.file, time=r.time, origin=r.origin,
                             before=r.before, after=r.after, diff=r.diff) for r in rows]

    async def skill_known(self, library: str, name: str, file: str, digest: str) -> bool:
        return await self.db.scalar(sa.select(sa.literal(1)).where(
            V.library == library, V.name == name, V.file == file, V.digest == digest).limit(1)) is not None

    async def skill_names(self, library: str) -> dict[str, int]:
        rows = await self.db.rows(sa.select(H.name, H.seq).where(H.library == library))
        return {r.name: r.seq for r in rows}

    async def skill_digests(self, library: str) -> dict[str, tuple[int, dict[str, str]]]:
        rows = await self.db.rows(sa.select(H.name, H.seq, F.file, F.digest).select_from(
            skill_heads.outerjoin(skill_files, (F.library == H.library) & (F.name == H.name))).where(
            H.library == library))
        found: dict[str, tuple[int, dict[str, str]]] = {}
        for row in rows:
            files = found.setdefault(row.name, (row.seq, {}))[1]
            if row.file is not None:
                files[row.file] = row.digest
        return found

class LibraryVersions:
    """`SkillVersionStore` of one library over the store's skill tables."""

    def __init__(self, store: SkillsStore, library: str) -> None:
        self.store = store
        self.library = library

    async def skill_state(self, name: str) -> StoredSkill:
        return await self.store.skill_state(self.library, name)

    async def skill_commit(self, name: str, commit: Commit, apply: Apply | None = None) -> int:
        return await self.store.skill_commit(self.library, name, commit, apply)

    async def skill_entries(self, name: str) -> list[HistoryEntry]:
        return await self.store.skill_entries(self.library, name)

    async def skill_known(self, name: str, file: str, digest: str) -> bool:
        return await self.store.skill_known(self.library, name, file, digest)

    async def skill_names(self) -> dict[str, int]:
        return await self.store.skill_names(self.library)

    async def skill_digests(self) -> dict[str, tuple[int, dict[str, str]]]:
        return await self.store.skill_digests(self.library)
