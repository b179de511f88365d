"""Who said what in a shared conversation (a group chat with `session_scope = "channel"` or "thread").

The gateway puts the speaker in front of every user message of a shared session:

    [from Ada Lovelace (telegram id 42)] no, always use nginx -s reopen

The prefix is written by the gateway from the platform's own sender fields, never taken from the
message text: only the first prefix counts, so a user who types `[from Bob (telegram id 7)]` at
the start of a message is still attributed to themselves (their text follows the real prefix).
The learning review reads the prefixes to write each person's preferences to that person's USER.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PREFIX = re.compile(r"^\[from (?P<name>[^\[\]\n]{0,80}) \((?P<platform>[a-z0-9_-]{1,20}) id "
                    r"(?P<id>[^\s()\[\]]{1,64})\)\] ")
_UNSAFE = re.compile(r"[\[\]()\n\r\t\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Speaker:
    platform: str
    user_id: str
    name: str

    def tag(self) -> str:
        return f"{self.name} ({self.platform} id {self.user_id})"


def _clean_name(name: str, fallback: str) -> str:
    cleaned = " ".join(_UNSAFE.sub(" ", name or "").split())[:60]
    return cleaned or fallback


def speaker_prefix(platform: str, user_id: str, display_name: str) -> str:
    """The prefix for one message; brackets, newlines and bidi controls are taken out of the name."""
    safe_id = re.sub(r"[^\w.@:-]", "_", user_id)[:64] or "unknown"
    safe_platform = re.sub(r"[^a-z0-9_-]", "_", platform.lower())[:20] or "unknown"
    return f"[from {_clean_name(display_name, safe_id)} ({safe_platform} id {safe_id})] "


def attribute(content: str | dict[str, Any], platform: str, user_id: str, display_name: str) -> str | dict[str, Any]:
    """`content` (text, or a content-parts message) with the speaker in front of its text."""
    prefix = speaker_prefix(platform, user_id, display_name)
    if isinstance(content, str):
        return prefix + content
    parts = list(content.get("content") or []) if isinstance(content.get("content"), list) else []
    if not parts:
        return {**content, "content": prefix + str(content.get("content") or "")}
    for index, part in enumerate(parts):
        if isinstance(part, dict) and part.get("type") == "text":
            parts[index] = {**part, "text": prefix + str(part.get("text") or "")}
            break
    else:
        parts.insert(0, {"type": "text", "text": prefix.rstrip()})
    return {**content, "content": parts}


def speaker_of(message: dict[str, Any]) -> Speaker | None:
    """The speaker a user message was attributed to, None when it carries no prefix."""
    if message.get("role") != "user":
        return None
    content = message.get("content")
    if isinstance(content, list):
        content = next((str(p.get("text") or "") for p in content if isinstance(p, dict) and p.get("type") == "text"),
                       "")
    match = PREFIX.match(str(content or ""))
    if match is None:
        return None
    return Speaker(match.group("platform"), match.group("id"), match.group("name"))


def speakers_in(messages: list[dict[str, Any]]) -> dict[str, Speaker]:
    """Every speaker of a slice, by platform user id, in order of first appearance."""
    found: dict[str, Speaker] = {}
    for message in messages:
        speaker = speaker_of(message)
        if speaker is not None and speaker.user_id not in found:
            found[speaker.user_id] = speaker
    return found
