"""Delivery: replies split to each platform's limit, sent with retries, streamed by edits.

- `split_message` cuts Markdown at paragraph, then line, then word boundaries; a cut inside a
  code fence closes the fence at the end of the chunk and reopens it (same info string) at the
  start of the next, so every chunk renders on its own.
- `Delivery.send` retries `DeliveryError` with exponential backoff and jitter, honouring the
  platform's `retry_after`; permanent errors are not retried. A message that still cannot be
  delivered is kept in the store (`undelivered`) and logged, never lost. Successful sends are
  recorded by idempotency key, so a replayed turn never posts twice.
- Sends are at most once: a failure the adapter marks `maybe_delivered` (the request reached the
  platform but no answer came back: a read timeout, a dropped connection) is not retried, since
  Telegram and Slack have no idempotency key and a retry could post the message twice. It is
  kept in `undelivered` with an error saying it may already have been delivered, and logged at
  WARNING; a later send of the same key and text (a streamed reply rendered again) is skipped.
  Adapters whose platform deduplicates retries (Discord's message nonce) do not mark it. Edits
  are retried regardless: setting a message to the same text twice is harmless.
- `StreamingReply` shows a reply while the model writes it: the first message is posted as soon
  as text arrives and edited as more arrives, no more often than `limits.min_edit_interval`;
  a typing indicator runs while the model thinks and tools run.
- Answered once across crashes: a reply's parts have the same idempotency keys in every run of
  its turn, so when a re-run (after a crash) reaches a part an earlier run already posted, that
  message is edited into the new text instead of being posted again. Given `ends_inbox`, the
  reply's last post records its message id in the same transaction that ends the inbox row
  (`ended` says it did); the dispatcher ends the row otherwise (an answer whose last step was
  an edit, a failure notice).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.base import Adapter, OutboundMessage, SentMessage
from agent.events import Event, TextDelta, ToolFinished, ToolStarted
from gateway.metrics import Metrics
from gateway.store import StateStore
from gateway.store.delivery import SentRow

log = logging.getLogger(__name__)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
TYPING_EVERY = 4.0
MAYBE_DELIVERED_NOTE = "may already have been delivered; not retried, so it is never posted twice"
MAYBE_DELIVERED_KEYS = 4096      # remembered keys of sends that may have been delivered


# -- splitting ----------------------------------------------------------------------------------
def _fence_states(lines: list[str]) -> list[tuple[str | None, str | None]]:
    """For each line, the fence opener line in force before and after it (None outside fences)."""
    states: list[tuple[str | None, str | None]] = []
    opener: str | None = None
    for line in lines:
        before = opener
        match = FENCE.match(line.rstrip("\n"))
        if match:
            marker = match.group(1)
            if opener is None:
                opener = line.rstrip("\n").strip()
            else:
                open_marker = FENCE.match(opener).group(1)  # type: ignore[union-attr]
                if marker[0] == open_marker[0] and len(marker) >= len(open_marker) and not match.group(2).strip():
                    opener = None
        states.append((before, opener))
    return states


def _closer(opener: str) -> str:
    return FENCE.match(opener).group(1)  # type: ignore[union-attr]


def close_open_fence(text: str) -> str:
    """`text` with a closing fence appended when it ends inside a code block (for partial views)."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    opener = _fence_states(lines)[-1][1]
    if opener is None:
        return text
    return text + ("" if text.endswith("\n") else "\n") + _closer(opener)


def split_message(text: str, limit: int) -> list[str]:
    """Split Markdown into chunks of at most `limit` characters without breaking code fences."""
    if limit < 40:
        raise ValueError(f"message limit {limit} is too small to split Markdown sensibly")
    text = text.strip("\n")
    if not text.strip():
        return []
    if len(text) <= limit:
        return [text]
    lines = text.splitlines(keepends=True)
    states = _fence_states(lines)
    chunks: list[str] = []
    i = 0
    while i < len(lines):
        opener = states[i][0]
        prefix = opener + "\n" if opener else ""
        size = len(prefix)
        j = i
        paragraph_end: int | None = None
        while j < len(lines):
            after = states[j][1]
            line = lines[j] if lines[j].endswith("\n") else lines[j] + "\n"
            tail = len(_closer(after)) if after else 0
            if size + len(line) + tail > limit:
                break
            size += len(line)
            j += 1
            if not lines[j - 1].strip() and states[j - 1][1] is None:
                paragraph_end = j
        if j == i:
            # one line longer than the room left: cut it at a space (or anywhere) and carry on
            line = lines[i]
            inside = states[i][0] is not None and states[i][1] is not None
            room = limit - len(prefix) - ((len(_closer(opener)) + 1) if inside and opener else 0) - 1
            cut = line.rfind(" ", 0, room)
            cut = cut if cut > room // 2 else room
            head, rest = line[:cut], line[cut:].lstrip(" ")
            body = prefix + head
            if inside and opener:
                body += "\n" + _closer(opener)
            chunks.append(body.rstrip())
            lines[i] = rest
            states[i] = (states[i][0], states[i][1])
            continue
        if j < len(lines) and paragraph_end is not None and paragraph_end > i:
            consumed = len(prefix) + sum(len(x) for x in lines[i:paragraph_end])
            if consumed >= limit // 2:
                j = paragraph_end
        body = prefix + "".join(lines[i:j])
        after = states[j - 1][1]
        if after:
            body = body.rstrip("\n") + "\n" + _closer(after)
        body = body.strip("\n")
        if body.strip():
            chunks.append(body)
        i = j
    return chunks


