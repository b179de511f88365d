"""Attachments of an inbound message, turned into what the model sees.

Images become OpenAI `image_url` content parts (a `data:` URL from the downloaded bytes, or the
platform's https URL), so vision-capable models see them. Documents (and audio/video) are saved
into the session's workspace under `uploads/` and named to the agent, so its file tools can
open them. File names come from users: they are reduced to a safe base name and joined with
`safe_join`, so nothing lands outside the workspace.
"""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path
from typing import Any

from adapters.base import Attachment, InboundMessage
from agent.workspace import Workspace
from skills.paths import safe_join

MAX_IMAGE_BYTES = 20 * 1024 * 1024
UPLOADS = "uploads"


def _safe_name(filename: str, fallback: str) -> str:
    base = Path(filename.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._\- ]", "_", base).strip(" .")
    return base[:120] or fallback


def _unique(folder: Path, name: str) -> Path:
    target = safe_join(folder, name)
    stem, suffix = Path(name).stem, Path(name).suffix
    counter = 1
    while target.exists():
        counter += 1
        target = safe_join(folder, f"{stem}-{counter}{suffix}")
    return target


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def image_part(attachment: Attachment) -> dict[str, Any] | None:
    if attachment.data is not None and len(attachment.data) <= MAX_IMAGE_BYTES:
        mime = attachment.mime_type if attachment.mime_type.startswith("image/") else "image/png"
        encoded = base64.b64encode(attachment.data).decode("ascii")
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{encoded}"}}
    if attachment.url.startswith("https://"):
        return {"type": "image_url", "image_url": {"url": attachment.url}}
    return None


async def user_content(message: InboundMessage, workspace: Workspace) -> str | dict[str, Any]:
    """The user message for the agent: plain text, or a content-parts message with images."""
    if not message.attachments:
        return message.text
    notes: list[str] = []
    images: list[dict[str, Any]] = []
    for index, attachment in enumerate(message.attachments, start=1):
        if attachment.kind == "image":
            part = image_part(attachment)
            if part is not None:
                images.append(part)
                continue
        if attachment.data is None:
            notes.append(f"- {attachment.filename or 'a file'} (could not be downloaded)")
            continue
        folder = safe_join(workspace.root, UPLOADS)
        target = _unique(folder, _safe_name(attachment.filename, f"attachment-{index}"))
        await asyncio.to_thread(_write, target, attachment.data)
        notes.append(f"- {workspace.relative(target)} ({attachment.mime_type}, {len(attachment.data)} bytes)")
    text = message.text
    if notes:
        text = (text + "\n\n" if text else "") + "[The user attached files, saved in your workspace:\n" + \
            "\n".join(notes) + "]"
    if not images:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text or "(image)"}]
    return {"role": "user", "content": parts + images}
