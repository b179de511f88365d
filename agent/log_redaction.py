"""Redaction of log records: secrets masked and each record capped, before any handler formats it.

Shared by the gateway's handlers (`gateway/logging_setup.py`) and the model worker processes, so
both mask the same way: the message, traceback and stack of a record are replaced by their
redacted text, cut to at most MAX_RECORD_BYTES of UTF-8 (lone surrogates repaired).
"""

from __future__ import annotations

import logging

from agent.redact import Redactor
from agent.text import repair_text

MAX_RECORD_BYTES = 64 * 1024


def cap_text(text: str, limit: int = MAX_RECORD_BYTES) -> str:
    """`text` cut to at most `limit` bytes of UTF-8 (with a note saying how much was cut), surrogates repaired."""
    if len(text) * 4 <= limit or len(text.encode("utf-8", errors="replace")) <= limit:
        return repair_text(text)
    note = f" [... {{}} characters cut: one log record holds at most {limit // 1024} KB]"
    head = text[: limit].encode("utf-8", errors="replace")[: limit - len(note) - 12].decode("utf-8", errors="ignore")
    return repair_text(head) + note.format(len(text) - len(head))


class RedactingFilter(logging.Filter):
    """Replaces the record's message, traceback and stack with their redacted text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def learn(self, value: str) -> None:
        """Mask `value` too from now on (a key the worker was handed with a call)."""
        if value and value not in self.redactor.env_values:
            self.redactor = self.redactor.with_values([value])

    def _cleaned(self, text: str) -> str:
        """Redacted and capped; the first, wider cut keeps redaction cheap without splitting a secret at the final one."""
        return cap_text(self.redactor.redact(cap_text(text, 4 * MAX_RECORD_BYTES)))

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_hermes_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception as exc:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!r} (unformattable with {len(record.args or ())} args: {exc})"
        record.msg = self._cleaned(message)
        record.args = None
        if record.exc_info:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = self._cleaned(text)
            record.exc_info = None  # nothing may format the raw exception again
        elif record.exc_text:
            record.exc_text = self._cleaned(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        record._hermes_redacted = True
        return True
