"""Logging for a long-running gateway: JSON lines to a rotated file, readable lines to the terminal.

- `HERMES_HOME/logs/hermes.jsonl`: one JSON object a line (`ts`, `level`, `logger`, `message`,
  `session`, `platform`, and `exc` when there is a traceback), rotated by size
  (`logging.handlers.RotatingFileHandler`).
- The terminal (stderr): `2025-01-01 12:00:00 INFO  gateway.x [telegram 3fa9...] message`.
- `log_context(session=..., platform=...)` sets context variables for the code inside it (and
  every task it starts), so every line a turn logs carries its session and platform.
- Secrets are redacted (agent.redact.Redactor) from the message, its arguments, exception
  tracebacks and stack info before any handler formats the record: the filter sits on both
  handlers and replaces the record's text, so no formatter can render the raw exception again.
- One record holds at most agent.log_redaction.MAX_RECORD_BYTES (64 KB) of message and as much of traceback: a tool
  result of a gigabyte logged at DEBUG becomes its head and a note, not a gigabyte line. Lone
  surrogates are repaired, so such a line cannot fail the UTF-8 file.

`setup_logging` replaces only the handlers it installed itself, so calling it twice (tests, a
reload) does not duplicate lines; `set_level` changes the level live (SIGHUP reload).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from agent.log_redaction import RedactingFilter
from agent.redact import Redactor

LOG_FILE_NAME = "hermes.jsonl"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
# Libraries that are chatty at INFO; they log at WARNING unless the gateway runs at DEBUG.
NOISY_LOGGERS = ("httpx", "httpcore", "LiteLLM", "litellm", "aiohttp.access", "telegram", "discord",
                 "slack_bolt", "slack_sdk", "apscheduler", "asyncio", "aiosqlite", "alembic")
_MARK = "_hermes_handler"

_session: ContextVar[str] = ContextVar("hermes_log_session", default="")
_platform: ContextVar[str] = ContextVar("hermes_log_platform", default="")


@contextmanager
def log_context(session: str = "", platform: str = "") -> Iterator[None]:
    """Tag every log line written inside the block (and tasks started in it) with session/platform."""
    tokens = (_session.set(session or _session.get()), _platform.set(platform or _platform.get()))
    try:
        yield
    finally:
        _platform.reset(tokens[1])
        _session.reset(tokens[0])


class ContextFilter(logging.Filter):
    """Adds `session` and `platform` attributes to every record (empty outside a turn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "session", ""):
            record.session = _session.get()
        if not getattr(record, "platform", ""):
            record.platform = _platform.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "session": getattr(record, "session", ""),
            "platform": getattr(record, "platform", ""),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    """`2025-01-01 12:00:00 INFO  logger [platform session] message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s%(where)s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        parts = [p for p in (getattr(record, "platform", ""), getattr(record, "session", "")) if p]
        record.where = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


@dataclass
class LogSetup:
    """The handlers `setup_logging` installed; `close()` removes them."""

    file_path: Path
    file_handler: logging.handlers.RotatingFileHandler
    console_handler: logging.Handler | None
    previous_level: int = logging.WARNING

    def set_level(self, level: str | int) -> None:
        set_level(level)

    def close(self) -> None:
        """Remove the handlers and put the logging levels back as they were."""
        root = logging.getLogger()
        for handler in (self.file_handler, self.console_handler):
            if handler is not None:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(self.previous_level)
        root.__dict__.pop("_hermes_previous_level", None)
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.captureWarnings(False)


def set_level(level: str | int) -> None:
    """Change the gateway's log level live (root logger; noisy libraries stay at WARNING unless DEBUG)."""
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    logging.getLogger().setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING)


def _touch_private(path: Path) -> None:
    """Create the log file readable by its owner only (transcripts may appear at DEBUG)."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))


def setup_logging(logs_dir: Path, level: str | int = "INFO", *, redactor: Redactor | None = None,
                  console: bool = True, stream: IO[str] | None = None,
                  max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS) -> LogSetup:
    """Install the file (JSON lines, rotated) and terminal handlers on the root logger."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / LOG_FILE_NAME
    _touch_private(path)
    root = logging.getLogger()
    previous_level = getattr(root, "_hermes_previous_level", root.level)
    root._hermes_previous_level = previous_level  # type: ignore[attr-defined]
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
            handler.close()
    redacting = RedactingFilter(redactor or Redactor.from_environ())
    context = ContextFilter()

    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                        encoding="utf-8")
    file_handler.setFormatter(JsonFormatter())
    handlers: list[logging.Handler] = [file_handler]
    console_handler: logging.Handler | None = None
    if console:
        console_handler = logging.StreamHandler(stream or sys.stderr)
        console_handler.setFormatter(HumanFormatter())
        handlers.append(console_handler)
    for handler in handlers:
        handler.addFilter(context)
        handler.addFilter(redacting)
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    logging.captureWarnings(True)
    set_level(level)
    return LogSetup(path, file_handler, console_handler, previous_level)
