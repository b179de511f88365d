"""Small helpers for the words people read: counts with the right plural."""

from __future__ import annotations


def plural(count: int, word: str, many: str = "") -> str:
    """`1 use`, `2 uses`, `1 cron job`, `0 skills`."""
    return f"{count} {word if count == 1 else (many or word + 's')}"
