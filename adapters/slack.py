"""Slack adapter on slack-bolt (AsyncApp) and slack_sdk's AsyncWebClient: Events API or Socket Mode.

- HTTP mode (`mode = "http"`): `attach_routes(app)` mounts bolt on `events_path` of the gateway's
  aiohttp server through bolt's own aiohttp adapter (`to_bolt_request`/`to_aiohttp_response`,
  what `AsyncApp.web_app()` uses). Bolt checks `X-Slack-Signature` against the signing secret
  and answers 401 itself; a request is never seen by us unsigned.
- Socket Mode (`mode = "socket"`): bolt's `AsyncSocketModeHandler` (slack_sdk's aiohttp
  SocketModeClient) asks `apps.connections.open` (with the xapp- token) for a websocket URL.
  When Slack closes the socket or sends `disconnect`, the SDK reconnects on a fresh URL at once
  and its monitor re-checks every `ping_interval`; envelopes are acked only after our handler
  ran (`process_before_response=True`), so Slack redelivers anything we had not taken, with
  the same `event_id` (the `dedup_key`).

Listeners run before the ack in both modes (`process_before_response=True`): an event is
acknowledged only once the gateway accepted it, so a crash loses nothing (Slack retries; the
gateway drops the redelivery by `dedup_key`). Slack does not promise event order.

Shutdown (`stop_receiving`): a global bolt middleware, which runs after bolt's own signature
check, answers every later request 503 with `Retry-After` instead of running a listener. Over
HTTP Slack retries it (with `X-Slack-Retry-Num`) to the restarted gateway; in Socket Mode bolt's
handler acknowledges an envelope only when the response is 200 (`send_async_response`), so the
envelope stays unacknowledged and Slack delivers it again. Events already inside a listener are
finished before `stop_receiving` returns.

slack_sdk's AsyncWebClient retries only connection errors, once, by default
(`async_default_handlers()` = a connection-error handler); a 429 raises `SlackApiError` with
`Retry-After`, which becomes `DeliveryError(retry_after=...)` for the delivery layer.

chat.postMessage has no idempotency key, so a post must not be repeated once the request may
have reached Slack. The SDK's default connection-error retry also fires on errors after the
request went out (the server closed the connection before answering, a socket read timeout):
our `PostOnceRetryHandler` keeps the retry for connect failures and for other methods, but not
for posting methods after sending. Such a failure becomes `DeliveryError(maybe_delivered=True)`
and the delivery layer does not send the message again.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest as RetryHttpRequest
from slack_sdk.http_retry.response import HttpResponse as RetryHttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from adapters.aiohttp_errors import failed_after_sending
from adapters.base import (
    Adapter,
    Attachment,
    ButtonPress,
    DeliveryError,
    InboundHandler,
    InboundMessage,
    OutboundMessage,
    PlatformLimits,
    SentMessage,
    sent_without_answer,
)
from adapters.markdown import to_plain, to_slack_mrkdwn

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://slack.com/api/"
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
SECTION_LIMIT = 3000          # characters of text in one section block
RETRY_AFTER_STOPPING = "30"   # seconds, on the 503 for requests that arrive while stopping
# Errors that retrying cannot fix.
PERMANENT_ERRORS = {
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed", "account_inactive",
    "token_revoked", "token_expired", "no_permission", "missing_scope", "msg_too_long", "no_text",
    "invalid_blocks", "invalid_blocks_format", "invalid_arguments", "restricted_action", "message_not_found",
    "cant_update_message", "edit_window_closed", "team_access_not_granted", "user_not_in_channel",
}
FORMAT_ERRORS = {"invalid_blocks", "invalid_blocks_format"}
# Message subtypes that are a person talking to us; the rest (edits, joins, bot posts) are not.
USER_SUBTYPES = {None, "file_share", "thread_broadcast"}
# Methods that post something new each time they run: never repeated once Slack may have them.
POSTING_METHODS = {"chat.postMessage", "chat.postEphemeral", "chat.scheduleMessage", "chat.meMessage",
                   "files.upload", "files.completeUploadExternal"}


class PostOnceRetryHandler(AsyncConnectionErrorRetryHandler):
    """slack_sdk's connection-error retry, except for a posting method after the request went out."""

    async def _can_retry_async(self, *, state: RetryState, request: RetryHttpRequest,
                               response: RetryHttpResponse | None = None,
                               error: Exception | None = None) -> bool:
        method = request.url.rstrip("/").rsplit("/", 1)[-1]
        if error is not None and method in POSTING_METHODS and failed_after_sending(error):
            return False
        return await super()._can_retry_async(state=state, request=request, response=response, error=error)


