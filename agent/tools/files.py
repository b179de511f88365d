"""`read_file`, `write_file`, `list_files`: file access confined to the session's workspace.

Reads are bounded: one call returns at most `[tools] max_read_chars` characters and streams the
file in chunks (a 1 GB file never sits in memory); a binary file is described (size and kind),
not dumped. `list_files` shows a symlink as a link (and says when it points outside the
workspace) without following it, and stops after MAX_LIST_ENTRIES entries.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from pathlib import Path

from agent.tools.registry import Tool, ToolContext, ToolError, tool
from agent.workspace import PathEscapeError

MAX_LIST_ENTRIES = 500
DEFAULT_MAX_READ_CHARS = 200_000
CHUNK_CHARS = 1 << 20
SNIFF_BYTES = 8192
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "PNG image"), (b"\xff\xd8\xff", "JPEG image"), (b"GIF8", "GIF image"), (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "ZIP archive (or docx/xlsx/jar)"), (b"\x1f\x8b", "gzip data"), (b"\x7fELF", "ELF executable"),
    (b"SQLite format 3\x00", "SQLite database"), (b"BZh", "bzip2 data"), (b"\xfd7zXZ", "xz data"),
    (b"RIFF", "RIFF media (WAV/AVI/WebP)"), (b"\x00asm", "WebAssembly module"), (b"7z\xbc\xaf", "7-Zip archive"),
)


def _resolve(ctx: ToolContext, path: str) -> Path:
    try:
        return ctx.workspace.resolve(path)
    except PathEscapeError as exc:
        raise ToolError(f"{exc}. Only files inside the workspace can be used.") from exc


def binary_kind(head: bytes, name: str) -> str | None:
    """What a file is when its first bytes are not text, else None."""
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if not head:
        return None
    if b"\x00" in head:
        return mimetypes.guess_type(name)[0] or "binary data"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:      # not just a character cut at the sniff boundary
            controls = sum(1 for b in head if b < 9 or 13 < b < 32)
            bad = len(head) - len(head.decode("utf-8", errors="ignore").encode("utf-8"))
            if bad + controls > len(head) // 10:
                return mimetypes.guess_type(name)[0] or "binary data"
    return None


def make_read_file(max_read_chars: int = DEFAULT_MAX_READ_CHARS) -> Tool:
    """read_file bound to its cap."""

    @tool(name="read_file")
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
        if offset < 0 or max_chars < 1:
            raise ToolError("offset must be 0 or more and max_chars 1 or more")
        limit = min(max_chars, max_read_chars)

        def read() -> tuple[str, bool, str | None, int]:
            size = target.stat().st_size
            with target.open("rb") as raw:
                kind = binary_kind(raw.read(SNIFF_BYTES), target.name)
            if kind is not None:
                return "", False, kind, size
            with target.open("r", encoding="utf-8", errors="replace", newline="") as handle:
                skipped = 0
                while skipped < offset:                 # skip in bounded chunks: memory stays flat
                    step = handle.read(min(CHUNK_CHARS, offset - skipped))
                    if not step:
                        break
                    skipped += len(step)
                text = handle.read(limit)
                more = bool(handle.read(1))
            return text, more, None, size

        text, more, kind, size = await asyncio.to_thread(read)
        if kind is not None:
            return (f"{path}: a binary file ({kind}, {size} bytes), not shown as text. read_file reads text "
                    "files only.")
        if more:
            capped = " (the most one call returns: [tools] max_read_chars)" if limit < max_chars else ""
            text += (f"\n[... truncated after {limit} characters{capped}; call again with "
                     f"offset={offset + len(text)} to read more]")
        return text

    return read_file


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
            with target.open("a", encoding="utf-8", errors="replace") as handle:
                handle.write(content)
            return
        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        temporary.write_text(content, encoding="utf-8", errors="replace")
        os.replace(temporary, target)

    await asyncio.to_thread(write)
    return f"wrote {len(content)} characters to {ctx.workspace.relative(target)}"


def _describe(entry: os.DirEntry[str], rel: str, root: Path) -> str:
    if entry.is_symlink():
        link = os.readlink(entry.path)
        resolved = Path(entry.path).resolve()
        if resolved != root and root not in resolved.parents:
            return f"{rel} -> {link} (symlink pointing outside the workspace; not followed)"
        return f"{rel} -> {link} (symlink)"
    if entry.is_dir(follow_symlinks=False):
        return rel + "/"
    try:
        return f"{rel} ({entry.stat(follow_symlinks=False).st_size} bytes)"
    except OSError:
        return rel


def _sorted_entries(folder: Path, lines: list[str], root: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as scan:
            return sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        lines.append(f"{os.path.relpath(folder, root)}/ (not readable: {exc.strerror})")
        return []


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
    root = ctx.workspace.root.resolve()

    def listing() -> list[str]:
        lines: list[str] = []
        more = 0
        stack = [iter(_sorted_entries(target, lines, root))]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            if len(lines) >= MAX_LIST_ENTRIES:
                more += 1
                if more > 10 * MAX_LIST_ENTRIES:
                    break
                continue
            lines.append(_describe(entry, os.path.relpath(entry.path, root), root))
            if recursive and entry.is_dir(follow_symlinks=False):
                stack.append(iter(_sorted_entries(Path(entry.path), lines, root)))
        if more:
            lines.append(f"[... {more}{'+' if stack else ''} more entries]")
        return lines

    lines = await asyncio.to_thread(listing)
    return "\n".join(lines) if lines else "(empty)"


read_file = make_read_file()
FILE_TOOLS = [read_file, write_file, list_files]


def file_tools(max_read_chars: int = DEFAULT_MAX_READ_CHARS) -> list[Tool]:
    """The file tools with read_file bound to `[tools] max_read_chars`."""
    return [make_read_file(max_read_chars), write_file, list_files]
