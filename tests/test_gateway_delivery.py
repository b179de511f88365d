"""Delivery: chunks that respect limits and code fences, retries, dead letters, idempotency, streaming."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.base import DeliveryError, OutboundMessage, PlatformLimits
from agent.events import TextDelta, ToolFinished, ToolStarted
from gateway.delivery import Delivery, RetryPolicy, StreamingReply, close_open_fence, split_message
from gateway.metrics import Metrics
from gateway.store import StateStore, open_store
from tests.fakes.memory_adapter import MemoryAdapter


async def _ignore(_event: object) -> None:
    return None


@pytest.fixture
async def store(home: Path) -> AsyncIterator[StateStore]:
    s = await open_store(os.environ.get("HERMES_STORE_URL") or home / "state.db")   # --store=postgresql too
    yield s
    await s.close()


def fences_balanced(chunk: str) -> bool:
    return sum(1 for line in chunk.splitlines() if line.strip().startswith("```")) % 2 == 0


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello", 2000) == ["hello"]
    assert split_message("  \n", 2000) == []


def test_split_prefers_paragraphs_and_honours_the_limit() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 60 for i in range(10)]
    chunks = split_message("\n\n".join(paragraphs), 1000)
    assert all(len(c) <= 1000 for c in chunks)
    assert len(chunks) > 1
    for chunk in chunks:  # every cut falls between paragraphs
        assert chunk.startswith("Paragraph") and chunk.rstrip().endswith("word")
    assert " ".join(" ".join(chunks).split()) == " ".join(" ".join(paragraphs).split())


def test_code_fence_is_closed_and_reopened_across_chunks() -> None:
    code = "\n".join(f"    print('line {i}')" for i in range(200))
    text = "Here is the script:\n\n```python\n" + code + "\n```\n\nRun it with python."
    chunks = split_message(text, 2000)
    assert len(chunks) >= 3 and all(len(c) <= 2000 for c in chunks)
    assert all(fences_balanced(c) for c in chunks)
    for chunk in chunks[1:-1]:
        assert chunk.startswith("```python\n") and chunk.endswith("```")
    body = [line for c in chunks for line in c.splitlines() if line.startswith("    print")]
    assert body == code.splitlines()  # no line lost, duplicated or cut
    assert chunks[-1].endswith("Run it with python.")


def test_overlong_line_is_cut_at_spaces() -> None:
    line = " ".join(f"w{i}" for i in range(2000))
    chunks = split_message(line, 500)
    assert all(len(c) <= 500 for c in chunks)
    assert " ".join(chunks).split() == line.split()


def test_partial_view_closes_an_open_fence() -> None:
    assert close_open_fence("a\n```py\nx = 1") == "a\n```py\nx = 1\n```"
    assert close_open_fence("a\n```\nx\n```") == "a\n```\nx\n```"


async def test_send_retries_after_retry_after_then_succeeds(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore)
    adapter.failures.extend([DeliveryError("429", retry_after=0.2), DeliveryError("502")])
    delivery = Delivery(store, Metrics(), RetryPolicy(attempts=4, base_delay=0.01))
    started = asyncio.get_running_loop().time()
    sent = await delivery.send(adapter, OutboundMessage(chat_id="c", text="hello", idempotency_key="k1"))
    elapsed = asyncio.get_running_loop().time() - started
    assert sent is not None and adapter.texts() == ["hello"]
    assert len(adapter.send_attempts) == 3
    assert elapsed >= 0.2  # waited as long as the platform asked


async def test_undeliverable_message_is_kept_after_retries(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore)
    adapter.failures.extend([DeliveryError("503")] * 3)
    metrics = Metrics()
    delivery = Delivery(store, metrics, RetryPolicy(attempts=3, base_delay=0.01))
    sent = await delivery.send(adapter, OutboundMessage(chat_id="c9", text="important", idempotency_key="k2"))
    assert sent is None and len(adapter.send_attempts) == 3 and adapter.posted == []
    rows = await store.undelivered_rows()
    assert [(r["chat_id"], r["text"], r["attempts"]) for r in rows] == [("c9", "important", 3)]
    assert "503" in rows[0]["error"]
    assert b'hermes_undelivered_total{platform="telegram"} 1.0' in metrics.render()


async def test_permanent_errors_are_not_retried(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore)
    adapter.failures.append(DeliveryError("chat not found", permanent=True))
    delivery = Delivery(store, Metrics(), RetryPolicy(attempts=5, base_delay=0.01))
    assert await delivery.send(adapter, OutboundMessage(chat_id="c", text="x")) is None
    assert len(adapter.send_attempts) == 1
    assert len(await store.undelivered_rows()) == 1


async def test_sends_are_idempotent_by_key(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore)
    delivery = Delivery(store, Metrics(), RetryPolicy(attempts=2, base_delay=0.01))
    first = await delivery.send(adapter, OutboundMessage(chat_id="c", text="once", idempotency_key="turn-1:0"))
    again = await delivery.send(adapter, OutboundMessage(chat_id="c", text="once", idempotency_key="turn-1:0"))
    assert first == again and adapter.texts() == ["once"]


async def test_send_text_chunks_to_the_platform_limit(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore, limits=PlatformLimits(max_message_chars=2000))
    delivery = Delivery(store, Metrics())
    text = "\n\n".join("para " + "x" * 900 for _ in range(5))
    await delivery.send_text(adapter, "c", text, key="t")
    assert len(adapter.posted) == 3 and all(len(t) <= 2000 for t in adapter.texts())


async def test_streaming_posts_first_then_edits_throttled(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore, limits=PlatformLimits(max_message_chars=4096, min_edit_interval=0.2))
    reply = StreamingReply(Delivery(store, Metrics()), adapter, "c", key="s1")
    reply.begin()
    await asyncio.sleep(0.01)  # the model thinks: a typing indicator shows
    await reply.on_event(TextDelta("Hello"))
    await adapter.wait_for(lambda: adapter.texts() == ["Hello"], timeout=2)  # first message at once
    for word in [" there", ",", " friend", "."]:
        await reply.on_event(TextDelta(word))
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    await reply.finish("Hello there, friend.")
    assert adapter.texts() == ["Hello there, friend."]
    history = adapter.posted[0].history
    assert history[0] == "Hello" and history[-1] == "Hello there, friend."
    assert len(history) <= 3  # 5 deltas in ~0.1 s under a 0.2 s edit interval: coalesced
    assert adapter.typing_calls >= 1


async def test_streaming_keeps_text_before_a_tool_call(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore)
    reply = StreamingReply(Delivery(store, Metrics()), adapter, "c", key="s2")
    await reply.on_event(TextDelta("Let me look."))
    await reply.on_event(ToolStarted("1", "list_files", {}))
    await asyncio.sleep(0.01)  # the typing loop runs
    typing_before = adapter.typing_calls
    await reply.on_event(ToolFinished("1", "list_files", "{}", True, "a.txt", 1.0))
    await reply.on_event(TextDelta("There is a.txt."))
    await reply.finish("There is a.txt.")
    assert adapter.texts() == ["Let me look.", "There is a.txt."]
    assert typing_before >= 1


async def test_final_text_is_posted_when_the_last_edit_fails(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore)
    delivery = Delivery(store, Metrics(), RetryPolicy(attempts=2, base_delay=0.01))
    reply = StreamingReply(delivery, adapter, "c", key="s3")
    await reply.on_event(TextDelta("Partial"))
    await adapter.wait_for(lambda: adapter.texts() == ["Partial"], timeout=2)
    adapter.edit_failures.extend([DeliveryError("edit refused", permanent=True)])
    await reply.finish("Partial and complete.")
    assert adapter.texts()[-1] == "Partial and complete."


async def test_a_send_that_may_have_been_delivered_is_not_retried_but_kept(
        store: StateStore, caplog: pytest.LogCaptureFixture) -> None:
    adapter = MemoryAdapter(_ignore)
    adapter.failures.append(DeliveryError("read timeout after sending", maybe_delivered=True))
    metrics = Metrics()
    delivery = Delivery(store, metrics, RetryPolicy(attempts=5, base_delay=0.01))
    with caplog.at_level("WARNING", logger="gateway.delivery"):
        sent = await delivery.send(adapter, OutboundMessage(chat_id="c7", text="maybe there", idempotency_key="m1"))
    assert sent is None and len(adapter.send_attempts) == 1
    [row] = await store.undelivered_rows()
    assert (row["chat_id"], row["text"], row["attempts"]) == ("c7", "maybe there", 1)
    assert "may already have been delivered" in row["error"] and "never posted twice" in row["error"]
    assert "read timeout after sending" in row["error"]
    [record] = [r for r in caplog.records if "may already have been delivered" in r.getMessage()]
    assert record.levelname == "WARNING" and "telegram" in record.getMessage() and "c7" in record.getMessage()
    assert b'hermes_undelivered_total{platform="telegram"} 1.0' in metrics.render()

    # Sending that message again (same key, same text) does not reach the platform; a new one does.
    assert await delivery.send(adapter, OutboundMessage(chat_id="c7", text="maybe there", idempotency_key="m1")) is None
    assert len(adapter.send_attempts) == 1
    assert await delivery.send(adapter, OutboundMessage(chat_id="c7", text="next", idempotency_key="m2")) is not None
    assert adapter.texts() == ["next"]


async def test_edits_are_retried_even_when_they_may_have_been_delivered(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore)
    delivery = Delivery(store, Metrics(), RetryPolicy(attempts=3, base_delay=0.01))
    sent = await delivery.send(adapter, OutboundMessage(chat_id="c", text="draft"))
    assert sent is not None
    adapter.edit_failures.append(DeliveryError("read timeout after sending", maybe_delivered=True))
    assert await delivery.edit(adapter, sent, "final")
    assert adapter.texts() == ["final"]


async def test_a_streamed_message_that_may_have_been_delivered_is_not_posted_again(store: StateStore) -> None:
    adapter = MemoryAdapter(_ignore, limits=PlatformLimits(max_message_chars=4096, min_edit_interval=0.05))
    delivery = Delivery(store, Metrics(), RetryPolicy(attempts=3, base_delay=0.01))
    adapter.failures.append(DeliveryError("read timeout after sending", maybe_delivered=True))
    reply = StreamingReply(delivery, adapter, "c", key="s5")
    await reply.on_event(TextDelta("The whole answer."))
    await adapter.wait_for(lambda: len(adapter.send_attempts) == 1, timeout=2)
    await reply.finish("The whole answer.")          # the same text again: it may be there already
    assert len(adapter.send_attempts) == 1 and adapter.posted == []
    assert len(await store.undelivered_rows()) == 1

    # A preview that may have been delivered does not swallow the rest of the reply.
    adapter.failures.append(DeliveryError("read timeout after sending", maybe_delivered=True))
    reply = StreamingReply(delivery, adapter, "c", key="s6")
    await reply.on_event(TextDelta("The"))
    await adapter.wait_for(lambda: len(adapter.send_attempts) == 2, timeout=2)
    await reply.on_event(TextDelta(" complete answer."))
    await reply.finish("The complete answer.")
    assert adapter.texts() == ["The complete answer."]
