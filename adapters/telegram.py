"""Telegram adapter on python-telegram-bot 22: long polling (or a webhook), HTML formatting, buttons.

The bot is built with `Application.builder()`, which gives it two HTTP connection pools (one for
the long poll, one for everything else, so a send never waits behind a 30 s getUpdates) and
takes `base_url`/`base_file_url` for self-hosted Bot API servers and proxies. We run our own
polling loop over `bot.get_updates` instead of PTB's Updater, for three reasons:

- the offset is confirmed only after `on_event` has taken an update, so a crash or a dropped
  connection never skips one (a redelivered update carries the same `dedup_key`, the update_id,
  which the gateway deduplicates);
- HTTP 409 Conflict ("terminated by other getUpdates request") means another process polls this
  token: the Updater logs it and retries forever, we stop with a clear error;
- reconnect backoff gets jitter (the Updater's is 1 s × 1.5ⁿ up to 30 s, without jitter).

Several gateway processes on one bot: only one may poll (Telegram answers a second `getUpdates`
with 409). `start(receive=False)` connects for sending only; whoever owns the polling then calls
`start_polling(offset, guard)`: polling resumes from `offset` (what the previous poller had handed
over), and `await guard(offset)` runs before every `getUpdates`: it records the offset and says
whether this process may still poll (a fenced process stops before its next request, and the
updates it fetched but did not confirm come again to the next poller, deduplicated by update_id).
`stop_polling(confirm=False)` stops without another request. Under a guard a 409 is a handover
in progress (the old poller is being fenced): it is retried with backoff, not fatal.

Webhook mode (`mode = "webhook"`): `attach_routes(app)` mounts a POST route on the path of
`webhook_url` that checks `X-Telegram-Bot-Api-Secret-Token` before reading the update, and
`start()` registers the webhook with that secret.

PTB does not retry anything by itself here (no AIORateLimiter is configured): a 429 raises
`RetryAfter` at once and we turn it into `DeliveryError(retry_after=...)` for the delivery layer.
The Bot API has no idempotency key, so a failure after the request went out (PTB's HTTPXRequest
raises `TimedOut`/`NetworkError` *from* httpx's ReadTimeout, WriteTimeout, ReadError or
RemoteProtocolError) is `maybe_delivered`: Telegram may have posted the message, and the delivery
layer does not send it again. Connect errors, connect and pool timeouts (PTB: "Request was *not*
sent") and HTTP error answers are safe to retry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import random
import re
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application

from adapters.base import (
    Adapter,
    ButtonPress,
    DeliveryError,
    InboundHandler,
    InboundMessage,
    OutboundMessage,
    PlatformLimits,
    SentMessage,
    sent_without_answer,
)
from adapters.markdown import to_plain, to_telegram_html
from adapters.telegram_inbound import to_event

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.telegram.org"
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024     # also the Bot API's own download limit
CALLBACK_DATA_LIMIT = 64                    # bytes, Bot API limit for callback_data
COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
CONFLICT_MESSAGE = (
    "another gateway is polling this bot token (Telegram answered getUpdates with 409 Conflict): "
    "stop the other process, or give this gateway its own bot token"
)


class TelegramConflictError(RuntimeError):
    """Another process owns this bot token (a second poller, or a webhook is set)."""


PollGuard = Callable[[int | None], Awaitable[bool]]
"""`await guard(offset)` before each getUpdates: record `offset`, and say whether to go on polling."""
ALLOWED_UPDATES = ["message", "callback_query"]

def _api_urls(api_base: str) -> tuple[str, str]:
    """`https://host[:port][/prefix]` → (base_url, base_file_url) as PTB wants them."""
    root = (api_base or DEFAULT_API_BASE).rstrip("/")
    root = root.removesuffix("/bot")
    return f"{root}/bot", f"{root}/file/bot"


def _seconds(value: float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


# httpx failures after the request was (at least partly) sent: Telegram may have acted on it.
# ConnectError / ConnectTimeout / PoolTimeout mean it never left, so they are not here.
_AFTER_SENDING = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError)


def _failed_after_sending(exc: BaseException) -> BaseException | None:
    """The httpx error under a PTB TimedOut/NetworkError when it came after the request was sent."""
    seen: set[int] = set()
    cause: BaseException | None = exc.__cause__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, _AFTER_SENDING):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def delivery_error(exc: TelegramError) -> DeliveryError:
    """A PTB exception as the platform-neutral DeliveryError."""
    if isinstance(exc, RetryAfter):
        # PTB 22 keeps the wait as a timedelta in `_retry_after`; the public `retry_after` emits a
        # deprecation warning about its int→timedelta migration, so it is only the fallback.
        retry = getattr(exc, "_retry_after", None)
        seconds = _seconds(retry if retry is not None else exc.retry_after)
        return DeliveryError(f"telegram rate limit: {exc}", retry_after=seconds)
    if isinstance(exc, (Forbidden, InvalidToken, BadRequest)):
        return DeliveryError(f"telegram refused: {exc}", permanent=True)
    # TimedOut / NetworkError / 5xx: transient. One that came after the request was sent may have
    # been posted anyway (the Bot API has no idempotency key): the delivery layer will not resend it.
    cause = _failed_after_sending(exc) if isinstance(exc, NetworkError) else None
    if cause is not None:
        return sent_without_answer("telegram", cause, qualifier="httpx.")
    return DeliveryError(f"telegram error: {exc}")


def _is_markup_error(exc: BadRequest) -> bool:
    text = str(exc).lower()
    return "parse entities" in text or "end tag" in text or "start tag" in text


class TelegramAdapter(Adapter):
    name = "telegram"
    # 4096 characters after entity parsing. Telegram allows about one message a second per
    # chat and 20 a minute in a group; edits count, so streaming edits stay 3 s apart.
    limits = PlatformLimits(max_message_chars=4096, min_edit_interval=3.0, supports_edit=True,
                            supports_buttons=True, supports_threads=True,
                            chat_send_interval=1.0, send_interval=1 / 30)

    def __init__(self, on_event: InboundHandler, *, token: str, api_base: str = "",
                 mode: str = "polling", webhook_url: str = "", webhook_secret: str = "",
                 poll_timeout: float = 30.0, max_attachment_bytes: int = MAX_ATTACHMENT_BYTES,
                 reconnect_base: float = 1.0, reconnect_max: float = 60.0, read_timeout: float = 5.0,
                 drain_timeout: float = 10.0) -> None:
        super().__init__(on_event)
        if not token:
            raise ValueError("telegram.token is empty: set it to the token @BotFather gave you")
        if mode not in ("polling", "webhook"):
            raise ValueError(f"telegram.mode must be 'polling' or 'webhook', not {mode!r}")
        if mode == "webhook":
            if not webhook_url:
                raise ValueError("telegram.webhook_url is required when telegram.mode = 'webhook'")
            if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", webhook_secret or ""):
                raise ValueError(
                    "telegram.webhook_secret must be 16-256 characters of A-Z a-z 0-9 _ - "
                    "(Telegram sends it back in X-Telegram-Bot-Api-Secret-Token); generate one with "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        self.mode = mode
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.poll_timeout = poll_timeout
        self.max_attachment_bytes = max_attachment_bytes
        self.reconnect_base = reconnect_base
        self.reconnect_max = reconnect_max
        base_url, base_file_url = _api_urls(api_base)
        self._app = (
            Application.builder()
            .token(token)
            .base_url(base_url)
            .base_file_url(base_file_url)
            .read_timeout(read_timeout)          # for sends and edits (PTB's default is 5 s)
            .get_updates_read_timeout(10.0)      # PTB adds the long-poll timeout to this
            .updater(None)                       # we poll ourselves (see module docstring)
            .build()
        )
        self.bot = self._app.bot
        self._offset: int | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._running = False
        self._started = False
        self._receiving = True          # until stop_receiving()
        self._dispatching = False       # the poll loop is handing an update to on_event
        self._webhooks_in_flight = 0
        self._webhooks_idle = asyncio.Event()
        self.drain_timeout = drain_timeout
        self.fatal_error: Exception | None = None
        self._callback_data: OrderedDict[str, str] = OrderedDict()
        self._guard: PollGuard | None = None

    @property
    def single_consumer(self) -> bool:
        """Only one process may receive for this bot (long polling); a webhook can be shared."""
        return self.mode == "polling"

    @property
    def offset(self) -> int | None:
        """The next update id to ask for: everything below it was handed to `on_event`."""
        return self._offset

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, *, receive: bool = True) -> None:
        """Connect (getMe); in webhook mode register the webhook; in polling mode poll unless
        `receive` is False (another process may be polling: `start_polling` begins later)."""
        try:
            await self.bot.initialize()         # getMe: checks the token, learns our username
        except InvalidToken as exc:
            raise RuntimeError(f"telegram: the bot token was refused: {exc}") from exc
        self.status.details["username"] = self.bot.username
        self._running = True
        if self.mode == "webhook":
            await self.bot.set_webhook(url=self.webhook_url, secret_token=self.webhook_secret,
                                       allowed_updates=["message", "callback_query"],
                                       # one at a time keeps a user's messages in order
                                       max_connections=1)
            self._started = True
            self.status.connected = True
            return
        info = await self.bot.get_webhook_info()
        if info.url:
            raise TelegramConflictError(
                f"telegram: a webhook is set for this bot ({info.url}), so polling would fail with 409: "
                "another gateway in webhook mode may own this token. If not, delete it with "
                "`curl -X POST https://api.telegram.org/bot<TOKEN>/deleteWebhook` "
                "or set telegram.mode = \"webhook\""
            )
        self._started = True
        if not receive:
            self._running = False
            self.status.connected = True     # sending works; `start_polling` receives
            self.status.details["polling"] = False
            return
        await self.start_polling()

    async def start_polling(self, offset: int | None = None, guard: PollGuard | None = None) -> None:
        """Begin long polling (after `start(receive=False)`, or again after `stop_polling`), from
        `offset` when given; `guard` (see the module docstring) runs before every getUpdates."""
        if self._poll_task is not None and not self._poll_task.done():
            return
        if offset is not None:
            self._offset = offset
        self._guard = guard
        self._running = True
        self._receiving = True
        self.fatal_error = None
        self.status.details["polling"] = True
        # The first poll runs here, so a second poller is refused before start() returns.
        connected = True
        try:
            await self._poll_once(timeout=0)
        except Conflict as exc:
            if guard is None:
                self._running = False
                self._fail(exc)
                raise TelegramConflictError(f"telegram: {CONFLICT_MESSAGE}") from exc
            connected = False       # a handover: the old poller is being fenced; the loop retries
            self.status.last_error = CONFLICT_MESSAGE
            log.warning("telegram: first poll answered 409 (the previous poller is still stopping); retrying")
        except (NetworkError, RetryAfter) as exc:    # transient: the loop retries with backoff
            connected = False
            self.status.last_error = str(exc) or type(exc).__name__
            log.warning("telegram: first poll failed (%s); retrying in the background", exc)
        self._started = True
        self.status.connected = connected
        if self._running:
            self._poll_task = asyncio.create_task(self._poll_loop(), name="telegram-poll")

    async def stop_polling(self, *, confirm: bool = True) -> None:
        """Stop long polling; with `confirm`, one last getUpdates confirms what was handed over
        (a clean handover); without it (the process was fenced) no request is made at all."""
        if self._poll_task is None and not self._running:
            return
        await self._stop_poll_task(confirm=confirm)
        self.status.details["polling"] = False

    async def stop_receiving(self) -> None:
        """Stop polling (or answer webhooks 503); confirm only the updates handed to `on_event`.

        A long poll in flight is cancelled (what it would return stays unconfirmed); an update
        being handed over is finished first, and the rest of its batch is left alone. The last
        `getUpdates(offset=last handed over + 1)` confirms exactly what was taken: Telegram
        delivers everything after it again to the next process.
        """
        if not self._receiving:
            return
        self._receiving = False
        await self._stop_poll_task(confirm=True)
        if self._webhooks_in_flight:
            self._webhooks_idle.clear()
            try:
                await asyncio.wait_for(self._webhooks_idle.wait(), self.drain_timeout)
            except TimeoutError:
                log.warning("telegram: webhook updates still being handed over after %.0fs",
                            self.drain_timeout)

    async def _stop_poll_task(self, *, confirm: bool) -> None:
        self._running = False
        task, self._poll_task = self._poll_task, None
        if task is not None:
            if not self._dispatching:
                task.cancel()           # waiting on getUpdates or a backoff sleep: nothing taken
            done, _ = await asyncio.wait({task}, timeout=self.drain_timeout)
            if not done:
                log.warning("telegram: an update was still being handed over after %.0fs; stopping it",
                            self.drain_timeout)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            elif not task.cancelled() and task.exception() is not None:
                log.warning("telegram: polling ended with %r", task.exception())
            if confirm and self._offset is not None and self.fatal_error is None:
                try:
                    if self._guard is None or await self._guard(self._offset):
                        await self.bot.get_updates(offset=self._offset, timeout=0,
                                                   allowed_updates=["message", "callback_query"])
                except TelegramError as exc:
                    log.warning("telegram: could not confirm handled updates: %s", exc)

    async def stop(self) -> None:
        await self.stop_receiving()
        self.status.connected = False
        try:
            await self.bot.shutdown()
        except TelegramError:
            pass

    async def check_credentials(self) -> tuple[bool, str, str]:
        """getMe with the configured token and API base (for `hermes doctor`)."""
        try:
            me = await self.bot.get_me()
        except InvalidToken:
            return False, "the bot token was refused", "copy the token again from @BotFather (/token)"
        except TelegramError as exc:
            return False, f"cannot reach the Bot API at {self.bot.base_url.split('/bot')[0]}: {exc}", \
                "check network access or [telegram] api_base"
        finally:
            try:
                await self.bot.shutdown()
            except TelegramError:
                pass
        return True, f"token ok: @{me.username}", ""

    def _fail(self, exc: Exception) -> None:
        self.fatal_error = exc
        self.status.connected = False
        self.status.last_error = CONFLICT_MESSAGE if isinstance(exc, Conflict) else str(exc)
        log.error("telegram: %s", self.status.last_error)

    # --- receiving ---------------------------------------------------------------------------

    async def _poll_once(self, timeout: float) -> None:
        if self._guard is not None and not await self._guard(self._offset):
            log.warning("telegram: this process may no longer poll (another one owns polling now); stopping")
            self._running = False
            return
        try:
            updates: list[tuple[int, Update | None]] = [
                (u.update_id, u) for u in await self.bot.get_updates(
                    offset=self._offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES)]
        except TelegramError:
            raise
        except Exception:  # noqa: BLE001 - PTB could not read one of them: read them one by one
            updates = await self._readable_updates()
        for update_id, update in updates:
            if not self._running:
                return      # stopping: the rest stays unconfirmed and comes to the next process
            if update is not None:
                self._dispatching = True
                try:
                    await self._dispatch(update)
                finally:
                    self._dispatching = False
            self._offset = update_id + 1      # confirmed on the next getUpdates

    async def _readable_updates(self) -> list[tuple[int, Update | None]]:
        """The pending updates parsed one at a time; one PTB cannot read is skipped with a warning
        (None) instead of failing every poll from now on (it would never be confirmed)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PTB suggests get_updates, which is what failed
            raw = await self.bot.do_api_request("getUpdates", api_kwargs={
                "offset": self._offset, "timeout": 0, "allowed_updates": ALLOWED_UPDATES})
        found: list[tuple[int, Update | None]] = []
        for item in raw if isinstance(raw, list) else []:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int):
                log.warning("telegram: skipped an update without an update_id")
                continue
            try:
                found.append((update_id, Update.de_json(item, self.bot)))
            except Exception as exc:  # noqa: BLE001 - whatever PTB raises on a malformed object
                log.warning("telegram: update %s is not a readable Telegram update (%s: %s); skipped",
                            update_id, type(exc).__name__, str(exc)[:200])
                found.append((update_id, None))
        return found

    async def _poll_loop(self) -> None:
        failures = 0
        while self._running:
            try:
                await self._poll_once(self.poll_timeout)
            except Conflict as exc:
                if self._guard is None:
                    self._running = False
                    self._fail(exc)
                    return
                failures += 1     # a handover: the previous poller is being fenced
                self.status.connected = False
                self.status.last_error = CONFLICT_MESSAGE
                log.warning("telegram: getUpdates answered 409 during a handover; retrying")
                await asyncio.sleep(min(self.reconnect_max, self.reconnect_base * 2 ** min(failures - 1, 5))
                                    * random.uniform(0.5, 1.0))
                continue
            except InvalidToken as exc:
                self._running = False
                self._fail(exc)
                return
            except RetryAfter as exc:
                self.status.last_error = str(exc)
                await asyncio.sleep(delivery_error(exc).retry_after or 1.0)
                continue
            except (NetworkError, TelegramError) as exc:   # TimedOut is a NetworkError
                failures += 1
                if self.status.connected:
                    log.warning("telegram: polling failed (%s); reconnecting", exc)
                self.status.connected = False
                self.status.last_error = str(exc) or type(exc).__name__
                delay = min(self.reconnect_max, self.reconnect_base * 2 ** min(failures - 1, 10))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))   # jitter
                continue
            if not self.status.connected:
                self.status.connected = True
                self.status.reconnects += 1
                log.info("telegram: polling again after %d failure(s)", failures)
            failures = 0

    async def _dispatch(self, update: Update) -> None:
        try:
            event = await self._to_event(update)
            if event is not None:
                await self.on_event(event)
        except Exception:  # one bad update must not stop the loop for everyone
            log.exception("telegram: handling update %s failed", update.update_id)

    async def _to_event(self, update: Update) -> InboundMessage | ButtonPress | None:
        return await to_event(update, self.bot, self.name, self.max_attachment_bytes, self._callback_data)

    # --- webhook -------------------------------------------------------------------------------

    def attach_routes(self, app: web.Application) -> None:
        """In webhook mode, serve Telegram's POSTs on the path of `webhook_url`."""
        if self.mode != "webhook":
            return
        path = urlsplit(self.webhook_url).path or "/"
        app.router.add_post(path, self._webhook)

    async def _webhook(self, request: web.Request) -> web.Response:
        from aiohttp import web

        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            return web.Response(status=401, text="bad secret token")
        if not self._started or not self._receiving:
            # Telegram retries a non-2xx delivery later (to the next process, after a restart).
            return web.Response(status=503, text="not receiving", headers={"Retry-After": "5"})
        try:
            update = Update.de_json(await request.json(), self.bot)
        except Exception:
            return web.Response(status=400, text="not an update")
        self._webhooks_in_flight += 1
        try:
            await self._dispatch(update)
        finally:
            self._webhooks_in_flight -= 1
            if not self._webhooks_in_flight:
                self._webhooks_idle.set()
        return web.Response(status=200)

    # --- sending -------------------------------------------------------------------------------

    def _callback_token(self, action_id: str, value: str) -> str:
        data = f"{action_id}|{value}"
        if len(data.encode()) <= CALLBACK_DATA_LIMIT:
            return data
        # Too long for Telegram: send a short token and remember what it stands for.
        token = "#" + hashlib.sha256(data.encode()).hexdigest()[:20]
        self._callback_data[token] = data
        while len(self._callback_data) > 4096:
            self._callback_data.popitem(last=False)
        return token

    def _keyboard(self, message: OutboundMessage) -> InlineKeyboardMarkup | None:
        if not message.buttons:
            return None
        row = [InlineKeyboardButton(b.label, callback_data=self._callback_token(b.action_id, b.value))
               for b in message.buttons]
        return InlineKeyboardMarkup([row[i:i + 3] for i in range(0, len(row), 3)])

    async def send(self, message: OutboundMessage) -> SentMessage:
        kwargs: dict[str, Any] = {"chat_id": int(message.chat_id) if message.chat_id.lstrip("-").isdigit()
                                  else message.chat_id,
                                  "reply_markup": self._keyboard(message)}
        if message.thread_id:
            kwargs["message_thread_id"] = int(message.thread_id)
        if message.reply_to:
            kwargs["reply_parameters"] = ReplyParameters(message_id=int(message.reply_to),
                                                         allow_sending_without_reply=True)
        try:
            try:
                sent = await self.bot.send_message(text=to_telegram_html(message.text),
                                                   parse_mode=ParseMode.HTML, **kwargs)
            except BadRequest as exc:
                if not _is_markup_error(exc):
                    raise
                log.info("telegram: formatting refused (%s); sending plain text", exc)
                sent = await self.bot.send_message(text=to_plain(message.text), **kwargs)
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        return SentMessage(platform=self.name, chat_id=message.chat_id, message_id=str(sent.message_id),
                           thread_id=message.thread_id)

    async def edit(self, sent: SentMessage, text: str) -> None:
        target = {"chat_id": sent.chat_id, "message_id": int(sent.message_id)}
        try:
            try:
                await self.bot.edit_message_text(text=to_telegram_html(text), parse_mode=ParseMode.HTML,
                                                 **target)
            except BadRequest as exc:
                if "not modified" in str(exc).lower():
                    return
                if not _is_markup_error(exc):
                    raise
                await self.bot.edit_message_text(text=to_plain(text), **target)
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return
            raise delivery_error(exc) from exc
        except TelegramError as exc:
            raise delivery_error(exc) from exc

    async def typing(self, chat_id: str, thread_id: str | None = None) -> None:
        try:
            await self.bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING,
                                            message_thread_id=int(thread_id) if thread_id else None)
        except TelegramError as exc:      # cosmetic: never fail a turn over it
            log.debug("telegram: typing indicator failed: %s", exc)

    async def set_commands(self, commands: list[tuple[str, str]]) -> None:
        """setMyCommands; Telegram accepts only [a-z0-9_]{1,32} names, so `code-review` is listed as
        `/code_review` (typed, both work). Names that still do not fit are left out, in one log line."""
        valid: list[BotCommand] = []
        seen: set[str] = set()
        left_out: list[str] = []
        for name, description in commands:
            menu_name = name.lstrip("/").lower().replace("-", "_")
            if not COMMAND_NAME.match(menu_name):
                left_out.append(name)
                continue
            if menu_name in seen:
                continue
            seen.add(menu_name)
            valid.append(BotCommand(menu_name, (description or name)[:256]))
        if left_out:
            log.info("telegram: %d command(s) cannot be in the command menu (names are a-z, 0-9, _, at "
                     "most 32): %s; they still work when typed", len(left_out), ", ".join(left_out))
        try:
            await self.bot.set_my_commands(valid[:100])
        except TelegramError as exc:
            raise delivery_error(exc) from exc
