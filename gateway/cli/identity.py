"""Who the terminal user is, and which session and folder `hermes chat` uses.

The person at the terminal is user `local` on platform `cli`, written `cli:local`: that is the id
`hermes memory show --user cli:local` takes, and their USER.md lives at
`HERMES_HOME/memories/users/cli/local/USER.md`. `hermes whoami` prints both.

Sessions: interactive `hermes chat` starts a new session under the key `cli:local` (archiving the
previous one); `--continue` resumes the terminal's most recent session (interactive or one-shot);
`-q TEXT` runs in a new session named after the question (`cli: summarise README.md`). Every one
of them works in a folder the user chose (the current one by default), never in a folder under
the home, so nothing is left behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CLI_PLATFORM = "cli"
CLI_USER = "local"
CLI_USER_ID = f"{CLI_PLATFORM}:{CLI_USER}"
CLI_SESSION_KEY = CLI_USER_ID
NAME_CHARS = 60


def one_shot_key(question: str) -> str:
    """A readable session key for `chat -q`: `cli: ` and the question's start, on one line."""
    words = " ".join("".join(c if c.isprintable() else " " for c in question).split())
    if len(words) > NAME_CHARS:
        words = words[:NAME_CHARS - 1].rstrip() + "…"
    return f"{CLI_PLATFORM}: {words or 'question'}"


def user_md_path(home_root: Path) -> Path:
    """Where the terminal user's USER.md lives (it may not exist yet)."""
    from agent.memory import MemoryStore

    return MemoryStore(home_root).user_path(CLI_PLATFORM, CLI_USER)


class SessionNotFound(LookupError):
    """`--session ID` names no session."""


async def pick_session(runtime: Any, *, session_id: str | None, resume: bool, key: str) -> Any:
    """The session to talk in: `--session ID`, the last terminal session (`--continue`), or a new one."""
    store = runtime.store
    if session_id:
        session = await store.get_session(session_id)
        if session is None:
            raise SessionNotFound(f"no session with id {session_id!r} (`hermes chat --continue` resumes "
                                  "the last terminal session)")
        return session
    if resume:
        for session in await store.list_sessions(limit=500):
            if session.platform == CLI_PLATFORM and session.user_id == CLI_USER:
                return session
    return await store.new_session(key, platform=CLI_PLATFORM, user_id=CLI_USER)
