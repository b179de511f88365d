"""Pairing: a user the allowlist does not know gets a one-time code; an admin approves it.

Codes are 8 characters from an unambiguous alphabet (no 0/O, 1/I/L), random from `secrets`,
valid for an hour; a user asking again while a code is pending gets the same code. Approved
users are kept in the store (`allow_grants`) and survive restarts; `revoke` removes them.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from gateway.store import StateStore

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
CODE_TTL = 3600.0


class PairingError(Exception):
    """A pairing operation could not be done (unknown or expired code, unknown user)."""


@dataclass(frozen=True)
class PairingRequest:
    code: str
    platform: str
    user_id: str
    display_name: str
    created_at: float
    expires_at: float

    def as_dict(self) -> dict[str, Any]:
        return {"status": "pending", **asdict(self)}


@dataclass(frozen=True)
class Grant:
    platform: str
    user_id: str
    display_name: str
    approved_by: str
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        return {"status": "approved", "code": "", **asdict(self)}


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    return code.strip().upper().replace("-", "").replace(" ", "")


class Pairing:
    """Pairing requests and grants in the store."""

    def __init__(self, store: StateStore, *, ttl: float = CODE_TTL) -> None:
        self.store = store
        self.ttl = ttl

    async def request(self, platform: str, user_id: str, display_name: str = "", chat_id: str = "") -> str:
        """The pending code for this user, created when there is none (or it expired)."""
        now = time.time()
        row = await self.store.fetchone(
            "SELECT code, expires_at FROM pairing_requests WHERE platform = ? AND user_id = ?", (platform, user_id))
        if row is not None and row["expires_at"] > now:
            return str(row["code"])
        code = new_code()
        await self.store.execute(
            "INSERT INTO pairing_requests (code, platform, user_id, display_name, chat_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, user_id) DO UPDATE SET code = excluded.code,"
            " display_name = excluded.display_name, chat_id = excluded.chat_id,"
            " created_at = excluded.created_at, expires_at = excluded.expires_at",
            (code, platform, user_id, display_name, chat_id, now, now + self.ttl))
        return code

    async def pending(self) -> list[PairingRequest]:
        rows = await self.store.fetchall(
            "SELECT * FROM pairing_requests WHERE expires_at > ? ORDER BY created_at", (time.time(),))
        return [PairingRequest(r["code"], r["platform"], r["user_id"], r["display_name"], r["created_at"],
                               r["expires_at"]) for r in rows]

    async def grants(self) -> list[Grant]:
        rows = await self.store.fetchall("SELECT * FROM allow_grants ORDER BY created_at")
        return [Grant(r["platform"], r["user_id"], r["display_name"], r["approved_by"], r["created_at"])
                for r in rows]

    async def is_approved(self, platform: str, user_id: str) -> bool:
        row = await self.store.fetchone(
            "SELECT 1 FROM allow_grants WHERE platform = ? AND user_id = ?", (platform, user_id))
        return row is not None

    async def approve(self, code: str, *, approved_by: str = "cli") -> Grant:
        wanted = normalise_code(code)
        row = await self.store.fetchone("SELECT * FROM pairing_requests WHERE code = ?", (wanted,))
        if row is None:
            raise PairingError(f"no pending pairing code {code!r} (hermes pairing list shows the pending ones)")
        if row["expires_at"] <= time.time():
            await self.store.execute("DELETE FROM pairing_requests WHERE code = ?", (wanted,))
            raise PairingError(f"pairing code {code!r} has expired; ask the user to message the bot again")
        now = time.time()
        await self.store.execute(
            "INSERT OR REPLACE INTO allow_grants (platform, user_id, display_name, approved_by, created_at)"
            " VALUES (?, ?, ?, ?, ?)", (row["platform"], row["user_id"], row["display_name"], approved_by, now))
        await self.store.execute("DELETE FROM pairing_requests WHERE code = ?", (wanted,))
        return Grant(row["platform"], row["user_id"], row["display_name"], approved_by, now)

    async def reject(self, code: str) -> PairingRequest:
        """Drop a pending request without granting access; returns what was dropped."""
        wanted = normalise_code(code)
        row = await self.store.fetchone("SELECT * FROM pairing_requests WHERE code = ?", (wanted,))
        if row is None:
            raise PairingError(f"no pending pairing code {code!r} (hermes pairing list shows the pending ones)")
        await self.store.execute("DELETE FROM pairing_requests WHERE code = ?", (wanted,))
        return PairingRequest(row["code"], row["platform"], row["user_id"], row["display_name"],
                              row["created_at"], row["expires_at"])

    async def revoke(self, user: str, platform: str | None = None) -> list[Grant]:
        """Remove the grants of `user` (`platform:id` or a bare id); returns what was removed."""
        if platform is None and ":" in user:
            platform, _, user = user.partition(":")
        removed = [g for g in await self.grants() if g.user_id == user and (platform is None or g.platform == platform)]
        if not removed:
            where = f" on {platform}" if platform else ""
            raise PairingError(f"user {user!r} has no approved access{where} (hermes pairing list shows them)")
        for grant in removed:
            await self.store.execute("DELETE FROM allow_grants WHERE platform = ? AND user_id = ?",
                                     (grant.platform, grant.user_id))
        return removed
