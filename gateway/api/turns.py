"""Turns for API requests: who is asking, which conversation, which model; the reply queue.

Without a session a request is its own conversation: a fresh session (key `api:once:<uuid>`)
seeded with the client's history, so two clients share nothing but the team's skills and
memory. With `X-Hermes-Session-Id: ID` the conversation is kept under `api:<token_id>:<ID>`,
owned by the API token that created it (`api_sessions`, migration 0010), and its turns hold the
session's claim in the cluster (gateway/turns.py): requests for one conversation that reach
different processes take turns, each on the conversation as the last one left it. `user` names the
person (their USER.md, approvals they may answer), never the conversation.

`ApiTurns.models()` is what `/v1/models` lists: `hermes` (the agent with its configured chain)
and every configured model and fallback; naming one runs the turn on it first.

A streaming client may ask for more than text (`X-Hermes-Events`, see `openai_compat`): with
`tools`, the reply also queues a `ToolStep` when a tool starts and when it ends, so the web chat
shows the steps as they happen, as the terminal does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agent.events import Event, TextDelta, ToolFinished, ToolStarted
from agent.llm import CallOptions
from agent.loop import TurnResult
from agent.redact import Redactor
from agent.settings import ModelConfig
from gateway.api.errors import ApiError
from gateway.api.request_models import ClientConversation
from gateway.commands import CommandContext
from gateway.dispatcher import Dispatcher, ShuttingDown
from gateway.metrics import Metrics
from gateway.routing import Router
from gateway.sessions import TurnInput
from gateway.turns import Release, TurnClaims

SESSION_HEADER = "X-Hermes-Session-Id"
TOKEN_ID = web.RequestKey("token_id", str)  # set by the server's auth middleware
AGENT_MODEL = "hermes"
# clients set up for the peer agent send "hermes-agent": the same agent, listed in /v1/models too
AGENT_ALIASES = (AGENT_MODEL, "hermes-agent")
EVENTS_HEADER = "X-Hermes-Events"
HOLD_WAIT_SECONDS = 120    # how long a request waits for a conversation whose turn runs on another process
TOOL_ARGUMENTS_SHOWN = 160  # as many characters as the terminal's `⚙ name(arguments)` line shows


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the API token (by its id) and the person (`user`, maybe '')."""

    token_id: str
    user: str


@dataclass(frozen=True)
class ToolStep:
    """A tool call as a chat user sees it: its name, its arguments (shortened, secrets masked), how it went."""

    call_id: str
    name: str
    arguments: str
    status: str                        # "running" | "ok" | "error"
    duration_ms: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"object": "hermes.tool", "id": self.call_id, "name": self.name, "arguments": self.arguments,
                "status": self.status, "duration_ms": self.duration_ms}


