"""The turn inbox: a received message is durable until its answer was delivered, across crashes.

`take` records a platform message before anything else happens to it, in one INSERT that also
records its dedup key (in one transaction), and only when that key is new: a message
is taken once, and is never lost between "seen" and "to be answered". The dispatcher calls `done`
when the turn's answer was delivered (or the message needed no turn: a command, a pairing code),
which deletes the row. A graceful shutdown leaves the rows of turns it had to interrupt and of
queued messages; a SIGKILL leaves the rows of every unfinished turn.

Each row is in its session's queue (`session_key`): the process holding the session's claim
(gateway/turns.py) answers its rows oldest first, whichever process took them, so a session's
messages (re-runs, those that were queued, those that arrived while a process was down) run one
turn at a time in arrival order across the cluster and across restarts. `begin` marks a turn as
started: it counts the attempt, so a message that kills the
gateway every time is given up after `MAX_ATTEMPTS` instead of looping (a message that only
waited in a queue is not counted), and a re-run's context is rewound to where its interrupted
run began (the conversation up to its own message, nothing the interrupted run added). A redelivery by the
platform is a duplicate for the dedup table and is dropped, so nothing is answered twice; the
reply's idempotency keys are the same as the first run's, so a partial answer the first run
posted is edited into the new answer rather than posted again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from adapters.base import Attachment, InboundMessage
from gateway.store import StateStore

MAX_ATTEMPTS = 3
# said whatever cut the run: a restart, a process of the cluster that died, the database going away
INTERRUPTED_NOTICE = "⚠️ My previous run was interrupted before I could answer your message, so I'm answering it now."
GAVE_UP_NOTICE = ("⚠️ I could not answer your message: my run was interrupted {n} times while working on "
                  "it. Please send it again if you still need an answer.")


@dataclass(frozen=True)
class Pending:
    id: int
    message: InboundMessage
    attempts: int


def _encode(message: InboundMessage) -> str:
    data = asdict(message)
    data["attachments"] = [{**a, "data": None} for a in data["attachments"]]   # files are not kept
    return json.dumps(data)  # ASCII escapes: a lone surrogate in a message is stored, not an encoding error


def _decode(text: str) -> InboundMessage:
    data: dict[str, Any] = json.loads(text)
    data["attachments"] = tuple(Attachment(**a) for a in data.get("attachments") or ())
    return InboundMessage(**data)


class Inbox:
    """Received messages whose turn has not finished (table turn_inbox)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def take(self, message: InboundMessage, dedup: str, session_key: str | None = None) -> int | None:
        """Record `message` in `session_key`'s queue unless its dedup key was seen before; its row
        id, or None for a duplicate."""
        key = "" if not dedup or dedup.endswith(":") else dedup   # nothing to deduplicate on
        return await self.store.inbox_take(message.platform, key, _encode(message), session_key)

    async def done(self, inbox_id: int) -> None:
        """The message was answered (or needed no answer): forget it."""
        await self.store.inbox_done(inbox_id)

    async def pending(self) -> list[Pending]:
        return [self.decode(r) for r in await self.store.inbox_rows()]

    @staticmethod
    def decode(row: Any) -> Pending:
        """A stored row (id, message, attempts) as the message it holds."""
        return Pending(int(row.id), _decode(row.message), int(row.attempts))

    async def route_unrouted(self, session_of: Callable[[InboundMessage], str]) -> int:
        """Put rows taken before their session was recorded (a home older than revision 0009) into
        their session's queue; how many."""
        rows = await self.store.inbox_unrouted()
        for row in rows:
            await self.store.inbox_route(int(row.id), session_of(_decode(row.message)))
        return len(rows)

    async def begin(self, inbox_id: int, session_id: str) -> bool:
        """The message's turn starts in `session_id`; True when an interrupted run was rewound."""
        return await self.store.inbox_begin(inbox_id, session_id)
