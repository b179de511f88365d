"""Joining untrusted names onto a root directory without ever leaving it."""

from __future__ import annotations

import os
from pathlib import Path


class PathEscapeError(ValueError):
    """A name or path would resolve outside the root it must stay in."""


def safe_join(root: Path, *parts: str) -> Path:
    """`root / parts...`, resolved, refused when the result is not inside `root`.

    Absolute parts, `..` that climbs out, and symlinks that point outside are all refused.
    The target need not exist.
    """
    base = root.resolve()
    for part in parts:
        if part is None or str(part) == "":
            raise PathEscapeError("empty path component")
        if "\x00" in str(part):
            raise PathEscapeError(f"{part!r}: NUL byte in path")
        if os.path.isabs(str(part)) or str(part).startswith("~"):
            raise PathEscapeError(f"{part!r}: absolute paths are not allowed here; use a path relative to {base}")
    candidate = base.joinpath(*[str(p) for p in parts]).resolve()
    if candidate != base and base not in candidate.parents:
        raise PathEscapeError(f"{'/'.join(str(p) for p in parts)!r} resolves outside {base}")
    return candidate