# -- sending with retries -----------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5              # tries in all, the first included
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class GaveUp(Exception):
    """The last error of a call that failed for good, and how many attempts were made."""

    def __init__(self, error: BaseException, attempts: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


class Delivery:
    """Sends and edits through adapters, with retries, idempotency and a dead-letter table."""

    def __init__(self, store: StateStore, metrics: Metrics, policy: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.store = store
        self.metrics = metrics
        self.policy = policy
        self._sleep = sleep
        # idempotency key -> digest of the text of sends that may have been delivered (never sent
        # again as they were); bounded, and only failures land here.
        self._maybe_delivered: OrderedDict[str, bytes] = OrderedDict()

    def _delay(self, attempt: int, error: BaseException) -> float:
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.policy.max_retry_after) + random.uniform(0, 0.1)
        backoff = min(self.policy.base_delay * (2 ** attempt), self.policy.max_delay)
        return backoff * (0.5 + random.random() / 2)

    async def _retrying(self, what: str, call: Callable[[], Awaitable[Any]], *,
                        at_most_once: bool = False) -> Any:
        """`call()` with retries; raises GaveUp. `at_most_once`: a `maybe_delivered` failure is final."""
        last: BaseException | None = None
        attempts = 0
        for attempt in range(self.policy.attempts):
            attempts = attempt + 1
            try:
                return await call()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - adapters may raise anything; DeliveryError says how
                last = exc
                if getattr(exc, "permanent", False) or isinstance(exc, NotImplementedError):
                    break
                if at_most_once and getattr(exc, "maybe_delivered", False):
                    break
                if attempt + 1 < self.policy.attempts:
                    delay = self._delay(attempt, exc)
                    log.info("%s failed (%s); retry %d/%d in %.2fs", what, exc, attempt + 1,
                             self.policy.attempts - 1, delay)
                    await self._sleep(delay)
        assert last is not None
        raise GaveUp(last, attempts) from last

    async def already_sent(self, key: str) -> SentMessage | None:
        if not key:
            return None
        row = await self.store.sent_get(key)
        return SentMessage(row.platform, row.chat_id, row.message_id, row.thread_id) if row else None

    async def send(self, adapter: Adapter, message: OutboundMessage, *,
                   ends_inbox: int | None = None) -> SentMessage | None:
        """Post one message; None when it could not be delivered (it is then kept in the store).

        `ends_inbox`: this is the last message of that inbox row's answer; its platform message id
        is recorded in the same transaction that ends the row (what is left between the answer
        reaching the chat and the row ending is the platform's send call itself)."""
        sent, _ = await self.send_once(adapter, message, ends_inbox=ends_inbox)
        return sent

    async def send_once(self, adapter: Adapter, message: OutboundMessage, *,
                        ends_inbox: int | None = None) -> tuple[SentMessage | None, bool]:
        """`send`, and whether the message was posted before under its idempotency key (then it is
        not posted again and `ends_inbox` is left to the caller)."""
        previous = await self.already_sent(message.idempotency_key)
        if previous is not None:
            return previous, True
        key = message.idempotency_key
        if key and self._maybe_delivered.get(key) == _digest(message.text):
            # This very message may be on the user's screen already (and is kept in undelivered).
            log.info("%s: not sending %s to chat %s again: it may already have been delivered",
                     adapter.name, key, message.chat_id)
            return None, False
        async def post() -> SentMessage:
            await self._pace(adapter, message.chat_id)
            return await adapter.send(message)

        try:
            sent = await self._retrying(f"{adapter.name}: send to {message.chat_id}", post, at_most_once=True)
        except GaveUp as failure:
            if getattr(failure.error, "maybe_delivered", False) and key:
                self._maybe_delivered[key] = _digest(message.text)
                self._maybe_delivered.move_to_end(key)
                while len(self._maybe_delivered) > MAYBE_DELIVERED_KEYS:
                    self._maybe_delivered.popitem(last=False)
            await self.keep_undelivered(adapter.name, message, failure.error, attempts=failure.attempts)
            return None, False
        self.metrics.messages_out.labels(adapter.name).inc()
        if message.idempotency_key or ends_inbox is not None:
            await self.store.sent_record(message.idempotency_key, SentRow(
                sent.platform or adapter.name, sent.chat_id, sent.message_id, sent.thread_id), ends_inbox=ends_inbox)
        return sent, False

    async def _pace(self, adapter: Adapter, chat_id: str) -> None:
        """Wait for the platform's rate limits on new messages, shared by every process of the
        cluster (gateway/store/pacing.py): the chat's, then the whole bot's. A store that cannot
        be reached does not hold the message back: the platform's 429 is retried anyway."""
        limits = adapter.limits
        try:
            if limits.chat_send_interval > 0:
                wait = await self.store.pace_reserve(f"{adapter.name}:{chat_id}", limits.chat_send_interval,
                                                     limits.send_burst)
                if wait > 0:
                    await asyncio.sleep(wait)
        except Exception as exc:  # noqa: BLE001 - pacing is a courtesy to the platform, not a gate
            log.warning("%s: could not pace a send through the store: %s", adapter.name, exc)
        await self._pace_bot(adapter)

    async def _pace_bot(self, adapter: Adapter) -> None:
        """Wait for the whole bot's budget (Telegram: about 30 requests a second), which new
        messages and edits share; a message's own edits are spaced by `min_edit_interval` where
        its turn runs, and only that process edits it."""
        interval = adapter.limits.send_interval
        if interval <= 0:
            return
        try:
            burst = max(1, round(1 / interval))      # a second's worth at once
            wait = await self.store.pace_reserve(adapter.name, interval, burst)
            if wait > 0:
                await asyncio.sleep(wait)
        except Exception as exc:  # noqa: BLE001 - pacing is a courtesy to the platform, not a gate
            log.warning("%s: could not pace a send through the store: %s", adapter.name, exc)

    async def edit(self, adapter: Adapter, sent: SentMessage, text: str) -> bool:
        # Retried even after a maybe-delivered failure: editing to the same text twice is harmless.
        try:
            async def change() -> None:
                await self._pace_bot(adapter)
                await adapter.edit(sent, text)

            await self._retrying(f"{adapter.name}: edit {sent.message_id}", change)
            return True
        except GaveUp as failure:
            log.warning("%s: could not edit message %s: %s", adapter.name, sent.message_id, failure.error)
            return False

    async def keep_undelivered(self, platform: str, message: OutboundMessage, error: BaseException,
                               attempts: int | None = None) -> None:
        self.metrics.undelivered.labels(platform).inc()
        self.metrics.errors.labels("delivery").inc()
        attempts = self.policy.attempts if attempts is None else attempts
        reason = f"{type(error).__name__}: {error}"
        if getattr(error, "maybe_delivered", False):
            log.warning("%s: a message to chat %s %s (%s); kept in table undelivered",
                        platform, message.chat_id, MAYBE_DELIVERED_NOTE, reason)
            reason = f"{MAYBE_DELIVERED_NOTE} ({reason})"
        else:
            log.error("%s: could not deliver a message to chat %s after %d attempt(s) (%s); kept in table "
                      "undelivered", platform, message.chat_id, attempts, reason)
        await self.store.undelivered_add(
            platform=platform, chat_id=message.chat_id, thread_id=message.thread_id, reply_to=message.reply_to,
            text=message.text, idempotency_key=message.idempotency_key, error=reason, attempts=attempts)

    async def send_text(self, adapter: Adapter, chat_id: str, text: str, *, thread_id: str | None = None,
                        reply_to: str | None = None, key: str = "") -> list[SentMessage]:
        """Send a whole reply, split to the platform's limit (each chunk its own idempotency key)."""
        sent: list[SentMessage] = []
        for index, chunk in enumerate(split_message(text, adapter.limits.max_message_chars)):
            result = await self.send(adapter, OutboundMessage(
                chat_id=chat_id, text=chunk, thread_id=thread_id, reply_to=reply_to if index == 0 else None,
                idempotency_key=f"{key}:{index}" if key else ""))
            if result is not None:
                sent.append(result)
        return sent

    async def prune(self, keep_seconds: float = 7 * 24 * 3600.0) -> None:
        await self.store.sent_prune(time.time() - keep_seconds)


# -- streaming ----------------------------------------------------------------------------------
@dataclass
class _Segment:
    text: str = ""
    sent: list[SentMessage] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)