def shown_arguments(arguments: dict[str, Any] | str, redactor: Redactor) -> str:
    """A tool call's arguments as a chat shows them: JSON, secrets masked, at most TOOL_ARGUMENTS_SHOWN characters."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    text = redactor.redact(text)
    return text if len(text) <= TOOL_ARGUMENTS_SHOWN else text[:TOOL_ARGUMENTS_SHOWN - 1] + "…"


class ApiReply:
    """A turn's output collected for one HTTP response: ("delta" | "done" | "error", text, result), and
    ("tool", name, ToolStep) when the client asked for tool steps (`tools=True`)."""

    def __init__(self, *, tools: bool = False, redactor: Redactor | None = None) -> None:
        self.items: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
        self.tools = tools
        self.ended = asyncio.Event()      # the turn is over (answered, said something, or failed)
        self.redactor = redactor or Redactor.from_environ()

    def begin(self) -> None:
        return None

    async def on_event(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.items.put_nowait(("delta", event.text, None))
        elif self.tools and isinstance(event, ToolStarted):
            step = ToolStep(event.call_id, event.name, shown_arguments(event.arguments, self.redactor), "running")
            self.items.put_nowait(("tool", event.name, step))
        elif self.tools and isinstance(event, ToolFinished):
            step = ToolStep(event.call_id, event.name, shown_arguments(event.arguments, self.redactor),
                            "ok" if event.ok else "error", round(event.duration_ms, 1))
            self.items.put_nowait(("tool", event.name, step))

    async def finish(self, text: str, result: TurnResult | None = None) -> None:
        if result is not None and result.status == "interrupted":
            self.items.put_nowait(("done", ((text + "\n\n") if text else "") + "Stopped.", result))
        else:
            self.items.put_nowait(("done", text, result))
        self.ended.set()

    async def say(self, text: str) -> None:
        self.items.put_nowait(("done", text, None))
        self.ended.set()

    async def fail(self, text: str) -> None:
        self.items.put_nowait(("error", text, None))
        self.ended.set()

    async def final(self) -> tuple[str, TurnResult | None]:
        """The whole answer; ApiError(502) when the turn failed."""
        while True:
            kind, text, result = await self.items.get()
            if kind == "done":
                return text, result
            if kind == "error":
                raise ApiError(502, text, kind="upstream_error", code="model_error")


class ApiTurns:
    def __init__(self, dispatcher: Dispatcher, router: Router, metrics: Metrics,
                 turns: TurnClaims | None = None) -> None:
        self.dispatcher = dispatcher
        self.router = router
        self.metrics = metrics
        self.turns = turns
        self._holding: set[asyncio.Task[None]] = set()

    @property
    def model(self) -> ModelConfig:
        return self.dispatcher.runtime.config.model

    @property
    def store(self) -> Any:
        return self.dispatcher.runtime.store

    def models(self) -> list[str]:
        names = list(AGENT_ALIASES)
        for entry in self.model.chain():
            if entry.name and entry.name not in names:
                names.append(entry.name)
        return names

    @staticmethod
    def session_key(token_id: str, session_id: str) -> str:
        return f"api:{token_id}:{session_id}"

    async def claim(self, caller: Caller, session_id: str) -> None:
        """Record that the caller's token owns `session_id` (the key already includes the token)."""
        await self.store.api_session_claim(caller.token_id, session_id, user_id=caller.user, at=time.time())

    async def start(self, caller: Caller, conversation: ClientConversation, *, session_id: str | None,
                    model: str, params: dict[str, Any], stream: bool,
                    history: tuple[dict[str, Any], ...] = (), tools: bool = False) -> ApiReply:
        """Queue the turn; the answer arrives on the returned reply. `history` goes before the client's."""
        if session_id is not None:
            await self.claim(caller, session_id)
            key = self.session_key(caller.token_id, session_id)
            chat_id = f"{caller.token_id[:8]}:{session_id}"
        else:
            once = uuid.uuid4().hex
            key = f"api:once:{once}"
            chat_id = caller.user or f"once:{once}"
        ctx = CommandContext(session_key=key, platform="api", chat_id=chat_id, user_id=caller.user,
                             team=self.router.team_for("api", caller.user or chat_id))
        turn = TurnInput(history=history + conversation.history, instructions=conversation.instructions,
                         options=CallOptions(model="" if model in AGENT_ALIASES else model, params=params))
        reply = ApiReply(tools=tools and stream, redactor=self.store.redactor)
        self.metrics.messages_in.labels("api").inc()
        release = await self._hold(key) if session_id is not None else None
        try:
            await self.dispatcher.handle(ctx, conversation.content, reply, stream=None if stream else False,
                                         turn=turn)
        except ShuttingDown:
            if release is not None:
                await release()
            raise ApiError(503, "the gateway is shutting down; try again shortly", code="shutting_down") from None
        except BaseException:
            if release is not None:
                await release()
            raise
        if release is not None:
            task = asyncio.create_task(self._release_when_ended(reply, release), name=f"api-hold:{key}")
            self._holding.add(task)
            task.add_done_callback(self._holding.discard)
        return reply

    async def _hold(self, key: str) -> Release | None:
        """The session's claim in the cluster (gateway/turns.py) for this turn: one turn of a kept
        conversation at a time whichever process the requests reach, and never on a stale copy."""
        if self.turns is None:
            return None
        release = await self.turns.hold(key, wait=HOLD_WAIT_SECONDS)
        if release is None:
            raise ApiError(409, f"this conversation's turn has been running elsewhere for {HOLD_WAIT_SECONDS} s; "
                                "try again when it has answered", code="session_busy")
        return release

    @staticmethod
    async def _release_when_ended(reply: ApiReply, release: Release) -> None:
        try:
            await reply.ended.wait()
        finally:
            await asyncio.shield(release())
