"""The store interface: what the gateway needs to persist, independent of the database.

The SQLite implementation is the embedded default; a PostgreSQL one can follow so several
gateway processes share state. Messages are OpenAI-style dicts, stored as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class RowRejectedError(ValueError):
    """The database refused a row given from outside (a profile's cron job missing a column, a
    value of the wrong type); the message is the database's reason, first line."""


class KeepSecret(str):
    """A text parameter whose own tokens the store keeps instead of redacting them by shape:
    configuration that would not work masked (a cron job's webhook URL). The known secret values
    of the config and environment are still masked in it. Use sparingly."""


@dataclass(frozen=True)
class SessionRecord:
    id: str
    key: str
    platform: str
    chat_id: str
    user_id: str
    team: str
    title: str
    archived: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class UsageTotals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Store(Protocol):
    """Sessions, messages, tool calls and usage."""

    async def close(self) -> None: ...

    async def active_session(
        self, key: str, *, platform: str = "", chat_id: str = "", user_id: str = "", team: str = "",
        title: str = "",
    ) -> SessionRecord:
        """The current session for a key, created (named `title`) when there is none."""
        ...

    async def new_session(
        self, key: str, *, platform: str = "", chat_id: str = "", user_id: str = "", team: str = ""
    ) -> SessionRecord:
        """Archive the key's current session (if any) and start a fresh one."""
        ...

    async def get_session(self, session_id: str) -> SessionRecord | None: ...

    async def list_sessions(self, *, limit: int = 50, include_archived: bool = False) -> list[SessionRecord]: ...

    async def add_message(self, session_id: str, message: dict[str, Any]) -> int:
        """Append a message durably (committed before this returns); returns its sequence number."""
        ...

    async def load_messages(self, session_id: str) -> list[dict[str, Any]]:
        """The session's active messages, in order."""
        ...

    async def compact_messages(self, session_id: str, first_seq: int, last_seq: int,
                               summary: dict[str, Any]) -> None:
        """Replace messages first_seq..last_seq (inclusive) by one summary message."""
        ...

    async def record_tool_call(self, session_id: str, *, call_id: str, name: str, arguments: str,
                               ok: bool, result: str, duration_ms: float) -> None: ...

    async def record_usage(self, session_id: str, *, model: str, prompt_tokens: int,
                           completion_tokens: int, cost: float, purpose: str = "chat") -> None: ...

    async def usage_for_session(self, session_id: str) -> UsageTotals: ...

    async def usage_since(self, since: float, *, purpose: str | None = None) -> UsageTotals: ...
