"""Fitting trajectories into a token budget for training by summarising their middle turns.

The system prompt, the first user turn and the last `keep_last` messages are never changed
(the kept tail is widened so it never starts with tool results cut off from their call).
Between them, tool outputs are summarised first, largest first, one model call each, until
the trajectory fits; if it still does not, the whole middle is replaced by one summary
message. The summary goes in a *user* message, so a trainer that learns only from assistant
turns never learns to imitate it. Tokens are counted with LiteLLM's counter for the model,
tools included, as a trainer would see them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.llm import LLMClient
from agent.model_call import purpose
from agent.trajectory import CompressionInfo, Trajectory

TOOL_SUMMARY_PREFIX = "[tool output summarised] "
SPAN_SUMMARY_PREFIX = "[Summary of the intermediate steps]\n"
MIN_TOOL_OUTPUT_CHARS = 300

SUMMARISE_TOOL_OUTPUT = (
    "Summarise this tool output for an agent that will only see your summary. Keep the facts, "
    "numbers, names, paths and errors the task may depend on; drop everything else. At most 80 words, "
    "plain text."
)
SUMMARISE_SPAN = (
    "Summarise these intermediate steps of an agent's work: which tools it called, with what, and "
    "what it learned or changed. Keep facts, file names, commands and errors that later steps rely "
    "on. At most 150 words, plain text."
)

TokenCounter = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], int]


@dataclass(frozen=True)
class CompressSettings:
    target_tokens: int
    keep_last: int = 4          # messages at the end kept verbatim


def protected_span(messages: list[dict[str, Any]], keep_last: int) -> tuple[int, int] | None:
    """[start, end) of the compressible middle: after the first user turn, before the kept tail."""
    first_user = next((i for i, m in enumerate(messages) if m.get("role") == "user"), None)
    if first_user is None:
        return None
    start = first_user + 1
    end = max(start, len(messages) - keep_last)
    while start < end < len(messages) and messages[end].get("role") == "tool":
        end -= 1  # keep a tool result together with the assistant message that called it
    return (start, end) if end > start else None


def _render(message: dict[str, Any]) -> str:
    text = str(message.get("content") or "")
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        text += f" [called {function.get('name')}({str(function.get('arguments', ''))[:500]})]"
    return f"{message.get('role')}: {text.strip()}"


class TrajectoryCompressor:
    def __init__(self, llm: LLMClient, settings: CompressSettings, count: TokenCounter | None = None) -> None:
        self.llm = llm
        self.settings = settings
        self._count = count or llm.count_tokens

    def count(self, trajectory: Trajectory) -> int:
        return int(self._count(trajectory.chat_messages(), trajectory.tools or None))

    async def _summary(self, instructions: str, text: str) -> str:
        with purpose("compress"):
            response = await self.llm.complete(
                [{"role": "system", "content": instructions}, {"role": "user", "content": text}], None,
                stream=False)
        return str(response.message.get("content") or "").strip()

    async def compress(self, trajectory: Trajectory) -> Trajectory:
        """A copy that fits `target_tokens` if it can be made to; `compression` says how it went."""
        target = self.settings.target_tokens
        result = trajectory.model_copy(deep=True)
        before = self.count(result)
        info = CompressionInfo(tokens_before=before, tokens_after=before, target_tokens=target, fits=before <= target)
        if info.fits:
            result.compression = info
            return result
        messages = result.messages
        span = protected_span(messages, self.settings.keep_last)
        if span is not None:
            start, end = span
            # 1. tool outputs in the middle, largest first
            candidates = sorted((i for i in range(start, end) if messages[i].get("role") == "tool"
                                 and len(str(messages[i].get("content") or "")) >= MIN_TOOL_OUTPUT_CHARS),
                                key=lambda i: -len(str(messages[i].get("content") or "")))
            for index in candidates:
                original = str(messages[index].get("content") or "")
                summary = TOOL_SUMMARY_PREFIX + await self._summary(SUMMARISE_TOOL_OUTPUT, original)
                if len(summary) < len(original):
                    messages[index] = {**messages[index], "content": summary}
                    info.summarised_tool_outputs += 1
                if self.count(result) <= target:
                    break
            # 2. still too long: the whole middle becomes one summary
            if self.count(result) > target:
                transcript = "\n\n".join(_render(m) for m in messages[start:end])
                summary = SPAN_SUMMARY_PREFIX + await self._summary(SUMMARISE_SPAN, transcript)
                messages[start:end] = [{"role": "user", "content": summary}]
                info.summarised_span = True
        info.tokens_after = self.count(result)
        info.fits = info.tokens_after <= target
        result.compression = info
        return result


@dataclass
class CompressStats:
    trajectories: int = 0
    tokens_before: int = 0
    tokens_after: int = 0
    fit: int = 0
    failed: int = 0

    @property
    def share_fit(self) -> float:
        return self.fit / self.trajectories if self.trajectories else 0.0


async def compress_all(compressor: TrajectoryCompressor, trajectories: list[Trajectory], *, workers: int = 4,
                       on_done: Callable[[Trajectory], None] | None = None) -> tuple[list[Trajectory], CompressStats]:
    """Compress every trajectory (in input order), `workers` at a time. A model failure keeps the
    trajectory as it was, counted in `failed`."""
    stats = CompressStats()
    gate = asyncio.Semaphore(max(1, workers))
    results: list[Trajectory | None] = [None] * len(trajectories)

    async def one(index: int, trajectory: Trajectory) -> None:
        async with gate:
            try:
                compressed = await compressor.compress(trajectory)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad trajectory must not stop the rest
                compressed = trajectory.model_copy(deep=True)
                tokens = compressor.count(compressed)
                compressed.compression = CompressionInfo(
                    tokens_before=tokens, tokens_after=tokens, target_tokens=compressor.settings.target_tokens,
                    fits=tokens <= compressor.settings.target_tokens)
                compressed.metadata = {**compressed.metadata,
                                       "compression_error": f"{type(exc).__name__}: {exc}"[:500]}
                stats.failed += 1
        results[index] = compressed
        if on_done is not None:
            on_done(compressed)

    await asyncio.gather(*(one(i, t) for i, t in enumerate(trajectories)))
    done = [r for r in results if r is not None]
    for trajectory in done:
        info = trajectory.compression
        assert info is not None
        stats.trajectories += 1
        stats.tokens_before += info.tokens_before
        stats.tokens_after += info.tokens_after
        stats.fit += int(info.fits)
    return done, stats


def dumps_stats(stats: CompressStats) -> str:
    return json.dumps({"trajectories": stats.trajectories, "tokens_before": stats.tokens_before,
                       "tokens_after": stats.tokens_after, "fit": stats.fit, "share_fit": round(stats.share_fit, 4),
                       "failed": stats.failed})
