"""Text that can always be encoded: lone UTF-16 surrogates (`\\ud800`) become U+FFFD.

A lone surrogate is legal in a Python str (JSON `"\\ud800"` decodes to one) but cannot be encoded
as UTF-8, so one in a user message, a tool result or a model reply would fail the store, the
logs or a platform send. The agent loop repairs every message it adds, recursively.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def repair_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (a valid pair cannot occur in a Python str)."""
    return _SURROGATE.sub(REPLACEMENT, text) if _SURROGATE.search(text) else text


def repair(value: Any) -> Any:
    """`value` (str, or dicts and lists of them) with lone surrogates repaired; other values unchanged."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, dict):
        return {repair(k): repair(v) for k, v in value.items()}
    if isinstance(value, list):
        return [repair(v) for v in value]
    return value
