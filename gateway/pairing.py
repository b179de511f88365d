"""Pairing: a user the allowlist does not know gets a one-time code; an admin approves it.

Codes are 8 characters from an unambiguous alphabet (no 0/O, 1/I/L), random from `secrets`,
valid for an hour; a user asking again while a code is pending gets the same code. Approved
users are kept in the store (`allow_grants`, `gateway/store/pairing.py`) and survive restarts;
`revoke` removes them.
"""

from __future__ import annotations

import secrets
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
        return await self.store.pairing_code(platform, user_id, code=new_code(), display_name=display_name,
                                             chat_id=chat_id, ttl=self.ttl)

    async def pending(self) -> list[PairingRequest]:
        return [_request(r) for r in await self.store.pairing_pending()]

    async def grants(self) -> list[Grant]:
        return [Grant(r["platform"], r["user_id"], r["display_name"], r["approved_by"], r["created_at"])
                for r in await self.store.grant_rows()]

    async def is_approved(self, platform: str, user_id: str) -> bool:
        return await self.store.grant_exists(platform, user_id)

    async def approve(self, code: str, *, approved_by: str = "cli") -> Grant:
        outcome, row = await self.store.pairing_approve(normalise_code(code), approved_by)
        if outcome == "unknown" or row is None:
            raise PairingError(f"no pending pairing code {code!r} (hermes pairing list shows the pending ones)")
        if outcome == "expired":
            raise PairingError(f"pairing code {code!r} has expired; ask the user to message the bot again")
        return Grant(row["platform"], row["user_id"], row["display_name"], approved_by, row["granted_at"])

    async def reject(self, code: str) -> PairingRequest:
        """Drop a pending request without granting access; returns what was dropped."""
        row = await self.store.pairing_reject(normalise_code(code))
        if row is None:
            raise PairingError(f"no pending pairing code {code!r} (hermes pairing list shows the pending ones)")
        return _request(row)

    async def revoke(self, user: str, platform: str | None = None) -> list[Grant]:
        """Remove the grants of `user` (`platform:id` or a bare id); returns what was removed."""
        if platform is None and ":" in user:
            platform, _, user = user.partition(":")
        removed = [g for g in await self.grants() if g.user_id == user and (platform is None or g.platform == platform)]
        if not removed:
            where = f" on {platform}" if platform else ""
            raise PairingError(f"user {user!r} has no approved access{where} (hermes pairing list shows them)")
        for grant in removed:
            await self.store.grant_delete(grant.platform, grant.user_id)
        return removed


def _request(row: Any) -> PairingRequest:
    return PairingRequest(row["code"], row["platform"], row["user_id"], row["display_name"], row["created_at"],
                          row["expires_at"])
