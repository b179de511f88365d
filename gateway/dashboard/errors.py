"""Recent warnings and errors of this process, for the overview page.

A logging handler on the root logger keeps the last records at WARNING or above in a bounded
deque (secrets redacted when the record is taken). It is attached when the HTTP app starts and
detached when it is cleaned up, so nothing outlives the gateway that owns it.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from agent.redact import Redactor

MAX_RECORDS = 100
MAX_TEXT = 2_000


@dataclass(frozen=True)
class ErrorRecord:
    time: float
    level: str
    logger: str
    message: str


class RecentErrors(logging.Handler):
    def __init__(self, limit: int = MAX_RECORDS, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.records: deque[ErrorRecord] = deque(maxlen=limit)
        self.redactor = Redactor.from_environ()
        self._attached = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                text += f" ({type(exc).__name__}: {exc})"
            self.records.append(ErrorRecord(record.created, record.levelname, record.name,
                                            self.redactor.redact(text)[:MAX_TEXT]))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)

    def recent(self, limit: int = 20) -> list[ErrorRecord]:
        return list(reversed(self.records))[:limit]

    def attach(self) -> None:
        if not self._attached:
            logging.getLogger().addHandler(self)
            self._attached = True

    def detach(self) -> None:
        if self._attached:
            logging.getLogger().removeHandler(self)
            self._attached = False
