"""Running `hermes` as a separate process the way a user's shell does, with the test's home."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


async def hermes(*args: str, home: Path, timeout: float = 120,
                 env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `hermes ARGS` with HERMES_HOME=home and no terminal input."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env={**os.environ, "HERMES_HOME": str(home), **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode or 0, out.decode(), err.decode()
