"""Discord adapter on discord.py 2.x: gateway websocket in, REST out, buttons and slash commands.

Connection and reconnection are discord.py's: `Client.connect(reconnect=True)` RESUMEs on
`resume_gateway_url` after a resumable close (Discord replays the missed events, so nothing is
skipped or repeated), and after network errors waits with `ExponentialBackoff` (randomised:
jitter) before resuming. We count reconnects from its `on_resumed`/`on_ready` events.

Rate limits: discord.py reads Discord's rate-limit headers and, on a 429, sleeps `retry_after`
and retries the request itself (up to 5 tries) when the wait is at most `max_ratelimit_timeout`
(30 s here, the library's minimum); a longer wait raises `discord.RateLimited`, which becomes
`DeliveryError(retry_after=...)` for the delivery layer.

Sends are safe to retry: each message carries a `nonce` derived from its idempotency key, and
discord.py sends it with `enforce_nonce`, so Discord answers a repeated post (within a few
minutes) with the message it already created instead of posting again. Without a key discord.py
picks a random nonce per call, so a failure after the request went out (a read timeout, the
connection dropped before the answer) is `maybe_delivered` and the delivery layer does not
send it again.

Shutdown (`stop_receiving`): the gateway does not redeliver a MESSAGE_CREATE this session has
received (a RESUME replays only what the client missed), so a message that arrives while the
gateway stops cannot be left for the next process. It is ignored with an INFO line saying it will
not be answered; only reading channel history at the next start could recover it. A slash
command or button press at that moment is answered with a note, visible only to that user, to
try again in a moment. Events already being handed over finish before `stop_receiving` returns.

Several gateway processes on one bot: every connection of a shard receives every event (two
unsharded processes would each receive every message), so each shard's gateway connection is a
duty of one process (`[discord] shard_count`, 1 by default; DMs arrive on shard 0; see
adapters/discord_shards.py). `start(receive=False)` logs in for REST only (sending, editing,
slash-command registration work from any process); `start_gateway(shard)` opens a shard's
websocket when this process gets its duty and `stop_gateway(shard)` closes it (the HTTP session
for sending stays) when it loses it. A message both connections saw during a handover is one
inbox entry (the dedup key is the message id).

`api_base` and `gateway_url` (self-hosted proxies, test servers) are class attributes in
discord.py — `discord.http.Route.BASE` and `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`
— so setting them changes them for the whole process. The adapter sets them only when
configured, right before it logs in; one gateway process runs one Discord bot, so there is no
second client to disturb.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import OrderedDict
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands

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
from adapters.discord_shards import GatedClient, IdentifyGate, ShardConnection
from adapters.markdown import to_discord, to_plain

log = logging.getLogger(__name__)

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
CUSTOM_ID_LIMIT = 100
CUSTOM_ID_PREFIX = "hermes|"
COMMAND_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")
RESTARTING_TEXT = "I'm restarting and did not take this; please try again in a moment."
STYLES = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger,
          "default": discord.ButtonStyle.secondary}


NONCE_CHARS = 25      # Discord's limit for a string nonce


def _skip_unreadable_events(client: discord.Client) -> None:
    """Make a gateway event discord.py cannot read (a MESSAGE_CREATE whose `mentions` is not a list,
    say) a warning that skips it: the parser's exception would otherwise end the connection for
    good, since the client reconnects only after network errors. The parsers are the connection
    state's table, by event name, that discord.py's websocket calls for each dispatch."""
    parsers: dict[str, Any] = client._connection.parsers
    for event, parse in list(parsers.items()):
        parsers[event] = _guarded(event, parse)


def _guarded(event: str, parse: Any) -> Any:
    def read(data: Any) -> None:
        try:
            parse(data)
        except Exception as exc:  # noqa: BLE001 - whatever a malformed payload makes the parser raise
            ident = data.get("id") if isinstance(data, dict) else None
            log.warning("discord: a %s event%s is not readable (%s: %s); skipped", event,
                        f" ({str(ident)[:40]})" if ident is not None else "", type(exc).__name__, str(exc)[:200])
    return read


def message_nonce(idempotency_key: str) -> str | None:
    """The nonce for a message with this idempotency key (same key, same nonce); None without one.

    Each OutboundMessage is one Discord message and the delivery layer gives every chunk of a
    reply its own key, so a nonce per key is a nonce per posted message.
    """
    if not idempotency_key:
        return None
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:NONCE_CHARS]


def delivery_error(exc: Exception, *, deduplicated: bool = False) -> DeliveryError:
    """A discord.py failure as the platform-neutral DeliveryError.

    `deduplicated`: the request carried a nonce Discord enforces, so even a failure after it was
    sent is safe to retry (never `maybe_delivered`).
    """
    if isinstance(exc, discord.RateLimited):
        return DeliveryError(f"discord rate limit ({exc.retry_after:.1f}s)", retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException):
        if exc.status == 429:       # a 429 discord.py did not handle (e.g. from a proxy/Cloudflare)
            retry = exc.response.headers.get("Retry-After") if exc.response is not None else None
            try:
                seconds = float(retry) if retry else 5.0
            except ValueError:
                seconds = 5.0
            return DeliveryError(f"discord rate limit: {exc.text}", retry_after=seconds)
        if isinstance(exc, (discord.Forbidden, discord.NotFound)) or 400 <= exc.status < 500:
            return DeliveryError(f"discord refused ({exc.status}): {exc.text}", permanent=True)
        return DeliveryError(f"discord error ({exc.status}): {exc.text}")
    if not deduplicated and failed_after_sending(exc):
        return sent_without_answer("discord", exc)
    return DeliveryError(f"discord unreachable: {type(exc).__name__}: {exc}")


class DiscordAdapter(Adapter):
    name = "discord"
    # 2000 characters per message; Discord allows 5 edits per 5 s per channel.
    limits = PlatformLimits(max_message_chars=2000, min_edit_interval=1.2, supports_edit=True,
                            supports_buttons=True, supports_threads=True,
                            chat_send_interval=1.0, send_interval=1 / 50)

    def __init__(self, on_event: InboundHandler, *, token: str, api_base: str = "", gateway_url: str = "",
                 max_attachment_bytes: int = MAX_ATTACHMENT_BYTES, ready_timeout: float = 60.0,
                 guild_ready_timeout: float = 2.0, shard_count: int = 1,
                 identify_gate: IdentifyGate | None = None) -> None:
        super().__init__(on_event)
        if not token:
            raise ValueError("discord.token is empty: set it to the bot token from the Developer Portal")
        if shard_count < 1:
            raise ValueError(f"discord.shard_count is {shard_count}: it must be 1 or more")
        self.api_base = api_base.rstrip("/")
        self.gateway_url = gateway_url
        self.max_attachment_bytes = max_attachment_bytes
        self.ready_timeout = ready_timeout
        self.shard_count = shard_count
        self._token = token
        self.identify_gate = identify_gate      # may be set later (the gateway wires the store's)
        self._guild_ready_timeout = guild_ready_timeout
        # the client for REST (sending, editing, slash-command registration); an unsharded bot's
        # gateway connection too
        self.client = self._new_client(None)
        self.tree = app_commands.CommandTree(self.client)
        self._shards: dict[int, ShardConnection] = {}
        self._shard_trees: dict[int, app_commands.CommandTree[Any]] = {}
        self._custom_ids: OrderedDict[str, str] = OrderedDict()
        self._receiving = True            # until stop_receiving()
        self._in_flight = 0               # handlers handing an event to on_event
        self._idle = asyncio.Event()
        self.drain_timeout = 10.0

    def _new_client(self, shard_id: int | None) -> GatedClient:
        intents = discord.Intents.default()
        intents.message_content = True          # privileged: enable it in the Developer Portal
        sharding: dict[str, int] = {} if shard_id is None else {"shard_id": shard_id,
                                                                "shard_count": self.shard_count}
        # READY waits `guild_ready_timeout` after the last GUILD_CREATE before firing on_ready.
        client = GatedClient(intents=intents, max_ratelimit_timeout=30.0, identify_gate=lambda: self.identify_gate,
                             guild_ready_timeout=self._guild_ready_timeout, **sharding)
        key = 0 if shard_id is None else shard_id

        async def on_ready() -> None:
            await self.on_ready(key)

        async def on_resumed() -> None:
            await self.on_resumed()

        client.event(on_ready)
        client.event(on_resumed)
        client.event(self.on_disconnect)
        client.event(self.on_message)
        client.event(self.on_interaction)
        _skip_unreadable_events(client)
        return client

    # --- lifecycle -------------------------------------------------------------------------

    def _apply_endpoints(self) -> None:
        # Class attributes, process-wide (see the module docstring): set only when configured.
        if self.api_base:
            discord.http.Route.BASE = self.api_base
        if self.gateway_url:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    @property
    def single_consumer(self) -> bool:
        """One gateway connection per shard: only one process may hold it (see the module docstring)."""
        return True

    @property
    def shard_ids(self) -> list[int]:
        return list(range(self.shard_count))

    async def start(self, *, receive: bool = True) -> None:
        """Log in (REST); open every shard's gateway websocket too unless `receive` is False."""
        self._apply_endpoints()
        try:
            await self.client.login(self._token)
        except discord.LoginFailure as exc:
            await self.client.close()
            raise RuntimeError(f"discord: the bot token was refused: {exc}") from exc
        self.status.connected = True          # sending works; the gateway connections may be elsewhere
        self._show_shards()
        if not receive:
            return
        try:
            for shard_id in self.shard_ids:
                await self.start_gateway(shard_id)
        except RuntimeError:
            await self.stop()
            raise

    async def start_gateway(self, shard_id: int = 0) -> None:
        """Open one shard's gateway websocket (after `start(receive=False)`, or again after
        `stop_gateway`) and wait for READY; RuntimeError when it does not come within `ready_timeout`."""
        if shard_id not in self.shard_ids:
            raise ValueError(f"discord: no shard {shard_id} (shard_count is {self.shard_count})")
        shard = self._shards.get(shard_id)
        if shard is not None and shard.open:
            return
        if self.shard_count == 1:
            shard = ShardConnection(self.client, None, owns_client=False)
        else:
            client = self._new_client(shard_id)
            tree = app_commands.CommandTree(client)       # slash commands arrive on every shard
            for command in self.tree.get_commands():
                tree.add_command(command)
            self._shard_trees[shard_id] = tree
            try:
                await client.login(self._token)
            except (discord.DiscordException, OSError) as exc:
                await client.close()
                raise RuntimeError(f"discord: shard {shard_id} could not log in: {exc}") from exc
            shard = ShardConnection(client, shard_id, owns_client=True)
        self._shards[shard_id] = shard
        self._receiving = True
        try:
            await shard.connect(self.ready_timeout)
        except RuntimeError as exc:
            self._shards.pop(shard_id, None)
            self.status.last_error = str(exc)
            self._show_shards()
            raise
        self._show_shards()

    async def stop_gateway(self, shard_id: int | None = None) -> None:
        """Close one shard's gateway websocket (every shard's when None) and stop reconnecting;
        REST (sending) keeps working."""
        for key in list(self._shards) if shard_id is None else [shard_id]:
            shard = self._shards.pop(key, None)
            self._shard_trees.pop(key, None)
            if shard is not None:
                await shard.close()
        self._show_shards()

    def _show_shards(self) -> None:
        owned = sorted(key for key, shard in self._shards.items() if shard.open)
        self.status.details["gateway"] = bool(owned)
        if self.shard_count > 1:
            self.status.details["shards"] = ",".join(map(str, owned)) or "none"

    async def check_credentials(self) -> tuple[bool, str, str]:
        """GET /users/@me with the token (for `hermes doctor`); does not open the gateway."""
        self._apply_endpoints()
        try:
            await self.client.login(self._token)
            user = self.client.user
            return True, f"token ok: {user.name if user else '?'}", ""
        except discord.LoginFailure:
            return False, "the bot token was refused", "reset the token in the Developer Portal → Bot and copy it"
        except (discord.HTTPException, OSError) as exc:
            return False, f"cannot reach the Discord API: {exc}", "check network access or [discord] api_base"
        finally:
            await self.client.close()

    async def stop_receiving(self) -> None:
        """Ignore new events (Discord will not redeliver them); finish the ones being handed over."""
        self._receiving = False
        if self._in_flight:
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), self.drain_timeout)
            except TimeoutError:
                log.warning("discord: %d event(s) still being handed over after %.0fs",
                            self._in_flight, self.drain_timeout)

    def _enter(self) -> bool:
        if not self._receiving:
            return False
        self._in_flight += 1
        return True

    def _leave(self) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    async def _refuse_interaction(self, interaction: discord.Interaction, what: str) -> None:
        log.info("discord: %s from %s arrived while stopping; told the user to try again",
                 what, interaction.user.id)
        try:
            await interaction.response.send_message(RESTARTING_TEXT, ephemeral=True)
        except Exception as exc:  # noqa: BLE001 - a courtesy; the gateway is going down anyway
            log.debug("discord: could not answer interaction %s: %s", interaction.id, exc)

    async def stop(self) -> None:
        self._receiving = False
        await self.stop_gateway()
        await self.client.close()
        self.status.connected = False

    async def on_ready(self, shard_id: int = 0) -> None:
        shard = self._shards.get(shard_id)
        if shard is None:
            return
        if shard.ready.is_set():             # a new session after the old one could not resume
            self.status.reconnects += 1
        shard.ready.set()
        self.status.connected = True
        user = shard.client.user
        if user:
            self.status.details["user"] = f"{user.name} ({user.id})"

    async def on_resumed(self) -> None:
        self.status.reconnects += 1
        self.status.connected = True

    async def on_disconnect(self) -> None:
        self.status.connected = False

    # --- receiving ---------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        if not self._enter():
            log.info("discord: message %s in channel %s arrived while the gateway is stopping; it will "
                     "not be answered (Discord does not deliver it again)", message.id, message.channel.id)
            return
        try:
            await self.on_event(await self._inbound(message, me))
        except Exception:
            log.exception("discord: handling message %s failed", message.id)
        finally:
            self._leave()

    async def _inbound(self, message: discord.Message, me: discord.ClientUser) -> InboundMessage:
        channel = message.channel
        if isinstance(channel, discord.Thread):
            chat_id, thread_id = str(channel.parent_id), str(channel.id)
        else:
            chat_id, thread_id = str(channel.id), None
        mention = re.compile(rf"<@!?{me.id}>")
        mentioned = any(u.id == me.id for u in message.mentions) or bool(mention.search(message.content))
        text = mention.sub(" ", message.content)
        text = re.sub(r"[ \t]{2,}", " ", text).strip() if mentioned else message.content
        resolved = message.reference.resolved if message.reference else None
        return InboundMessage(
            platform=self.name,
            chat_id=chat_id,
            user_id=str(message.author.id),
            display_name=message.author.display_name,
            text=text,
            message_id=str(message.id),
            thread_id=thread_id,
            is_dm=message.guild is None,
            mentioned=mentioned,
            reply_to_bot=isinstance(resolved, discord.Message) and resolved.author.id == me.id,
            reply_to=str(message.reference.message_id) if message.reference and message.reference.message_id else None,
            attachments=await self._attachments(message),
            dedup_key=str(message.id),
        )

    async def _attachments(self, message: discord.Message) -> tuple[Attachment, ...]:
        result = []
        for a in message.attachments:
            mime = a.content_type or "application/octet-stream"
            kind = "image" if mime.startswith("image/") else "audio" if mime.startswith("audio/") else \
                "video" if mime.startswith("video/") else "document"
            data: bytes | None = None
            if a.size <= self.max_attachment_bytes:
                try:
                    data = await a.read()
                except (discord.HTTPException, discord.NotFound) as exc:
                    log.warning("discord: could not download %s: %s", a.filename, exc)
            result.append(Attachment(kind=kind, filename=a.filename, mime_type=mime.split(";")[0],  # type: ignore[arg-type]
                                     size=a.size, url=a.url, data=data))
        return tuple(result)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Button presses on our messages (slash commands are handled by the command tree)."""
        if interaction.type != discord.InteractionType.component:
            return
        custom_id = str((interaction.data or {}).get("custom_id", ""))
        raw = self._custom_ids.get(custom_id, custom_id)
        if not raw.startswith(CUSTOM_ID_PREFIX):
            return
        if not self._enter():
            await self._refuse_interaction(interaction, "a button press")
            return
        try:
            await self._take_press(interaction, raw)
        finally:
            self._leave()

    async def _take_press(self, interaction: discord.Interaction, raw: str) -> None:
        action_id, _, value = raw[len(CUSTOM_ID_PREFIX):].partition("|")
        try:
            await interaction.response.defer()      # acknowledges the click (no visible change)
        except Exception as exc:                    # the press still counts if the ack failed
            log.warning("discord: could not acknowledge interaction: %s", exc)
        channel = interaction.channel
        if isinstance(channel, discord.Thread):
            chat_id, thread_id = str(channel.parent_id), str(channel.id)
        else:
            chat_id, thread_id = str(interaction.channel_id or ""), None
        await self.on_event(ButtonPress(
            platform=self.name, chat_id=chat_id, user_id=str(interaction.user.id), action_id=action_id,
            value=value, message_id=str(interaction.message.id) if interaction.message else "",
            thread_id=thread_id))

    # --- sending -------------------------------------------------------------------------------

    def _custom_id(self, action_id: str, value: str) -> str:
        raw = f"{CUSTOM_ID_PREFIX}{action_id}|{value}"
        if len(raw) <= CUSTOM_ID_LIMIT:
            return raw
        token = "hermes#" + hashlib.sha256(raw.encode()).hexdigest()[:32]
        self._custom_ids[token] = raw
        while len(self._custom_ids) > 4096:
            self._custom_ids.popitem(last=False)
        return token

    def _view(self, message: OutboundMessage) -> discord.ui.View | None:
        if not message.buttons:
            return None
        view = discord.ui.View(timeout=None)
        for button in message.buttons[:25]:
            view.add_item(discord.ui.Button(label=button.label[:80], style=STYLES.get(button.style,
                                            discord.ButtonStyle.secondary),
                                            custom_id=self._custom_id(button.action_id, button.value)))
        # We receive presses in on_interaction; a stopped view is not kept in discord.py's view
        # store, so posting many approval prompts does not grow memory.
        view.stop()
        return view

    def _channel(self, message_or_chat: str) -> discord.PartialMessageable:
        return self.client.get_partial_messageable(int(message_or_chat))

    async def send(self, message: OutboundMessage) -> SentMessage:
        target = self._channel(message.thread_id or message.chat_id)
        kwargs: dict[str, Any] = {"allowed_mentions": discord.AllowedMentions(everyone=False, roles=False,
                                                                               users=True, replied_user=False)}
        view = self._view(message)
        if view is not None:
            kwargs["view"] = view
        if message.reply_to:
            kwargs["reference"] = discord.MessageReference(message_id=int(message.reply_to),
                                                           channel_id=target.id, fail_if_not_exists=False)
        nonce = message_nonce(message.idempotency_key)
        if nonce is not None:
            kwargs["nonce"] = nonce         # discord.py sends it with enforce_nonce=True
        try:
            try:
                sent = await target.send(content=to_discord(message.text), **kwargs)
            except discord.HTTPException as exc:
                # Discord does not reject Markdown, but a body it refuses as invalid gets one plain retry
                # (same nonce: the refused post created nothing).
                if exc.status != 400 or exc.code != 50035:
                    raise
                sent = await target.send(content=to_plain(message.text), **kwargs)
        except (TimeoutError, discord.DiscordException, aiohttp.ClientError, OSError) as exc:
            raise delivery_error(exc, deduplicated=nonce is not None) from exc
        return SentMessage(platform=self.name, chat_id=message.chat_id, message_id=str(sent.id),
                           thread_id=message.thread_id)

    async def edit(self, sent: SentMessage, text: str) -> None:
        target = self._channel(sent.thread_id or sent.chat_id)
        try:
            await target.get_partial_message(int(sent.message_id)).edit(content=to_discord(text))
        except (TimeoutError, discord.DiscordException, aiohttp.ClientError, OSError) as exc:
            raise delivery_error(exc) from exc

    async def typing(self, chat_id: str, thread_id: str | None = None) -> None:
        try:
            await self._channel(thread_id or chat_id).typing()      # one trigger, lasts ~10 s
        except (discord.DiscordException, OSError) as exc:
            log.debug("discord: typing indicator failed: %s", exc)

    async def set_commands(self, commands: list[tuple[str, str]]) -> None:
        """Register each command as a global application (slash) command with one `args` option.

        Invocations arrive as `InboundMessage(text="/name args")`; the interaction is answered at
        once with a short note visible only to the user, and the reply comes as a normal message.
        """
        self.tree.clear_commands(guild=None)
        for name, description in commands[:100]:
            name = name.lstrip("/").lower()
            if not COMMAND_NAME.match(name):
                log.info("discord: /%s is not a valid slash command name; it still works typed", name)
                continue
            self.tree.add_command(self._command(name, (description or name)[:100]))
        for tree in self._shard_trees.values():           # the shards open now answer them too
            tree.clear_commands(guild=None)
            for command in self.tree.get_commands():
                tree.add_command(command)
        try:
            await self.tree.sync()
        except (discord.DiscordException, OSError) as exc:
            raise delivery_error(exc) from exc

    def _command(self, name: str, description: str) -> app_commands.Command[Any, Any, Any]:
        adapter = self

        async def invoke(interaction: discord.Interaction, args: str = "") -> None:
            if not adapter._enter():
                await adapter._refuse_interaction(interaction, f"/{name}")
                return
            try:
                await take(interaction, args)
            finally:
                adapter._leave()

        async def take(interaction: discord.Interaction, args: str) -> None:
            await interaction.response.send_message(f"/{name} {args}".strip(), ephemeral=True)
            channel = interaction.channel
            if isinstance(channel, discord.Thread):
                chat_id, thread_id = str(channel.parent_id), str(channel.id)
            else:
                chat_id, thread_id = str(interaction.channel_id or ""), None
            await adapter.on_event(InboundMessage(
                platform=adapter.name, chat_id=chat_id, user_id=str(interaction.user.id),
                display_name=interaction.user.display_name, text=f"/{name} {args}".strip(),
                message_id=str(interaction.id), thread_id=thread_id, is_dm=interaction.guild_id is None,
                mentioned=True, dedup_key=str(interaction.id)))

        return app_commands.Command(name=name, description=description, callback=invoke)
