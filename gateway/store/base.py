"""Record types shared by the store's modules: sessions, usage totals, and the errors and markers
they raise or take. Messages are OpenAI-style dicts, stored as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass


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