class StreamingReply:
    """One turn's reply on one chat: streamed by edits where the platform allows it."""

    def __init__(self, delivery: Delivery, adapter: Adapter, chat_id: str, *, thread_id: str | None = None,
                 reply_to: str | None = None, key: str = "", stream: bool = True,
                 ends_inbox: int | None = None) -> None:
        self.delivery = delivery
        self.adapter = adapter
        self.chat_id = chat_id
        self.thread_id = thread_id
        self.reply_to = reply_to
        self.key = key
        self.stream = stream and adapter.limits.supports_edit
        self.ends_inbox = ends_inbox
        self.ended = False           # the last post ended the inbox row (in its delivery's transaction)
        self._segment = _Segment()
        self._segments = 0
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None
        self._last_write = 0.0

    # typing indicator ----------------------------------------------------------------------------
    def start_typing(self) -> None:
        if self._typing is None or self._typing.done():
            self._typing = asyncio.create_task(self._typing_loop())

    def stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def _typing_loop(self) -> None:
        while True:
            try:
                await self.adapter.typing(self.chat_id, self.thread_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a typing indicator is best effort
                log.debug("%s: typing failed: %s", self.adapter.name, exc)
            await asyncio.sleep(TYPING_EVERY)

    # events --------------------------------------------------------------------------------------
    async def on_event(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.stop_typing()
            self._segment.text += event.text
            if self.stream and (self._flusher is None or self._flusher.done()):
                self._flusher = asyncio.create_task(self._flush_soon())
        elif isinstance(event, ToolStarted):
            await self._close_segment()
            self.start_typing()
        elif isinstance(event, ToolFinished):
            self.start_typing()

    async def _flush_soon(self) -> None:
        wait = self._last_write + self.adapter.limits.min_edit_interval - time.monotonic()
        if self._segment.sent and wait > 0:
            await asyncio.sleep(wait)
        await self._render(close_open_fence(self._segment.text), final=False)

    async def _render(self, text: str, *, final: bool, last: bool = False) -> None:
        """Show `text` as the current segment; `last`: it ends the answer (its last post may end the
        inbox row)."""
        async with self._lock:
            segment = self._segment
            chunks = split_message(text, self.adapter.limits.max_message_chars)
            base = f"{self.key}:{self._segments}"
            for index, chunk in enumerate(chunks):
                ends = self.ends_inbox if last and index == len(chunks) - 1 else None
                if index < len(segment.sent):
                    if segment.shown[index] == chunk:
                        continue
                    ok = await self.delivery.edit(self.adapter, segment.sent[index], chunk)
                    if ok:
                        segment.shown[index] = chunk
                    elif final:
                        # the edit is lost for good: post the final text as a new message instead
                        await self._post(segment, chunk, f"{base}:{index}:final", ends)
                else:
                    await self._post(segment, chunk, f"{base}:{index}", ends)
            self._last_write = time.monotonic()

    async def _post(self, segment: _Segment, chunk: str, key: str, ends_inbox: int | None = None) -> None:
        first = not segment.sent and self._segments == 0
        sent, before = await self.delivery.send_once(self.adapter, OutboundMessage(
            chat_id=self.chat_id, text=chunk, thread_id=self.thread_id,
            reply_to=self.reply_to if first else None, idempotency_key=key if self.key else ""),
            ends_inbox=ends_inbox)
        if sent is None:
            return
        segment.sent.append(sent)
        if before and self.adapter.limits.supports_edit:
            # an earlier run of this turn (cut short by a crash) posted this part: edit it into this
            # run's text rather than post it again (an edit to the same text changes nothing)
            segment.shown.append(chunk if await self.delivery.edit(self.adapter, sent, chunk) else "")
            return
        segment.shown.append(chunk)
        self.ended = self.ended or (ends_inbox is not None and not before)

    async def _close_segment(self, final_text: str | None = None, *, last: bool = False) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        text = self._segment.text
        if final_text is not None and final_text.strip() and final_text.strip() != text.strip():
            text = final_text
        if text.strip():
            await self._render(text, final=True, last=last)
            self._segments += 1
        self._segment = _Segment()

    def begin(self) -> None:
        """A turn starts: show that the bot is working."""
        self.start_typing()

    async def finish(self, final_text: str, result: Any = None) -> None:
        """The turn ended: make sure the complete final text is delivered."""
        self.stop_typing()
        interrupted = getattr(result, "status", "") == "interrupted"
        await self._close_segment(final_text, last=not interrupted)
        if interrupted:
            await self.say("Stopped.")

    async def say(self, text: str) -> None:
        """A whole message outside streaming (command answers, errors)."""
        self.stop_typing()
        await self._close_segment()
        self._segment.text = text
        await self._close_segment()

    async def fail(self, text: str) -> None:
        await self.say(text)

    def cancel(self) -> None:
        self.stop_typing()
        if self._flusher is not None:
            self._flusher.cancel()