def retry_handlers() -> list[AsyncRetryHandler]:
    """What the AsyncWebClient retries by itself (the SDK's default, made safe for posts)."""
    return [PostOnceRetryHandler()]


def delivery_error(exc: Exception) -> DeliveryError:
    """A slack_sdk / aiohttp failure as the platform-neutral DeliveryError."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = str(response.get("error", "")) if response is not None else ""
        status = getattr(response, "status_code", 0)
        if status == 429 or error == "ratelimited":
            retry = response.headers.get("Retry-After", response.headers.get("retry-after", "1"))
            try:
                seconds = float(retry)
            except (TypeError, ValueError):
                seconds = 1.0
            return DeliveryError(f"slack rate limit ({error or 429})", retry_after=seconds)
        if error in PERMANENT_ERRORS or (400 <= status < 500 and status != 408):
            return DeliveryError(f"slack refused: {error or status}", permanent=True)
        return DeliveryError(f"slack error: {error or status}")
    if failed_after_sending(exc):
        return sent_without_answer("slack", exc)
    return DeliveryError(f"slack unreachable: {type(exc).__name__}: {exc}")


class SlackAdapter(Adapter):
    name = "slack"
    # Slack recommends ≤ 4000 characters per message; chat.update is a Tier 3 method (~50/min).
    limits = PlatformLimits(max_message_chars=4000, min_edit_interval=1.5, supports_edit=True,
                            supports_buttons=True, supports_threads=True,
                            chat_send_interval=1.0)

    def __init__(self, on_event: InboundHandler, *, token: str, api_base: str = "", mode: str = "http",
                 app_token: str = "", signing_secret: str = "", events_path: str = "/slack/events",
                 max_attachment_bytes: int = MAX_ATTACHMENT_BYTES, ping_interval: float = 10.0,
                 request_timeout: float = 30.0) -> None:
        super().__init__(on_event)
        if not token:
            raise ValueError("slack.token is empty: set it to the bot token (xoxb-...)")
        if mode == "http" and not signing_secret:
            raise ValueError("slack.signing_secret is required in http mode: every request is checked "
                             "against it (Slack app settings → Basic Information → Signing Secret)")
        if mode == "socket" and not app_token:
            raise ValueError("slack.app_token (xapp-...) is required when slack.mode = \"socket\"")
        if mode not in ("http", "socket"):
            raise ValueError(f"slack.mode must be 'http' or 'socket', not {mode!r}")
        if not events_path.startswith("/"):
            raise ValueError(f"slack.events_path must start with '/', got {events_path!r}")
        self.mode = mode
        self.app_token = app_token
        self.events_path = events_path
        self.max_attachment_bytes = max_attachment_bytes
        self.ping_interval = ping_interval
        self._token = token
        base = (api_base or DEFAULT_API_BASE).rstrip("/") + "/"
        self._api_host = urlsplit(base).hostname or ""
        # request_timeout is aiohttp's total timeout per Web API call (slack_sdk's default: 30 s).
        self.client = AsyncWebClient(token=token, base_url=base, timeout=request_timeout,  # type: ignore[arg-type]
                                     retry_handlers=retry_handlers())
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret,
            # Socket Mode requests are not signed; bolt skips the check for them by itself.
            process_before_response=True,
            # Our own posts come back as events; bolt drops them (it knows our ids from auth.test).
            ignoring_self_events_enabled=True,
        )
        self.app.middleware(self._refuse_while_stopping)
        self.app.event("message")(self._on_message)
        self.app.event("app_mention")(self._on_message)
        self.app.action(re.compile(".*"))(self._on_action)
        self.app.command(re.compile(".*"))(self._on_command)
        self.bot_user_id = ""
        self._socket: Any = None
        self._http: aiohttp.ClientSession | None = None
        self._names: OrderedDict[str, str] = OrderedDict()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()   # (channel, ts) this process saw
        self._receiving = True            # until stop_receiving()
        self._in_flight = 0               # listeners handing an event to on_event
        self._idle = asyncio.Event()
        self.drain_timeout = 10.0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            raise RuntimeError(f"slack: auth.test refused the bot token: {exc.response.get('error')}") from exc
        self.bot_user_id = str(auth.get("user_id", ""))
        self.status.details.update({"team": str(auth.get("team", "")), "bot_user_id": self.bot_user_id})
        self._http = aiohttp.ClientSession()
        if self.mode == "socket":
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(self.app, self.app_token, ping_interval=self.ping_interval)
            client = self._socket.client
            client.on_close_listeners.append(self._on_socket_close)
            client.message_listeners.append(self._on_socket_message)
            await self._socket.connect_async()
        self.status.connected = True

    async def check_credentials(self) -> tuple[bool, str, str]:
        """auth.test with the bot token (for `hermes doctor`)."""
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            return False, f"auth.test refused the token: {exc.response.get('error')}", \
                "reinstall the app to the workspace and copy the Bot User OAuth Token (xoxb-...)"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return False, f"cannot reach the Slack API: {exc}", "check network access or [slack] api_base"
        return True, f"token ok: {auth.get('user')} in {auth.get('team')}", ""

    async def stop_receiving(self) -> None:
        """Answer new requests 503 (HTTP) / leave them unacknowledged (Socket Mode); finish the rest."""
        self._receiving = False
        if self._in_flight:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), self.drain_timeout)
            except TimeoutError:
                log.warning("slack: %d event(s) still being handed over after %.0fs",
                            self._in_flight, self.drain_timeout)

    async def stop(self) -> None:
        await self.stop_receiving()
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        self.status.connected = False

    async def _on_socket_close(self, message: Any) -> None:
        self.status.connected = False
        self.status.last_error = f"socket closed: {getattr(message, 'data', '')}"

    async def _on_socket_message(self, client: Any, message: dict[str, Any], raw: str | None) -> None:
        if message.get("type") == "hello":
            if not self.status.connected:
                self.status.reconnects += 1
            self.status.connected = True

    # --- HTTP mode ---------------------------------------------------------------------------

    def attach_routes(self, app: web.Application) -> None:
        """HTTP mode: serve the Events API (and interactivity, slash commands) on `events_path`."""
        if self.mode == "http":
            app.router.add_post(self.events_path, self._handle_http)

    async def _handle_http(self, request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    # --- receiving ---------------------------------------------------------------------------

    async def _refuse_while_stopping(self, body: dict[str, Any], next_: Any) -> BoltResponse | None:
        """Global middleware (after bolt's signature check): once stopping, no listener runs.

        503 with Retry-After: Slack retries the HTTP request later, and bolt's Socket Mode handler
        does not acknowledge a non-200 envelope, so Slack delivers it again either way.
        """
        if self._receiving:
            return await next_()
        how = "not acknowledged" if self.mode == "socket" else "answered 503"
        log.info("slack: %s %s arrived while stopping; %s so Slack delivers it again",
                 body.get("type", "request"), body.get("event_id", ""), how)
        return BoltResponse(status=503, body="the gateway is restarting; retry later",
                            headers={"Retry-After": RETRY_AFTER_STOPPING})

    def _enter(self) -> None:
        """A listener begins handing an event over; refused (bolt answers 500) once stopping."""
        if not self._receiving:
            raise RuntimeError("slack: stopping; not taking this event (Slack delivers it again)")
        self._in_flight += 1

    def _leave(self) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        problem = _message_problem(event)
        if problem:  # acknowledged all the same: Slack would only send the same event again
            log.warning("slack: event %s is not a message event as Slack sends them (%s); ignored",
                        str(body.get("event_id", "?"))[:40], problem)
            return
        if event.get("subtype") not in USER_SUBTYPES or event.get("bot_id") or not event.get("user"):
            return
        self._enter()
        try:
            await self._take_message(body, event)
        finally:
            self._leave()

    async def _take_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
        # With both `message.*` and `app_mention` subscribed, one message arrives as two events.
        if (channel, ts) in self._seen:
            return
        self._seen[(channel, ts)] = None
        while len(self._seen) > 2048:
            self._seen.popitem(last=False)
        try:
            await self._deliver_message(body, event, channel, ts)
        except BaseException:
            # Not taken: forget it, so Slack's retry of this event gets through.
            self._seen.pop((channel, ts), None)
            raise

    async def _deliver_message(self, body: dict[str, Any], event: dict[str, Any], channel: str, ts: str) -> None:
        text = str(event.get("text", ""))
        mention = f"<@{self.bot_user_id}>"
        mentioned = event.get("type") == "app_mention" or (bool(self.bot_user_id) and mention in text)
        if self.bot_user_id:
            text = re.sub(rf"\s*<@{re.escape(self.bot_user_id)}(\|[^>]*)?>\s*", " ", text).strip()
        user = str(event["user"])
        await self.on_event(InboundMessage(
            platform=self.name,
            chat_id=channel,
            user_id=user,
            display_name=await self._display_name(user),
            text=_unescape(text),
            message_id=ts,
            thread_id=str(event["thread_ts"]) if event.get("thread_ts") else None,
            is_dm=event.get("channel_type") == "im",
            mentioned=mentioned,
            reply_to_bot=bool(event.get("thread_ts")) and event.get("parent_user_id") == self.bot_user_id,
            reply_to=str(event["thread_ts"]) if event.get("thread_ts") and event.get("thread_ts") != ts else None,
            attachments=await self._attachments(event.get("files") or []),
            dedup_key=str(body.get("event_id", "")) or f"{channel}:{ts}",
        ))

    async def _on_command(self, ack: Any, body: dict[str, Any], command: dict[str, Any]) -> None:
        """A native slash command: acknowledged at once, then handled as a message `/name args`."""
        self._enter()
        try:
            await self._take_command(ack, command)
        finally:
            self._leave()

    async def _take_command(self, ack: Any, command: dict[str, Any]) -> None:
        await ack()
        user = str(command.get("user_id", ""))
        text = f"{command.get('command', '')} {command.get('text', '')}".strip()
        await self.on_event(InboundMessage(
            platform=self.name, chat_id=str(command.get("channel_id", "")), user_id=user,
            display_name=await self._display_name(user), text=text,
            message_id=str(command.get("trigger_id", "")),
            is_dm=command.get("channel_name") == "directmessage", mentioned=True,
            dedup_key=str(command.get("trigger_id", "")),
        ))

    async def _on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        self._enter()
        try:
            await self._take_action(ack, body, action)
        finally:
            self._leave()

    async def _take_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        message = _object(body.get("message"))
        channel = _object(body.get("channel")).get("id") or _object(body.get("container")).get("channel_id", "")
        await self.on_event(ButtonPress(
            platform=self.name, chat_id=str(channel), user_id=str(_object(body.get("user")).get("id", "")),
            action_id=str(action.get("action_id", "")).split("|")[0], value=str(action.get("value", "")),
            message_id=str(message.get("ts", "")),
            thread_id=str(message["thread_ts"]) if message.get("thread_ts") else None,
        ))

    async def _display_name(self, user_id: str) -> str:
        if user_id in self._names:
            return self._names[user_id]
        name = ""
        try:
            info = await self.client.users_info(user=user_id)
            user = info.get("user") or {}
            profile = user.get("profile") or {}
            name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or ""
        except SlackApiError as exc:      # users:read missing, or rate limited: the id will do
            log.debug("slack: users.info %s failed: %s", user_id, exc)
        self._names[user_id] = name
        while len(self._names) > 4096:
            self._names.popitem(last=False)
        return name

    async def _attachments(self, files: list[dict[str, Any]]) -> tuple[Attachment, ...]:
        result = []
        for f in files:
            mime = str(f.get("mimetype") or "application/octet-stream")
            kind = "image" if mime.startswith("image/") else "audio" if mime.startswith("audio/") else \
                "video" if mime.startswith("video/") else "document"
            url = str(f.get("url_private_download") or f.get("url_private") or "")
            size = f.get("size") if isinstance(f.get("size"), int) and f.get("size", 0) >= 0 else 0
            data = await self._download(url, size) if url else None
            result.append(Attachment(kind=kind, filename=str(f.get("name") or f.get("id") or "file"),
                                     mime_type=mime, size=len(data) if data is not None else size,
                                     url=url, data=data))  # type: ignore[arg-type]
        return tuple(result)

    async def _download(self, url: str, size: int) -> bytes | None:
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            log.warning("slack: a file's URL is not a URL: %r", url[:200])
            return None
        # The bot token goes only to Slack (or the configured API host), never to a URL elsewhere.
        if not (host == self._api_host or host == "slack.com" or host.endswith(".slack.com")):
            log.warning("slack: not sending the bot token to %s to download a file", host)
            return None
        if size > self.max_attachment_bytes or self._http is None:
            return None
        try:
            async with self._http.get(url, headers={"Authorization": f"Bearer {self._token}"},
                                      timeout=aiohttp.ClientTimeout(total=60)) as response:
                if response.status != 200:
                    log.warning("slack: downloading %s failed: HTTP %s", url, response.status)
                    return None
                data = await response.content.read(self.max_attachment_bytes + 1)
                return data if len(data) <= self.max_attachment_bytes else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack: downloading %s failed: %s", url, exc)
            return None

    # --- sending -------------------------------------------------------------------------------

    @staticmethod
    def _blocks(text: str, message: OutboundMessage, kind: str = "mrkdwn") -> list[dict[str, Any]] | None:
        if not message.buttons:
            return None
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": kind, "text": text[i:i + SECTION_LIMIT]}}
            for i in range(0, len(text), SECTION_LIMIT)
        ]
        elements = []
        seen: set[str] = set()
        for index, button in enumerate(message.buttons[:25]):
            # action_ids must be unique within a block; a repeated one gets `|index` (stripped on receipt).
            action_id = button.action_id if button.action_id not in seen else f"{button.action_id}|{index}"
            seen.add(button.action_id)
            element: dict[str, Any] = {"type": "button", "action_id": action_id[:255],
                                       "text": {"type": "plain_text", "text": button.label[:75], "emoji": True},
                                       "value": button.value[:2000]}
            if button.style in ("primary", "danger"):
                element["style"] = button.style
            elements.append(element)
        blocks.append({"type": "actions", "block_id": "hermes_buttons", "elements": elements})
        return blocks

    async def send(self, message: OutboundMessage) -> SentMessage:
        # Slack has no quote-reply: a reply goes into a thread only when thread_id says which.
        args: dict[str, Any] = {"channel": message.chat_id, "thread_ts": message.thread_id,
                                "unfurl_links": False}
        try:
            text = to_slack_mrkdwn(message.text)
            try:
                response = await self.client.chat_postMessage(text=text, blocks=self._blocks(text, message),
                                                              **args)
            except SlackApiError as exc:
                if exc.response.get("error") not in FORMAT_ERRORS:
                    raise
                log.info("slack: formatting refused (%s); sending plain text", exc.response.get("error"))
                plain = to_plain(message.text)
                response = await self.client.chat_postMessage(
                    text=plain, mrkdwn=False, blocks=self._blocks(plain, message, "plain_text"), **args)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise delivery_error(exc) from exc
        return SentMessage(platform=self.name, chat_id=str(response.get("channel", message.chat_id)),
                           message_id=str(response["ts"]), thread_id=message.thread_id)

    async def edit(self, sent: SentMessage, text: str) -> None:
        try:
            await self.client.chat_update(channel=sent.chat_id, ts=sent.message_id, text=to_slack_mrkdwn(text))
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise delivery_error(exc) from exc

    async def typing(self, chat_id: str, thread_id: str | None = None) -> None:
        """Slack has no typing indicator for bots outside the legacy RTM API: nothing to do."""
        return

    async def set_commands(self, commands: list[tuple[str, str]]) -> None:
        log.info("slack: slash commands come from the app manifest (features.slash_commands, request URL "
                 "%s in http mode); add these there: %s", self.events_path,
                 ", ".join(f"/{name}" for name, _ in commands))


def _object(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (a payload field of the wrong type)."""
    return value if isinstance(value, dict) else {}


def _message_problem(event: dict[str, Any]) -> str:
    """What makes `event` unlike a message event of Slack's ('' when nothing): the fields we read
    must have the types Slack gives them."""
    for key in ("subtype", "user", "text", "channel", "ts", "thread_ts", "parent_user_id", "channel_type"):
        if event.get(key) is not None and not isinstance(event[key], str):
            return f"{key} is {type(event[key]).__name__}, not a string"
    files = event.get("files")
    if files is not None and not (isinstance(files, list) and all(isinstance(f, dict) for f in files)):
        return "files is not a list of objects"
    return ""


def _unescape(text: str) -> str:
    """Slack escapes &, <, > in message text; links arrive as <url|label>."""
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<(https?://[^|>]+)>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
