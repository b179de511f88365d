"""Running the `git` CLI for taps (asyncio subprocess; never a shell, never a prompt)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from skills.hub.errors import HubError

GIT_TIMEOUT = 120.0


async def git(*args: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT) -> str:
    """Run `git args...`; stdout on success, HubError with git's message otherwise."""
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GIT_ALLOW_PROTOCOL": "file:https:ssh:git:http",
                "LC_ALL": "C"})
    try:
        process = await asyncio.create_subprocess_exec(
            "git", "-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=always", *args,
            cwd=str(cwd) if cwd else None, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError as exc:
        raise HubError("the `git` program is not installed; taps backed by git need it") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise HubError(f"git {args[0]} timed out after {timeout:g}s") from exc
    if process.returncode != 0:
        message = err.decode("utf-8", "replace").strip().splitlines()
        tail = "; ".join(message[-3:]) if message else f"exit status {process.returncode}"
        raise HubError(f"git {args[0]} failed: {tail}")
    return out.decode("utf-8", "replace")


async def clone(url: str, target: Path, ref: str = "") -> str:
    """Clone `url` into `target` and check out `ref` (branch, tag or commit; default HEAD); the commit."""
    await git("clone", "--quiet", "--no-checkout", "--", url, str(target))
    if ref:
        try:
            await git("checkout", "--quiet", "--detach", ref, "--", cwd=target)
        except HubError:
            await git("checkout", "--quiet", "--detach", f"origin/{ref}", cwd=target)
    else:
        await git("checkout", "--quiet", cwd=target)
    return (await git("rev-parse", "HEAD", cwd=target)).strip()
