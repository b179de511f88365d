"""`read_file`, `write_file`, `list_files`: file access confined to the session's workspace."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from agent.tools.registry import ToolContext, ToolError, tool
from agent.workspace import PathEscapeError

MAX_LIST_ENTRIES = 500


def _resolve(ctx: ToolContext, path: str) -> Path:
    try:
        return ctx.workspace.resolve(path)
    except PathEscapeError as exc:
        raise ToolError(f"{exc}. Only files inside the workspace can be used.") from exc


@tool
async def read_file(ctx: ToolContext, path: str, offset: int = 0, max_chars: int = 20_000) -> str:
    """Read a text file from the workspace.

    Args:
        path: file path relative to the workspace.
        offset: character offset to start reading at.
        max_chars: read at most this many characters.
    """
    target = _resolve(ctx, path)
    if not target.is_file():
        raise ToolError(f"{path}: no such file in the workspace")

    def read() -> str:
        with target.open("r", encoding="utf-8", errors="replace") as handle:
            handle.seek(0)
            text = handle.read(offset + max_chars + 1)
        return text

    text = await asyncio.to_thread(read)
    chunk = text[offset:offset + max_chars]
    if len(text) > offset + max_chars:
        chunk += f"\n[... truncated; call again with offset={offset + max_chars} to read more]"
    return chunk


@tool
async def write_file(ctx: ToolContext, path: str, content: str, append: bool = False) -> str:
    """Write a text file in the workspace, creating folders as needed.

    Args:
        path: file path relative to the workspace.
        content: the text to write.
        append: add to the end of the file instead of replacing it.
    """
    target = _resolve(ctx, path)

    def write() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if append:
            with target.open("a", encoding="utf-8") as handle:
                handle.write(content)
            return
        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        temporary.write_text(content, encoding="utf-8")
        os.replace(temporary, target)

    await asyncio.to_thread(write)
    return f"wrote {len(content)} characters to {ctx.workspace.relative(target)}"


@tool
async def list_files(ctx: ToolContext, path: str = ".", recursive: bool = False) -> str:
    """List files and folders in the workspace.

    Args:
        path: folder relative to the workspace.
        recursive: include everything below the folder.
    """
    target = _resolve(ctx, path)
    if not target.is_dir():
        raise ToolError(f"{path}: no such folder in the workspace")

    def listing() -> list[str]:
        entries = sorted(target.rglob("*") if recursive else target.iterdir())
        lines = []
        for entry in entries[:MAX_LIST_ENTRIES]:
            rel = ctx.workspace.relative(entry)
            lines.append(rel + "/" if entry.is_dir() else f"{rel} ({entry.stat().st_size} bytes)")
        if len(entries) > MAX_LIST_ENTRIES:
            lines.append(f"[... {len(entries) - MAX_LIST_ENTRIES} more entries]")
        return lines

    lines = await asyncio.to_thread(listing)
    return "\n".join(lines) if lines else "(empty)"


FILE_TOOLS = [read_file, write_file, list_files]
