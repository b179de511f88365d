"""Token ids and masks of one multi-turn rollout, built from the tokens the server generated.

A token server (vLLM's `/generate`, or Atropos' `server_type=vllm`) takes prompt token ids and
returns the ids it sampled. `TokenTrack` keeps one rollout's sequence: the first prompt rendered
with the tokenizer's chat template; then, for every model call, the ids the model generated
(unmasked: what the trainer learns from) and, before the next call, the template's rendering of
the new messages (tool results, a correction: masked with -100). Assistant turns are never
re-rendered from text, so the trainer sees exactly what was sampled.

Atropos 0.4.0's own helpers are not used for this: `tokenize_for_trainer` returns a bogus
two-element token list on transformers 5, and re-tokenizing a multi-turn chat doubles the
end-of-turn token (the generated `<|im_end|>` plus the template's). Here the template's
end-of-turn text after an assistant message is added only where the generated ids lack it.

`TokenCaller` is the `agent.model_call.ModelCaller` that runs our agent loop over such a server:
the loop, its tools and its limits stay ours; only the one call becomes "ids in, ids out".
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.model_call import CallRequest, DeltaCallback, LLMResponse

MASKED = -100
Generate = Callable[[list[int], dict[str, Any]], Awaitable[tuple[list[int], list[float], str]]]
TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_MARK = "\u2063HERMES-END-OF-TURN-PROBE\u2063"


class TemplateMismatch(RuntimeError):
    """The chat template renders earlier messages differently once later ones follow (or the
    conversation was rewritten between calls): the rollout cannot be one token sequence."""


def parse_tool_calls(text: str, first_id: int = 0) -> tuple[str, list[dict[str, Any]]]:
    """(content, OpenAI tool_calls) from Hermes-format output: `<tool_call>{"name": ..,
    "arguments": {..}}</tool_call>` blocks; a block that is not such JSON stays in the content."""
    calls: list[dict[str, Any]] = []

    def take(match: re.Match[str]) -> str:
        try:
            data = json.loads(match.group(1))
        except ValueError:
            return match.group(0)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return match.group(0)
        arguments = data.get("arguments", {})
        calls.append({"id": f"call_{first_id + len(calls)}", "type": "function",
                      "function": {"name": data["name"],
                                   "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}})
        return ""

    content = TOOL_CALL.sub(take, text).strip()
    return content, calls


def _for_template(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as chat templates expect them: tool-call arguments as objects, content never None."""
    shaped: list[dict[str, Any]] = []
    for message in messages:
        message = dict(message)
        if message.get("content") is None:
            message["content"] = ""
        if message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = dict(call.get("function") or {})
                raw = function.get("arguments")
                if isinstance(raw, str):
                    try:
                        function["arguments"] = json.loads(raw or "{}")
                    except ValueError:
                        pass
                calls.append({**call, "function": function})
            message["tool_calls"] = calls
        shaped.append(message)
    return shaped


@dataclass
class TokenTrack:
    """One rollout's token ids, masks (-100 or the id) and logprobs (1.0 where masked)."""

    tokenizer: Any
    tokens: list[int] = field(default_factory=list)
    masks: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    covered: list[dict[str, Any]] = field(default_factory=list)   # the messages the sequence holds
    _end_text: str | None = None

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
               generation_prompt: bool) -> str:
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": generation_prompt}
        if tools:
            kwargs["tools"] = tools
        return str(self.tokenizer.apply_chat_template(_for_template(messages), **kwargs))

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def end_of_turn_text(self, tools: list[dict[str, Any]] | None) -> str:
        """What the template writes after an assistant message's content (`<|im_end|>\\n` in ChatML)."""
        if self._end_text is None:
            probe = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _MARK}]
            text = self.render(probe, tools, generation_prompt=False)
            self._end_text = text[text.rindex(_MARK) + len(_MARK):] if _MARK in text else ""
        return self._end_text

    def _add(self, ids: list[int], trained: bool, logprobs: list[float] | None = None) -> None:
        self.tokens.extend(ids)
        self.masks.extend(ids if trained else [MASKED] * len(ids))
        self.logprobs.extend(logprobs if trained and logprobs and len(logprobs) == len(ids) else [1.0] * len(ids))

    def prompt_ids(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int]:
        """The ids to send for `messages`: the sequence so far plus the new messages, masked."""
        if not self.covered:
            self._add(self.encode(self.render(messages, tools, generation_prompt=True)), trained=False)
        else:
            held = len(self.covered)
            if messages[:held] != self.covered:
                raise TemplateMismatch("the conversation changed between model calls (compressed?); "
                                       "a rollout must be one growing sequence")
            before = self.render(messages[:held], tools, generation_prompt=False)
            after = self.render(messages, tools, generation_prompt=True)
            if not after.startswith(before):
                raise TemplateMismatch("the chat template renders earlier turns differently once later "
                                       "ones follow; this model's template cannot give one token sequence")
            self._add(self.encode(after[len(before):]), trained=False)
        self.covered = [dict(m) for m in messages]
        return list(self.tokens)

    def add_completion(self, ids: list[int], logprobs: list[float], finish_reason: str,
                       message: dict[str, Any], tools: list[dict[str, Any]] | None) -> None:
        """The generated ids (trained), then the template's end of turn where they lack it (masked)."""
        self._add(ids, trained=True, logprobs=logprobs)
        end = self.end_of_turn_text(tools)
        eos = getattr(self.tokenizer, "eos_token", None) or ""
        generated = self.tokenizer.decode(ids, skip_special_tokens=False) if ids else ""
        if eos and generated.endswith(eos) and end.startswith(eos):
            end = end[len(eos):]   # the model's own end of turn stays; adding the template's would double it
        self._add(self.encode(end), trained=False)
        self.covered.append(dict(message))

    def assistant_spans(self) -> list[list[int]]:
        """The trained runs of ids, one per model call (for checks and display)."""
        spans: list[list[int]] = []
        current: list[int] = []
        for mask in self.masks:
            if mask == MASKED:
                if current:
                    spans.append(current)
                    current = []
            else:
                current.append(mask)
        if current:
            spans.append(current)
        return spans


class TokenCaller:
    """A `ModelCaller` over a token server: renders, generates ids, parses Hermes tool calls."""

    def __init__(self, tokenizer: Any, generate: Generate, max_tokens: int, model: str = "atropos") -> None:
        self.track = TokenTrack(tokenizer)
        self.generate = generate
        self.max_tokens = max_tokens
        self.model = model
        self.calls = 0

    async def call(self, request: CallRequest, on_delta: DeltaCallback | None = None) -> LLMResponse:
        ids = self.track.prompt_ids(request.messages, request.tools)
        room = self.max_tokens - len(ids)
        if room <= 0:
            raise TemplateMismatch(f"the rollout has {len(ids)} tokens, no room left under {self.max_tokens}")
        params: dict[str, Any] = {"max_tokens": room}
        if request.temperature is not None:
            params["temperature"] = request.temperature
        out, logprobs, finish = await self.generate(ids, params)
        text = self.track.tokenizer.decode(out, skip_special_tokens=True)
        content, calls = parse_tool_calls(text, first_id=self.calls)
        self.calls += len(calls)
        message: dict[str, Any] = {"role": "assistant", "content": content or None}
        if calls:
            message["tool_calls"] = calls
        self.track.add_completion(out, logprobs, finish, message, request.tools)
        if on_delta is not None and content:
            await on_delta(content)
        return LLMResponse(message=message, model=self.model, prompt_tokens=len(ids), completion_tokens=len(out),
                           cost=0.0, finish_reason=finish or "")
