"""A fake Discord (REST API v10 + gateway websocket) on 127.0.0.1 for the real discord.py.

Point the client at it with `[discord] api_base = server.api_base` and
`gateway_url = server.gateway_url` (the adapter sets discord.py's class attributes from them).
The gateway speaks plain JSON text frames: HELLO, IDENTIFY → READY (+ GUILD_CREATE for one
guild with a text channel and a thread), heartbeats, RESUME → replay of missed events + RESUMED,
and dispatches MESSAGE_CREATE / INTERACTION_CREATE with sequence numbers.

Helper API for tests:
- `queue_message(channel_id, user_id, content, ...) -> message_id`: a user's message (sent now,
  or replayed on RESUME if no client is connected, as Discord does);
- `queue_button_press(channel_id, user_id, custom_id, message_id)`: a component interaction;
- `sent(channel_id)`, `wait_sent(channel_id, n)`: what the bot posted (edits update in place);
  `posts`: every message POST body as it arrived (retries included);
- a post with `enforce_nonce` and a nonce seen before gets the message created first, as
  Discord does (within a few minutes), instead of a new one;
- `drop_next(n)`: the next n message posts are carried out, then the connection is closed
  without an answer (the client sees the server disconnect);
- `fail_next(n, status=429, retry_after=1.0, method=None)`: REST errors (429s carry `Via`, as
  Discord's do: without it discord.py takes a 429 for a Cloudflare ban);
- `drop_gateway(code=4000)`: close the websocket (4000 is resumable); `identifies`, `resumes`
  count what the client did; `most_open` is the most gateway connections open at once and
  `open_connections` how many are open now (one bot, one shard: never more than 1); `commands`:
  application commands the bot registered.
- sharding: set `shard_count`; an IDENTIFY must name `[shard_id, shard_count]` (else 4010), each
  shard gets the guilds `(guild_id >> 22) % shard_count` picks (GUILD_ID and GUILD_2_ID fall on
  different shards of 2) and their events, DMs go to shard 0; `shards[i]` keeps each shard's
  identifies and `most_open` (never more than 1 for one shard).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.loopback import serve_on_loopback
from tests.fakes.waiting import wait_for_sent

BOT_ID = "900000000000000001"
APP_ID = "900000000000000002"
GUILD_ID = "910000000000000001"
TEXT_CHANNEL_ID = "920000000000000001"
THREAD_ID = "930000000000000001"
# a second guild one shard further on (a guild's shard is (id >> 22) % shard_count)
GUILD_2_ID = str(int(GUILD_ID) + (1 << 22))
TEXT_CHANNEL_2_ID = "920000000000000002"
GUILDS = {GUILD_ID: TEXT_CHANNEL_ID, GUILD_2_ID: TEXT_CHANNEL_2_ID}
SESSION_ID = "fake-session-1"


def guild_shard(guild_id: str | None, shard_count: int) -> int:
    """The shard that receives a guild's events, as Discord computes it (DMs: shard 0)."""
    return 0 if guild_id is None else (int(guild_id) >> 22) % max(1, shard_count)


@dataclass
class ShardState:
    """One shard's gateway session: its open socket, whether it is past READY/RESUMED, its
    sequence numbers and every event dispatched to it (replayed on RESUME)."""

    ws: web.WebSocketResponse | None = None
    ready: web.WebSocketResponse | None = None
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    identifies: int = 0
    open: set[int] = field(default_factory=set)
    most_open: int = 0


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py compares Content-Type verbatim: no "; charset=utf-8".
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


def _user(user_id: str, name: str, bot: bool = False, global_name: str | None = None) -> dict[str, Any]:
    return {"id": user_id, "username": name, "discriminator": "0", "avatar": None, "bot": bot,
            "global_name": global_name}


@dataclass
class Failure:
    status: int
    retry_after: float
    method: str | None
    cloudflare: bool


