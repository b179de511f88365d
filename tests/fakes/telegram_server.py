"""A fake Telegram Bot API on 127.0.0.1 that python-telegram-bot talks to over a real socket.

Point the bot at it with `base_url=server.base_url`, `base_file_url=server.base_file_url`
(`[telegram] api_base = server.api_base` through the config). It answers the methods a gateway
uses (getMe, getWebhookInfo, deleteWebhook, setWebhook, getUpdates with real long polling and
`offset` semantics, sendMessage, editMessageText, sendChatAction, setMyCommands,
answerCallbackQuery, getFile) and serves files under `/file/bot<TOKEN>/<path>`.

Helper API for tests:
- `queue_message(chat_id, user_id, text, ...) -> update_id`, `queue_callback(...)`: inbound.
- `sent(chat_id)`: what the bot posted to that chat (dicts with `message_id`, `text`,
  `parse_mode`, `reply_markup`, ...; edits update them in place), `wait_sent(chat_id, n)`.
- `fail_next(n, status=429, retry_after=1, method=None)`: the next n calls (of `method`, or any
  except getUpdates) answer an error; `reject_entities_next(n)`: "can't parse entities".
- `drop_next_polls(n)`: close the connection of the next n getUpdates (a dropped network).
- `stall_next(n, method, seconds)`: the next n calls of `method` are carried out (a sendMessage
  is posted) but answered only after `seconds`, past the client's read timeout;
  `drop_next(n, method)`: carried out, then the connection is closed without an answer.
- `start(port=...)`: listen on a given port (to come back where a client already points).
- `conflict_polls(n)`: answer 409 Conflict to the next n getUpdates (another poller).
- `add_file(data, path) -> file_id`: a downloadable file for photos/documents.
- `overlaps`: getUpdates that arrived while another one was still open (two pollers on one
  token, which Telegram refuses); with `conflict_on_overlap = True` they are answered 409 as
  Telegram does. `pollers`: the client addresses (host, port) getUpdates came from, in order.
- `observers`: callables `(method, params, phase)` run for every call, with phase "before" (the
  call arrived, nothing carried out yet) and "after" (carried out, not yet answered): a test
  can SIGKILL the bot's process at a precise point of a call. An observer that returns True
  at "before" drops the call: its connection is closed and nothing is carried out.
- `unconfirmed()`: update ids Telegram still holds (no getUpdates has confirmed them with a
  higher offset), i.e. what it would deliver to the next poller; `delivered[update_id]` counts
  how often each was returned by getUpdates; `redeliver(update_id)`: hand an update out again
  as if its confirmation had never arrived (a confirming getUpdates lost on the network).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.late_answers import LateAnswers
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.waiting import wait_for_sent

BOT_ID = 7000001
BOT_USERNAME = "hermes_test_bot"


@dataclass
class Failure:
    status: int
    retry_after: float | None
    description: str
    method: str | None


@dataclass
class FakeTelegramServer:
    token: str = "123456:TEST-token"
    updates: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=lambda: {"url": ""})
    chat_actions: list[dict[str, Any]] = field(default_factory=list)
    answered_callbacks: list[str] = field(default_factory=list)
    delivered: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    confirmed_below: int = 0        # the highest offset a getUpdates has sent
    observers: list[Any] = field(default_factory=list)   # (method, params, "before" | "after") -> bool | None
    overlaps: int = 0               # getUpdates that came while another was open
    conflict_on_overlap: bool = False
    pollers: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._history: dict[int, dict[str, Any]] = {}
        self._message_ids = itertools.count(100)
        self._new_update = asyncio.Condition()
        self._failures: list[Failure] = []
        self._drop_polls = 0
        self._late = LateAnswers()
        self._conflicts = 0
        self._reject_entities = 0
        self._files: dict[str, tuple[str, bytes]] = {}
        self._runner: web.AppRunner | None = None
        self._sent_event = asyncio.Event()
        self._closing = False
        self._open_polls: dict[int, web.Request] = {}
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """What `[telegram] api_base` should say: the server root (the adapter appends /bot)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.api_base}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.api_base}/file/bot"

    async def start(self, port: int = 0) -> FakeTelegramServer:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        if port:
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", port).start()
            self.port = port
        else:
            self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        self._closing = True
        self._late.stop()
        async with self._new_update:
            self._new_update.notify_all()
        if self._runner:
            await self._runner.cleanup()

    # --- helper API --------------------------------------------------------------------------

    def _queue(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = 5000 + next(self._ids)
        self.updates.append({"update_id": update_id, kind: payload})
        self._history[update_id] = self.updates[-1]
        asyncio.get_running_loop().create_task(self._notify())
        return update_id

    async def _notify(self) -> None:
        async with self._new_update:
            self._new_update.notify_all()

    def queue_message(self, chat_id: int, user_id: int, text: str = "", *, chat_type: str = "private",
                      first_name: str = "Ada", last_name: str = "", username: str = "ada",
                      thread_id: int | None = None, reply_to_bot_message: int | None = None,
                      entities: list[dict[str, Any]] | None = None, caption: bool = False,
                      photo_file_id: str | None = None, document: dict[str, Any] | None = None,
                      message_id: int | None = None) -> int:
        """Queue an inbound message as Telegram would deliver it; returns the update_id.

        `@hermes_test_bot` in `text` becomes a mention entity automatically.
        """
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = f"group {chat_id}"
        if thread_id is not None:
            chat["is_forum"] = True
        message: dict[str, Any] = {
            "message_id": message_id or next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": first_name, "last_name": last_name,
                     "username": username},
        }
        ents = list(entities or [])
        mention = f"@{BOT_USERNAME}"
        if mention in text and not entities:
            ents.append({"type": "mention", "offset": _utf16_len(text[:text.index(mention)]),
                         "length": _utf16_len(mention)})
        if caption:
            message["caption"] = text
            if ents:
                message["caption_entities"] = ents
        elif text:
            message["text"] = text
            if ents:
                message["entities"] = ents
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to_bot_message is not None:
            message["reply_to_message"] = {
                "message_id": reply_to_bot_message, "date": int(time.time()), "chat": chat,
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Hermes", "username": BOT_USERNAME},
                "text": "earlier answer",
            }
        if photo_file_id:
            size = len(self._files[photo_file_id][1])
            message["photo"] = [
                {"file_id": photo_file_id + "-small", "file_unique_id": "s", "width": 90, "height": 90,
                 "file_size": 10},
                {"file_id": photo_file_id, "file_unique_id": "u" + photo_file_id, "width": 800, "height": 600,
                 "file_size": size},
            ]
        if document:
            message["document"] = document
        return self._queue("message", message)

    def queue_callback(self, chat_id: int, user_id: int, data: str, *, message_id: int) -> int:
        """Queue a button press on a message the bot sent."""
        message = {"message_id": message_id, "date": int(time.time()),
                   "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
                   "from": {"id": BOT_ID, "is_bot": True, "first_name": "Hermes"}, "text": "question"}
        query = {"id": f"cb{next(self._ids)}", "chat_instance": "ci",
                 "from": {"id": user_id, "is_bot": False, "first_name": "Ada"},
                 "message": message, "data": data}
        return self._queue("callback_query", query)

    def add_file(self, data: bytes, path: str = "photos/file_1.jpg") -> str:
        file_id = f"file{next(self._ids)}"
        self._files[file_id] = (path, data)
        return file_id

    def sent(self, chat_id: int | str) -> list[dict[str, Any]]:
        return self.messages[str(chat_id)]

    def redeliver(self, update_id: int) -> None:
        """Hold `update_id` (and everything after it) unconfirmed again, so the next poll gets it."""
        if all(u["update_id"] != update_id for u in self.updates):
            self.updates.append(self._history[update_id])
            self.updates.sort(key=lambda u: u["update_id"])
        self.confirmed_below = min(self.confirmed_below, update_id)
        asyncio.get_running_loop().create_task(self._notify())

    def unconfirmed(self) -> list[int]:
        """Update ids not yet confirmed: the next getUpdates (any process) receives them."""
        return [u["update_id"] for u in self.updates if u["update_id"] >= self.confirmed_below]

    async def wait_sent(self, chat_id: int | str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        return await wait_for_sent(lambda: self.sent(chat_id), self._sent_event, count, timeout, f"chat {chat_id}")

    def fail_next(self, n: int = 1, *, status: int = 429, retry_after: float | None = 1,
                  method: str | None = None, description: str = "") -> None:
        """The next n calls (of `method`, or of any method but getUpdates) fail with `status`."""
        text = description or ("Too Many Requests: retry after %s" % retry_after if status == 429
                               else f"Error {status}")
        self._failures.extend(Failure(status, retry_after if status == 429 else None, text, method)
                              for _ in range(n))

    def reject_entities_next(self, n: int = 1) -> None:
        """The next n formatted sends fail the way Telegram rejects malformed markup."""
        self._reject_entities += n

    def stall_next(self, n: int = 1, *, method: str = "sendMessage", seconds: float = 5.0) -> None:
        """Carry out the next n `method` calls but answer each only after `seconds` (or at stop)."""
        self._late.stall(method, n, seconds)

    def drop_next(self, n: int = 1, *, method: str = "sendMessage") -> None:
        """Carry out the next n `method` calls, then close the connection without an answer."""
        self._late.drop(method, n)

    def drop_next_polls(self, n: int = 1) -> None:
        self._drop_polls += n

    def conflict_polls(self, n: int = 1) -> None:
        self._conflicts += n

    # --- HTTP --------------------------------------------------------------------------------

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str, retry_after: float | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return await request.json()
        if request.method == "GET":
            return dict(request.query)
        data = await request.post()
        return {k: v for k, v in data.items() if isinstance(v, str)}

    def _take_failure(self, method: str) -> Failure | None:
        for i, failure in enumerate(self._failures):
            if failure.method == method or (failure.method is None and method != "getUpdates"):
                return self._failures.pop(i)
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        failure = self._take_failure(method)
        if failure:
            return self._error(failure.status, failure.description, failure.retry_after)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(404, f"Not Found: method {method}")
        if [True for observer in self.observers if observer(method, params, "before")]:
            assert request.transport is not None
            request.transport.close()           # the caller died first: never carried out
            return web.Response()
        response = await handler(request, params)
        for observer in self.observers:
            observer(method, params, "after")
        await self._late.after(method, request)
        return response

    async def _m_getMe(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        return self._ok({"id": BOT_ID, "is_bot": True, "first_name": "Hermes", "username": BOT_USERNAME,
                         "can_join_groups": True, "can_read_all_group_messages": False,
                         "supports_inline_queries": False})

    async def _m_getWebhookInfo(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        return self._ok({"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                         "pending_update_count": 0})

    async def _m_deleteWebhook(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        self.webhook = {"url": ""}
        return self._ok(True)

    async def _m_setWebhook(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        self.webhook = dict(p)
        return self._ok(True)

    async def _m_getUpdates(self, request: web.Request, p: dict[str, Any]) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.pollers.append(tuple(peer[:2]) if peer else ("?", 0))
        # a poll whose client went away (cancelled, killed) no longer counts as open
        self._open_polls = {k: r for k, r in self._open_polls.items()
                            if r.transport is not None and not r.transport.is_closing()}
        if self._open_polls:
            self.overlaps += 1
            if self.conflict_on_overlap:
                return self._error(409, "Conflict: terminated by other getUpdates request; "
                                        "make sure that only one bot instance is running")
        self._open_polls[id(request)] = request
        try:
            return await self._get_updates(request, p)
        finally:
            self._open_polls.pop(id(request), None)

    async def _get_updates(self, request: web.Request, p: dict[str, Any]) -> web.StreamResponse:
        if self._conflicts:
            self._conflicts -= 1
            return self._error(409, "Conflict: terminated by other getUpdates request; "
                                    "make sure that only one bot instance is running")
        if self._drop_polls:
            self._drop_polls -= 1
            assert request.transport is not None
            request.transport.close()       # the connection dies mid-request
            return web.Response()
        offset = int(p.get("offset") or 0)
        timeout = float(p.get("timeout") or 0)
        # Updates below the offset are confirmed: Telegram forgets them.
        self.confirmed_below = max(self.confirmed_below, offset)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        async with self._new_update:
            while not self.updates and not self._closing and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self._new_update.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        batch = self.updates[: int(p.get("limit") or 100)]
        for update in batch:
            self.delivered[update["update_id"]] += 1
        return self._ok(batch)

    def _record(self, chat_id: str, entry: dict[str, Any]) -> None:
        self.messages[chat_id].append(entry)
        self._sent_event.set()

    async def _m_sendMessage(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        if p.get("parse_mode") and self._reject_entities:
            self._reject_entities -= 1
            return self._error(400, "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0")
        chat_id = str(p["chat_id"])
        entry = {
            "message_id": next(self._message_ids),
            "text": p.get("text", ""),
            "parse_mode": p.get("parse_mode"),
            "message_thread_id": p.get("message_thread_id"),
            "reply_markup": _maybe_json(p.get("reply_markup")),
            "reply_parameters": _maybe_json(p.get("reply_parameters")),
            "edits": [],
            "posted_at": time.monotonic(),     # when it reached the platform (this process's clock)
        }
        self._record(chat_id, entry)
        return self._ok({"message_id": entry["message_id"], "date": int(time.time()),
                         "chat": {"id": int(chat_id), "type": "private"}, "text": entry["text"],
                         "from": {"id": BOT_ID, "is_bot": True, "first_name": "Hermes"}})

    async def _m_editMessageText(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        if p.get("parse_mode") and self._reject_entities:
            self._reject_entities -= 1
            return self._error(400, "Bad Request: can't parse entities: Can't find end tag")
        chat_id = str(p["chat_id"])
        for entry in self.messages[chat_id]:
            if str(entry["message_id"]) == str(p["message_id"]):
                if entry["text"] == p.get("text"):
                    return self._error(400, "Bad Request: message is not modified: specified new message "
                                            "content and reply markup are exactly the same")
                entry["edits"].append(entry["text"])
                entry["text"] = p.get("text", "")
                entry["parse_mode"] = p.get("parse_mode")
                return self._ok({"message_id": entry["message_id"], "date": int(time.time()),
                                 "chat": {"id": int(chat_id), "type": "private"}, "text": entry["text"]})
        return self._error(400, "Bad Request: message to edit not found")

    async def _m_sendChatAction(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        self.chat_actions.append(p)
        return self._ok(True)

    async def _m_setMyCommands(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        self.commands = _maybe_json(p.get("commands")) or []
        return self._ok(True)

    async def _m_answerCallbackQuery(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        self.answered_callbacks.append(str(p.get("callback_query_id")))
        return self._ok(True)

    async def _m_getFile(self, request: web.Request, p: dict[str, Any]) -> web.Response:
        file_id = str(p["file_id"])
        if file_id not in self._files:
            return self._error(400, "Bad Request: invalid file_id")
        path, data = self._files[file_id]
        return self._ok({"file_id": file_id, "file_unique_id": "u" + file_id, "file_size": len(data),
                         "file_path": path})

    async def _file(self, request: web.Request) -> web.Response:
        for path, data in self._files.values():
            if path == request.match_info["path"]:
                return web.Response(body=data)
        return web.Response(status=404)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
