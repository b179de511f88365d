"""Telegram updates read as platform-neutral events: a message (our @mention and `/cmd@ourbot`
stripped, whether we were mentioned or replied to, its files downloaded under the size cap) or
a press of one of our inline buttons."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from telegram import Bot, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import TelegramError

from adapters.base import Attachment, ButtonPress, InboundMessage

log = logging.getLogger("adapters.telegram")


async def to_event(update: Update, bot: Bot, platform: str, max_bytes: int,
                   callback_data: Mapping[str, str]) -> InboundMessage | ButtonPress | None:
    """The platform-neutral event for one update (None: nothing for us, e.g. a bot's message)."""
    if update.callback_query is not None:
        return await button_press(update, platform, callback_data)
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    if message.chat is None:  # PTB reads such an object; Telegram never sends one
        log.warning("telegram: update %s has a message without a chat; skipped", update.update_id)
        return None
    text, mentioned = strip_mention(message, bot)
    reply = message.reply_to_message
    reply_to_bot = bool(reply and reply.from_user and reply.from_user.id == bot.id)
    return InboundMessage(
        platform=platform,
        chat_id=str(message.chat.id),
        user_id=str(message.from_user.id),
        display_name=message.from_user.full_name,
        text=text,
        message_id=str(message.message_id),
        thread_id=str(message.message_thread_id) if message.is_topic_message and message.message_thread_id else None,
        is_dm=message.chat.type == ChatType.PRIVATE,
        mentioned=mentioned,
        reply_to_bot=reply_to_bot,
        reply_to=str(reply.message_id) if reply else None,
        attachments=await attachments(message, bot, max_bytes),
        dedup_key=str(update.update_id),
    )


def strip_mention(message: Message, bot: Bot) -> tuple[str, bool]:
    """The text without `@ourbot` (and `/cmd@ourbot` → `/cmd`), and whether we were mentioned."""
    text = message.text or message.caption or ""
    if message.text is not None:
        entities = message.parse_entities()
    else:
        entities = message.parse_caption_entities()
    username = (bot.username or "").lower()
    cuts: list[tuple[int, int, str]] = []   # python-string spans to replace
    mentioned = False
    search_from = 0
    for entity, value in sorted(entities.items(), key=lambda kv: kv[0].offset):
        ours = (
            (entity.type == MessageEntity.MENTION and value.lower() == f"@{username}")
            or (entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id)
            or (entity.type == MessageEntity.BOT_COMMAND and value.lower().endswith(f"@{username}"))
        )
        if not ours:
            continue
        start = text.find(value, search_from)
        if start < 0:
            continue
        search_from = start + len(value)
        mentioned = True
        replacement = value.split("@")[0] if entity.type == MessageEntity.BOT_COMMAND else ""
        cuts.append((start, start + len(value), replacement))
    for start, end, replacement in reversed(cuts):
        text = text[:start] + replacement + text[end:]
    if cuts:
        text = re.sub(r"[ \t]{2,}", " ", text).strip()
        text = re.sub(r"^[,:;]\s*", "", text)
    return text, mentioned


async def attachments(message: Message, bot: Bot, max_bytes: int) -> tuple[Attachment, ...]:
    """The message's files, each downloaded when it is at most `max_bytes`."""
    found: list[tuple[str, str, str, str, int | None]] = []   # kind, file_id, name, mime, size
    if message.photo:
        fitting = [p for p in message.photo if (p.file_size or 0) <= max_bytes]
        best = max(fitting or message.photo, key=lambda p: p.width * p.height)
        found.append(("image", best.file_id, f"photo_{message.message_id}.jpg", "image/jpeg", best.file_size))
    if message.document:
        d = message.document
        mime = d.mime_type or "application/octet-stream"
        kind = "image" if mime.startswith("image/") else "document"
        found.append((kind, d.file_id, d.file_name or f"document_{message.message_id}", mime, d.file_size))
    for media, kind in ((message.audio, "audio"), (message.voice, "audio"), (message.video, "video")):
        if media is not None:
            name = getattr(media, "file_name", None) or f"{kind}_{message.message_id}"
            found.append((kind, media.file_id, name, media.mime_type or "application/octet-stream",
                          media.file_size))
    attachments = []
    for kind, file_id, name, mime, size in found:
        data: bytes | None = None
        if size is None or size <= max_bytes:
            try:
                tg_file = await bot.get_file(file_id)
                if (tg_file.file_size or 0) <= max_bytes:
                    data = bytes(await tg_file.download_as_bytearray())
                    size = len(data)
            except TelegramError as exc:
                log.warning("telegram: could not download %s: %s", name, exc)
        else:
            log.info("telegram: %s is %s bytes, over the %s byte cap: not downloaded",
                     name, size, max_bytes)
        attachments.append(Attachment(kind=kind, filename=name, mime_type=mime, size=size or 0,
                                      data=data))  # type: ignore[arg-type]
    return tuple(attachments)


async def button_press(update: Update, platform: str, callback_data: Mapping[str, str]) -> ButtonPress | None:
    """A press of one of our buttons; `callback_data` maps our short tokens back to their data."""
    query = update.callback_query
    assert query is not None
    if query.from_user is None:  # PTB reads such an object; Telegram never sends one
        log.warning("telegram: update %s has a button press from nobody; skipped", update.update_id)
        return None
    try:
        await query.answer()      # stops the spinner on the user's button
    except TelegramError as exc:
        log.debug("telegram: answerCallbackQuery failed: %s", exc)
    raw = callback_data.get(query.data or "", query.data or "")
    action_id, _, value = raw.partition("|")
    message = query.message
    chat_id = str(message.chat.id) if message else ""
    thread = getattr(message, "message_thread_id", None) if isinstance(message, Message) else None
    return ButtonPress(platform=platform, chat_id=chat_id, user_id=str(query.from_user.id),
                       action_id=action_id, value=value,
                       message_id=str(message.message_id) if message else "",
                       thread_id=str(thread) if thread else None)