@dataclass
class FakeDiscordServer:
    token: str = "fake-discord-token"
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    requests: list[tuple[str, str]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    interaction_callbacks: list[dict[str, Any]] = field(default_factory=list)
    identifies: int = 0
    resumes: int = 0
    most_open: int = 0              # the most gateway connections open at once (one bot, one shard: 1)
    posts: list[dict[str, Any]] = field(default_factory=list)
    shard_count: int = 1            # the bot's shards; an IDENTIFY for another count is refused (4010)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self.shards: dict[int, ShardState] = defaultdict(ShardState)
        self._failures: list[Failure] = []
        self._runner: web.AppRunner | None = None
        self._sent_event = asyncio.Event()
        self._files: dict[str, tuple[bytes, str]] = {}
        self._nonces: dict[str, tuple[str, dict[str, Any]]] = {}   # nonce -> (channel, message)
        self._drops = 0
        self._open: set[int] = set()
        self.port = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def _snowflake(self) -> str:
        return str(1_000_000_000_000_000_000 + next(self._ids))

    async def start(self) -> FakeDiscordServer:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/resume-gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        app.router.add_get("/attachments/{name}", self._attachment)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    @property
    def _ws(self) -> web.WebSocketResponse | None:
        return self.shards[0].ws

    async def stop(self) -> None:
        for shard in list(self.shards.values()):
            if shard.ws is not None:
                await shard.ws.close()
        if self._runner:
            await self._runner.cleanup()

    # --- helper API ------------------------------------------------------------------------

    def queue_message(self, channel_id: str, user_id: str, content: str, *, guild: bool | str = False,
                      username: str = "ada", global_name: str | None = "Ada Lovelace",
                      mention_bot: bool = False, reply_to_bot_message: str | None = None,
                      attachments: list[dict[str, Any]] | None = None) -> str:
        message_id = self._snowflake()
        author = _user(user_id, username, global_name=global_name)
        message: dict[str, Any] = {
            "id": message_id, "channel_id": channel_id, "author": author, "content": content,
            "timestamp": dt.datetime.now(dt.UTC).isoformat(), "edited_timestamp": None,
            "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
            "attachments": attachments or [], "embeds": [], "pinned": False, "type": 0,
        }
        if guild:
            message["guild_id"] = guild if isinstance(guild, str) else GUILD_ID
            message["member"] = {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False,
                                 "mute": False, "nick": None}
        if mention_bot:
            message["mentions"] = [_user(BOT_ID, "hermes", bot=True)]
        if reply_to_bot_message:
            message["type"] = 19
            message["message_reference"] = {"message_id": reply_to_bot_message, "channel_id": channel_id}
            message["referenced_message"] = {
                **{k: v for k, v in message.items() if k not in ("message_reference", "referenced_message")},
                "id": reply_to_bot_message, "author": _user(BOT_ID, "hermes", bot=True), "content": "earlier",
                "type": 0}
        self._dispatch("MESSAGE_CREATE", message)
        return message_id

    def queue_button_press(self, channel_id: str, user_id: str, custom_id: str, message_id: str) -> str:
        interaction_id = self._snowflake()
        message = {"id": message_id, "channel_id": channel_id, "author": _user(BOT_ID, "hermes", bot=True),
                   "content": "question", "timestamp": dt.datetime.now(dt.UTC).isoformat(),
                   "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
                   "mention_roles": [], "attachments": [], "embeds": [], "pinned": False, "type": 0}
        self._dispatch("INTERACTION_CREATE", {
            "id": interaction_id, "application_id": APP_ID, "type": 3, "token": f"itoken{interaction_id}",
            "version": 1, "channel_id": channel_id,
            "channel": {"id": channel_id, "type": 1}, "user": _user(user_id, "ada"), "message": message,
            "data": {"custom_id": custom_id, "component_type": 2}, "locale": "en-US",
            "entitlements": [], "authorizing_integration_owners": {}, "context": 1,
            "attachment_size_limit": 8388608,
        })
        return interaction_id

    def queue_slash_command(self, channel_id: str, user_id: str, name: str, args: str, *,
                            guild: str | None = None) -> str:
        """A user's slash command `/name args` (an APPLICATION_COMMAND interaction), in a guild's
        channel (sent on that guild's shard) or a DM."""
        interaction_id = self._snowflake()
        data: dict[str, Any] = {
            "id": interaction_id, "application_id": APP_ID, "type": 2, "token": f"itoken{interaction_id}",
            "version": 1, "channel_id": channel_id, "locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {}, "attachment_size_limit": 8388608,
            "data": {"id": self._snowflake(), "name": name, "type": 1,
                     "options": [{"name": "args", "type": 3, "value": args}]}}
        if guild is None:
            data.update(channel={"id": channel_id, "type": 1}, user=_user(user_id, "ada"), context=1)
        else:
            data.update(guild_id=guild, channel={"id": channel_id, "type": 0, "guild_id": guild},
                        member={"user": _user(user_id, "ada"), "roles": [], "permissions": "0",
                                "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                                "flags": 0},
                        context=0, app_permissions="0")
        self._dispatch("INTERACTION_CREATE", data)
        return interaction_id

    def attachment(self, name: str, data: bytes, content_type: str = "image/png") -> dict[str, Any]:
        """An attachment object for `queue_message(attachments=[...])`, downloadable here."""
        attachment_id = self._snowflake()
        self._files[name] = (data, content_type)
        url = f"http://127.0.0.1:{self.port}/attachments/{name}"
        return {"id": attachment_id, "filename": name, "size": len(data), "url": url, "proxy_url": url,
                "content_type": content_type}

    def sent(self, channel_id: str) -> list[dict[str, Any]]:
        return self.messages[channel_id]

    async def wait_sent(self, channel_id: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        return await wait_for_sent(lambda: self.sent(channel_id), self._sent_event, count, timeout, f"{channel_id}")

    def fail_next(self, n: int = 1, *, status: int = 429, retry_after: float = 1.0, method: str | None = None,
                  cloudflare: bool = False) -> None:
        self._failures.extend(Failure(status, retry_after, method, cloudflare) for _ in range(n))

    def drop_next(self, n: int = 1) -> None:
        """Carry out the next n message posts, then close the connection without an answer."""
        self._drops += n

    async def drop_gateway(self, code: int = 4000, shard: int = 0) -> None:
        ws = self.shards[shard].ws
        if ws is not None:
            await ws.close(code=code, message=b"dropped by test")

    def connected(self, shard: int = 0) -> bool:
        state = self.shards[shard]
        return state.ws is not None and not state.ws.closed and state.ready is state.ws

    async def wait_connected(self, identifies: int = 1, resumes: int = 0, timeout: float = 5.0,
                             shard: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while (self.shards[shard].identifies < identifies or self.resumes < resumes
               or not self.connected(shard)):
            if time.monotonic() > deadline:
                raise AssertionError(f"client did not connect shard {shard} (identifies="
                                     f"{self.shards[shard].identifies}, resumes={self.resumes})")
            await asyncio.sleep(0.01)

    # --- gateway -----------------------------------------------------------------------------

    def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        shard = self.shards[guild_shard(data.get("guild_id"), self.shard_count)]
        shard.seq += 1
        frame = {"op": 0, "t": event, "s": shard.seq, "d": data}
        shard.events.append(frame)
        ws = shard.ws
        if ws is not None and not ws.closed and ws is shard.ready:
            asyncio.get_running_loop().create_task(ws.send_str(json.dumps(frame)))

    def _guild_create(self, guild_id: str = GUILD_ID) -> dict[str, Any]:
        channel_id = GUILDS[guild_id]
        return {
            "id": guild_id, "name": "Fake guild", "icon": None, "owner_id": "1", "unavailable": False,
            "member_count": 2, "large": False, "roles": [{"id": GUILD_ID, "name": "@everyone", "permissions": "0",
                                                          "position": 0, "color": 0, "hoist": False,
                                                          "managed": False, "mentionable": False}],
            "emojis": [], "stickers": [], "features": [], "members": [], "presences": [], "voice_states": [],
            "channels": [{"id": channel_id, "type": 0, "guild_id": guild_id, "name": "general",
                          "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None}],
            "threads": [] if guild_id != GUILD_ID else [{"id": THREAD_ID, "type": 11, "guild_id": GUILD_ID, "parent_id": TEXT_CHANNEL_ID,
                         "name": "a thread", "owner_id": "1", "message_count": 1, "member_count": 1,
                         "rate_limit_per_user": 0,
                         "thread_metadata": {"archived": False, "auto_archive_duration": 1440,
                                             "archive_timestamp": "2024-01-01T00:00:00+00:00", "locked": False}}],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
            "joined_at": "2024-01-01T00:00:00+00:00", "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
            "premium_tier": 0, "preferred_locale": "en-US", "nsfw_level": 0, "system_channel_flags": 0,
        }

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._open.add(id(ws))
        self.most_open = max(self.most_open, len(self._open))
        try:
            return await self._serve_gateway(ws)
        finally:
            self._open.discard(id(ws))
            for shard in self.shards.values():
                shard.open.discard(id(ws))

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def _attach(self, ws: web.WebSocketResponse, shard_id: int) -> ShardState:
        shard = self.shards[shard_id]
        shard.ws = ws
        shard.open.add(id(ws))
        shard.most_open = max(shard.most_open, len(shard.open))
        return shard

    async def _serve_gateway(self, ws: web.WebSocketResponse) -> web.WebSocketResponse:
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            op = payload.get("op")
            if op == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:
                if payload["d"].get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                shard_id, count = payload["d"].get("shard") or [0, 1]
                if count != self.shard_count or not 0 <= shard_id < count:
                    await ws.close(code=4010, message=b"Invalid shard.")
                    break
                self.identifies += 1
                shard = self._attach(ws, shard_id)
                shard.identifies += 1
                guilds = [g for g in GUILDS if guild_shard(g, count) == shard_id]
                shard.seq += 1
                ready = {"v": 10, "user": _user(BOT_ID, "hermes", bot=True),
                         "guilds": [{"id": g, "unavailable": True} for g in guilds],
                         "session_id": f"{SESSION_ID}-shard-{shard_id}",
                         "resume_gateway_url": f"ws://127.0.0.1:{self.port}/resume-gateway",
                         "application": {"id": APP_ID, "flags": 0}, "private_channels": [], "relationships": [],
                         "shard": [shard_id, count]}
                await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": shard.seq, "d": ready}))
                for guild_id in guilds:
                    shard.seq += 1
                    await ws.send_str(json.dumps({"op": 0, "t": "GUILD_CREATE", "s": shard.seq,
                                                  "d": self._guild_create(guild_id)}))
                shard.ready = ws
            elif op == 6:
                self.resumes += 1
                session = str(payload["d"].get("session_id") or "")
                shard = self._attach(ws, int(session.rpartition("-")[2]) if session[-1:].isdigit() else 0)
                since = int(payload["d"].get("seq") or 0)
                for frame in shard.events:
                    if frame["s"] > since:
                        await ws.send_str(json.dumps(frame))
                shard.seq += 1
                await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": shard.seq, "d": {}}))
                shard.ready = ws
        return ws

    # --- REST ----------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        self.requests.append((request.method, path))
        if request.headers.get("Authorization") not in (f"Bot {self.token}", None) and not path.startswith("/interactions"):
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        for i, failure in enumerate(self._failures):
            if failure.method in (None, request.method):
                self._failures.pop(i)
                body = {"message": "You are being rate limited.", "retry_after": failure.retry_after,
                        "global": False}
                headers = {"Retry-After": str(failure.retry_after)}
                if not failure.cloudflare:
                    headers["Via"] = "1.1 google"
                return _json(body if failure.status == 429 else {"message": "error", "code": 0},
                             failure.status, headers)
        body: Any = None
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
            elif request.content_type.startswith("multipart/"):
                form = await request.post()
                body = json.loads(str(form.get("payload_json", "{}")))
        if path == "/users/@me":
            return _json(_user(BOT_ID, "hermes", bot=True))
        if path == "/oauth2/applications/@me":
            return _json({"id": APP_ID, "name": "hermes", "icon": None, "description": "", "bot_public": True,
                          "bot_require_code_grant": False, "verify_key": "00", "flags": 0,
                          "owner": _user("1", "owner")})
        if m := re.fullmatch(r"/channels/(\d+)/messages", path):
            self.posts.append(dict(body or {}))
            response = self._post_message(m.group(1), body or {})
            if self._drops:
                self._drops -= 1
                assert request.transport is not None
                request.transport.close()       # posted, but the connection dies before the answer
            return response
        if m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path):
            return self._edit_message(m.group(1), m.group(2), body or {})
        if re.fullmatch(r"/channels/(\d+)/typing", path):
            return web.Response(status=204)
        if m := re.fullmatch(r"/applications/(\d+)/commands", path):
            self.commands = body or []
            return _json([{**c, "id": self._snowflake(), "application_id": APP_ID, "version": "1",
                           "type": c.get("type", 1), "default_member_permissions": None, "dm_permission": True,
                           "nsfw": False} for c in self.commands])
        if m := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path):
            self.interaction_callbacks.append(body or {})
            # discord.py asks `with_response=true` and reads the callback object back.
            return _json({"interaction": {"id": m.group(1), "type": 3, "response_message_loading": False,
                                          "response_message_ephemeral": False},
                          "resource": {"type": (body or {}).get("type", 6)}})
        return _json({"message": f"404: Not Found ({request.method} {path})", "code": 0}, 404)

    def _message_object(self, channel_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        return {"id": entry["id"], "channel_id": channel_id, "content": entry["content"],
                "author": _user(BOT_ID, "hermes", bot=True), "timestamp": dt.datetime.now(dt.UTC).isoformat(),
                "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
                "mention_roles": [], "attachments": [], "embeds": [], "pinned": False, "type": 0,
                "components": entry.get("components", []), "nonce": entry.get("nonce")}

    def _post_message(self, channel_id: str, body: dict[str, Any]) -> web.Response:
        if not body.get("content") and not body.get("components"):
            return _json({"message": "Cannot send an empty message", "code": 50006}, 400)
        if len(body.get("content") or "") > 2000:
            return _json({"message": "Invalid Form Body", "code": 50035}, 400)
        nonce = str(body["nonce"]) if body.get("nonce") is not None else None
        if nonce is not None and len(nonce) > 25:
            return _json({"message": "Invalid Form Body", "code": 50035,
                          "errors": {"nonce": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}}}, 400)
        if nonce is not None and body.get("enforce_nonce") and nonce in self._nonces:
            first_channel, first = self._nonces[nonce]
            return _json(self._message_object(first_channel, first))
        entry = {"id": self._snowflake(), "content": body.get("content", ""), "components": body.get("components", []),
                 "message_reference": body.get("message_reference"), "edits": [], "nonce": nonce}
        if nonce is not None:
            self._nonces[nonce] = (channel_id, entry)
        self.messages[channel_id].append(entry)
        self._sent_event.set()
        return _json(self._message_object(channel_id, entry))

    def _edit_message(self, channel_id: str, message_id: str, body: dict[str, Any]) -> web.Response:
        for entry in self.messages[channel_id]:
            if entry["id"] == message_id:
                entry["edits"].append(entry["content"])
                entry["content"] = body.get("content", entry["content"])
                return _json(self._message_object(channel_id, entry))
        return _json({"message": "Unknown Message", "code": 10008}, 404)

    async def _attachment(self, request: web.Request) -> web.Response:
        data, content_type = self._files.get(request.match_info["name"], (None, ""))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type=content_type)


@contextlib.asynccontextmanager
async def running_fake_discord() -> AsyncIterator[FakeDiscordServer]:
    """A started fake Discord. DiscordAdapter points discord.py's class-level API base and gateway
    URL at it; they are put back afterwards so other tests see discord.py as it was."""
    import discord

    server = await FakeDiscordServer().start()
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        yield server
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
        await server.stop()
