"""A fake Slack (Web API, Socket Mode websocket, private file downloads) on 127.0.0.1.

Point slack_sdk at it with `AsyncWebClient(base_url=server.api_base)` (`[slack] api_base`).
Web API: auth.test, chat.postMessage, chat.update, users.info, conversations.replies,
apps.connections.open (answers a `ws://127.0.0.1` Socket Mode URL served here). Tokens are
checked (`xoxb-...` for the bot, `xapp-...` for apps.connections.open).

Helper API for tests:
- `message_event(channel, user, text, ...)` / `block_action(...)`: Events API / interactivity
  bodies as Slack sends them (unique `event_id`s);
- HTTP mode: `await post_event(url, body, secret)` signs and POSTs a body (`signed_headers`
  alone for custom cases); `await deliver_event(url, body, secret, retry_num=n)` also returns
  the response headers and sends Slack's retry headers; `await post_action(url, payload,
  secret)` for button presses;
- Socket Mode: `queue_event(body)` sends it over one of the open sockets, in turn (Slack sends
  each event to one of an app's connections; `delivered_on` says which), or on the next
  connection: an envelope stays pending until the client acks it, and one whose connection
  closed goes to the next one, as Slack redelivers; `drop_socket()` closes the newest
  connection from the server side; `request_refresh()` sends Slack's `disconnect`;
  `unacked()`: envelope ids still pending;
- `sent(channel)`, `wait_sent(channel, n)`: what the bot posted (edits update entries in place);
- `fail_next(n, status=429, retry_after=1, method=None, error="ratelimited")`;
- `stall_next(n, method, seconds)`: the next n calls of `method` are carried out (a message is
  posted) but answered only after `seconds` (past the client's timeout); `drop_next(n, method)`:
  carried out, then the connection is closed without an answer;
- `add_file(name, data, mimetype)`: a file object for `message_event(files=[...])`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.fakes.late_answers import LateAnswers
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.waiting import wait_for_sent

BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T0001"


@dataclass
class Failure:
    status: int
    retry_after: float | None
    error: str
    method: str | None


def signed_headers(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request with (v0 HMAC-SHA256 of `v0:{ts}:{body}`)."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


async def post_event(url: str, body: dict[str, Any], secret: str) -> int:
    """POST an Events API body to the app, signed with `secret`; returns the HTTP status."""
    status, _ = await deliver_event(url, body, secret)
    return status


async def deliver_event(url: str, body: dict[str, Any], secret: str, *,
                        retry_num: int = 0) -> tuple[int, dict[str, str]]:
    """POST an Events API body as Slack does; `retry_num` > 0 is Slack's retry of a failed one.

    A retry carries `X-Slack-Retry-Num` and `X-Slack-Retry-Reason` (Slack retries a delivery that
    got no 2xx within 3 seconds: immediately, after 1 minute, after 5 minutes). Returns the HTTP
    status and the response headers.
    """
    raw = json.dumps(body)
    headers = {"Content-Type": "application/json", **signed_headers(raw, secret)}
    if retry_num:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_error"
    async with aiohttp.ClientSession() as http, http.post(url, data=raw, headers=headers) as response:
        return response.status, dict(response.headers)


async def post_action(url: str, payload: dict[str, Any], secret: str) -> int:
    """POST an interactivity payload (button press) the way Slack does: a form with `payload`."""
    raw = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed_headers(raw, secret)}
    async with aiohttp.ClientSession() as http, http.post(url, data=raw, headers=headers) as response:
        return response.status


@dataclass
class FakeSlackServer:
    bot_token: str = "xoxb-test-token"
    app_token: str = "xapp-test-token"
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: int = 0
    acked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._failures: list[Failure] = []
        self._pending: dict[str, dict[str, Any]] = {}     # envelope_id -> envelope, until acked
        self._ws: web.WebSocketResponse | None = None      # the newest connection
        self._sockets: list[web.WebSocketResponse] = []      # every open one (Slack allows up to 10)
        self._turn = itertools.count()
        self._assigned: dict[str, web.WebSocketResponse] = {}   # envelope id -> the socket it went to
        self.delivered_on: dict[str, int] = {}              # envelope id -> connection number (1, 2, ...)
        self._numbers: dict[int, int] = {}
        self._runner: web.AppRunner | None = None
        self._files: dict[str, tuple[bytes, str]] = {}
        self._sent_event = asyncio.Event()
        self._late = LateAnswers()
        self.port = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> FakeSlackServer:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/files/{name}", self._file)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        self._late.stop()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    # --- helper API ------------------------------------------------------------------------

    def message_event(self, channel: str, user: str, text: str, *, channel_type: str = "im",
                      ts: str | None = None, thread_ts: str | None = None, parent_user_id: str | None = None,
                      files: list[dict[str, Any]] | None = None, event_type: str = "message",
                      subtype: str | None = None, bot_id: str | None = None) -> dict[str, Any]:
        n = next(self._ids)
        event: dict[str, Any] = {"type": event_type, "channel": channel, "user": user, "text": text,
                                 "ts": ts or f"{1700000000 + n}.{n:06d}", "channel_type": channel_type,
                                 "team": TEAM_ID, "event_ts": f"{1700000000 + n}.{n:06d}"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        if parent_user_id:
            event["parent_user_id"] = parent_user_id
        if files:
            event["files"] = files
            event["subtype"] = "file_share"
        if subtype:
            event["subtype"] = subtype
        if bot_id:
            event["bot_id"] = bot_id
        return {"token": "legacy", "team_id": TEAM_ID, "api_app_id": "A0001", "type": "event_callback",
                "event_id": f"Ev{n:08d}", "event_time": int(time.time()), "event": event,
                "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}]}

    def block_action(self, channel: str, user: str, action_id: str, value: str, *, message_ts: str,
                     thread_ts: str | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": "question", "bot_id": BOT_ID}
        if thread_ts:
            message["thread_ts"] = thread_ts
        return {"type": "block_actions", "team": {"id": TEAM_ID}, "api_app_id": "A0001",
                "user": {"id": user, "username": "ada", "team_id": TEAM_ID},
                "channel": {"id": channel}, "container": {"type": "message", "message_ts": message_ts},
                "message": message, "trigger_id": f"trig{next(self._ids)}", "response_url": "",
                "actions": [{"type": "button", "action_id": action_id, "block_id": "hermes_buttons",
                             "value": value, "action_ts": str(time.time())}]}

    def add_file(self, name: str, data: bytes, mimetype: str = "image/png") -> dict[str, Any]:
        file_id = f"F{next(self._ids):06d}"
        self._files[file_id] = (data, mimetype)
        url = f"http://127.0.0.1:{self.port}/files/{file_id}"
        return {"id": file_id, "name": name, "mimetype": mimetype, "size": len(data),
                "url_private": url, "url_private_download": url}

    def queue_event(self, body: dict[str, Any], *, kind: str = "events_api") -> str:
        """Deliver over Socket Mode; returns the envelope id (pending until the client acks)."""
        envelope_id = f"env-{next(self._ids)}"
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": body,
                    "accepts_response_payload": kind != "events_api", "retry_attempt": 0,
                    "retry_reason": ""}
        self._pending[envelope_id] = envelope
        open_sockets = [ws for ws in self._sockets if not ws.closed]
        if open_sockets:     # Slack sends each event to one of the app's connections
            ws = open_sockets[next(self._turn) % len(open_sockets)]
            self._assign(envelope_id, ws)
            asyncio.get_running_loop().create_task(ws.send_str(json.dumps(envelope)))
        return envelope_id

    def _assign(self, envelope_id: str, ws: web.WebSocketResponse) -> None:
        self._assigned[envelope_id] = ws
        self.delivered_on[envelope_id] = self._numbers.get(id(ws), 0)

    async def drop_socket(self) -> None:
        if self._ws is not None:
            await self._ws.close(code=1001, message=b"going away")

    async def request_refresh(self) -> None:
        if self._ws is not None:
            await self._ws.send_str(json.dumps({"type": "disconnect", "reason": "refresh_requested",
                                                "debug_info": {"host": "fake"}}))

    def sent(self, channel: str) -> list[dict[str, Any]]:
        return self.messages[channel]

    def unacked(self) -> list[str]:
        """Socket Mode envelope ids not acknowledged yet (Slack delivers them again)."""
        return list(self._pending)

    async def wait_sent(self, channel: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        return await wait_for_sent(lambda: self.sent(channel), self._sent_event, count, timeout, f"{channel}")

    def open_connections(self) -> int:
        return sum(not ws.closed for ws in self._sockets)

    async def wait_connections(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.connections < count or self._ws is None or self._ws.closed:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} socket connection(s), saw {self.connections}")
            await asyncio.sleep(0.01)

    def stall_next(self, n: int = 1, *, method: str = "chat.postMessage", seconds: float = 5.0) -> None:
        """Carry out the next n `method` calls but answer each only after `seconds` (or at stop)."""
        self._late.stall(method, n, seconds)

    def drop_next(self, n: int = 1, *, method: str = "chat.postMessage") -> None:
        """Carry out the next n `method` calls, then close the connection without an answer."""
        self._late.drop(method, n)

    def calls_of(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    def fail_next(self, n: int = 1, *, status: int = 429, retry_after: float | None = 1,
                  method: str | None = None, error: str = "") -> None:
        err = error or ("ratelimited" if status == 429 else "internal_error")
        self._failures.extend(Failure(status, retry_after if status == 429 else None, err, method)
                              for _ in range(n))

    # --- Web API ---------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or params.get("token", "")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        for i, failure in enumerate(self._failures):
            if failure.method in (None, method):
                self._failures.pop(i)
                headers = {"Retry-After": str(int(failure.retry_after))} if failure.retry_after is not None else {}
                body = {"ok": False, "error": failure.error}
                return web.json_response(body, status=failure.status, headers=headers)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        answer = await handler(params)
        await self._late.after(method, request)
        return web.json_response(answer)

    async def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "hermes",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    async def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket?ticket={next(self._ids)}"}

    async def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user_id = p.get("user", "")
        user = self.users.get(user_id, {"real_name": f"User {user_id}", "display_name": ""})
        return {"ok": True, "user": {"id": user_id, "name": user_id.lower(), "real_name": user["real_name"],
                                     "profile": {"real_name": user["real_name"],
                                                 "display_name": user["display_name"]}}}

    async def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "messages": [], "has_more": False}

    async def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel", "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        blocks = p.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        n = next(self._ids)
        entry = {"ts": f"{1800000000 + n}.{n:06d}", "text": p.get("text", ""), "thread_ts": p.get("thread_ts"),
                 "blocks": blocks, "mrkdwn": p.get("mrkdwn", True), "edits": [],
                 "posted_at": time.monotonic()}   # when it reached the platform (this process's clock)
        self.messages[channel].append(entry)
        self._sent_event.set()
        return {"ok": True, "channel": channel, "ts": entry["ts"],
                "message": {"type": "message", "text": entry["text"], "bot_id": BOT_ID, "ts": entry["ts"]}}

    async def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        for entry in self.messages[p.get("channel", "")]:
            if entry["ts"] == p.get("ts"):
                entry["edits"].append(entry["text"])
                entry["text"] = p.get("text", "")
                if "blocks" in p:
                    entry["blocks"] = p["blocks"]
                return {"ok": True, "channel": p["channel"], "ts": entry["ts"], "text": entry["text"]}
        return {"ok": False, "error": "message_not_found"}

    async def _file(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.Response(status=403, text="login page")
        data, mimetype = self._files.get(request.match_info["name"], (b"", ""))
        if not mimetype:
            return web.Response(status=404)
        return web.Response(body=data, content_type=mimetype)

    # --- Socket Mode -------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self.connections += 1
        self._numbers[id(ws)] = self.connections
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "debug_info": {"host": "fake"}, "connection_info": {"app_id": "A0001"}}))
        for envelope_id, envelope in list(self._pending.items()):  # Slack redelivers what was not acked
            went_to = self._assigned.get(envelope_id)
            if went_to is not None and not went_to.closed:
                continue                                    # still with a live connection
            if self.connections > 1:
                envelope["retry_attempt"] += 1
                envelope["retry_reason"] = "timeout"
            self._assign(envelope_id, ws)
            await ws.send_str(json.dumps(envelope))
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if "envelope_id" in data:
                    self._pending.pop(data["envelope_id"], None)
                    self.acked.append(data["envelope_id"])
        self._sockets.remove(ws)
        return ws
