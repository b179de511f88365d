"""Trajectories as training data: ShareGPT with Hermes-style tool tags, or OpenAI chat messages.

ShareGPT (one object a line, keeping the prompt's `id`):

    {"id": "p1", "conversations": [
      {"from": "system", "value": "<system prompt>\\n\\n<tool instructions>\\n<tools>\\n[...]\\n</tools>\\n..."},
      {"from": "human", "value": "the prompt"},
      {"from": "gpt", "value": "optional text\\n<tool_call>\\n{\\"name\\": \\"read_file\\", \\"arguments\\": {...}}\\n</tool_call>"},
      {"from": "tool", "value": "<tool_response>\\n{\\"tool_call_id\\": ..., \\"name\\": ..., \\"content\\": ...}\\n</tool_response>"},
      {"from": "gpt", "value": "the answer"}]}

Tool results answering one assistant message share one `tool` turn (one `<tool_response>`
block each, in call order), as Hermes function-calling data does. OpenAI format is
`{"id", "messages": [...], "tools": [...]}`, the shape chat fine-tuning APIs take. Every string
is passed through the redactor again on the way out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent.redact import Redactor
from agent.trajectory import Trajectory, redact_trajectory

ExportFormat = Literal["sharegpt", "openai"]

TOOLS_PREAMBLE = (
    "You are a function calling AI model. You are provided with function signatures within "
    "<tools></tools> XML tags. You may call one or more functions to assist with the user query. "
    "Don't make assumptions about what values to plug into functions. Here are the available tools:"
)
TOOL_CALL_INSTRUCTIONS = (
    "For each function call return a JSON object with the function name and arguments within "
    "<tool_call></tool_call> XML tags as follows:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-dict>}\n</tool_call>'
)


def _text(content: Any) -> str:
    if isinstance(content, list):  # multi-part content: keep the text parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def system_value(system: str, tools: list[dict[str, Any]]) -> str:
    """The system turn: the prompt, then the tools inside `<tools>` tags with call instructions."""
    parts = [system.strip()] if system.strip() else []
    if tools:
        parts.append(f"{TOOLS_PREAMBLE}\n<tools>\n{_dumps(tools)}\n</tools>\n{TOOL_CALL_INSTRUCTIONS}")
    return "\n\n".join(parts)


def tool_call_block(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        arguments: Any = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        arguments = raw  # the model sent something that is not JSON: keep it as it was
    return f"<tool_call>\n{_dumps({'name': function.get('name', ''), 'arguments': arguments})}\n</tool_call>"


def tool_response_block(call_id: str, name: str, content: str) -> str:
    return (f"<tool_response>\n{_dumps({'tool_call_id': call_id, 'name': name, 'content': content})}\n"
            "</tool_response>")


def to_sharegpt(trajectory: Trajectory) -> dict[str, Any]:
    turns: list[dict[str, str]] = []
    system = system_value(trajectory.system, trajectory.tools)
    if system:
        turns.append({"from": "system", "value": system})
    names: dict[str, str] = {}
    for message in trajectory.messages:
        role = message.get("role")
        if role == "user":
            turns.append({"from": "human", "value": _text(message.get("content"))})
        elif role == "assistant":
            calls = message.get("tool_calls") or []
            pieces = [_text(message.get("content")).strip()] if _text(message.get("content")).strip() else []
            for call in calls:
                names[str(call.get("id", ""))] = str((call.get("function") or {}).get("name", ""))
                pieces.append(tool_call_block(call))
            turns.append({"from": "gpt", "value": "\n".join(pieces)})
        elif role == "tool":
            call_id = str(message.get("tool_call_id", ""))
            block = tool_response_block(call_id, names.get(call_id, str(message.get("name", ""))),
                                        _text(message.get("content")))
            if turns and turns[-1]["from"] == "tool":
                turns[-1]["value"] += "\n" + block
            else:
                turns.append({"from": "tool", "value": block})
        elif role == "system":  # a system message inside the conversation: keep it in place
            turns.append({"from": "system", "value": _text(message.get("content"))})
    return {"id": trajectory.id, "conversations": turns}


OPENAI_MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")


def to_openai(trajectory: Trajectory) -> dict[str, Any]:
    messages = [{k: m[k] for k in OPENAI_MESSAGE_KEYS if k in m} for m in trajectory.chat_messages()]
    record: dict[str, Any] = {"id": trajectory.id, "messages": messages}
    if trajectory.tools:
        record["tools"] = trajectory.tools
    return record


@dataclass(frozen=True)
class ExportFilter:
    success_only: bool = False
    min_turns: int | None = None    # model replies (assistant messages)
    max_turns: int | None = None

    def keep(self, trajectory: Trajectory) -> bool:
        if self.success_only and not trajectory.success:
            return False
        turns = trajectory.model_turns()
        if self.min_turns is not None and turns < self.min_turns:
            return False
        if self.max_turns is not None and turns > self.max_turns:
            return False
        return True


@dataclass
class ExportStats:
    read: int = 0
    written: int = 0
    filtered_out: int = 0


def export_lines(trajectories: Iterable[Trajectory], fmt: ExportFormat, flt: ExportFilter,
                 redactor: Redactor, stats: ExportStats) -> Iterable[str]:
    convert = to_sharegpt if fmt == "sharegpt" else to_openai
    for trajectory in trajectories:
        stats.read += 1
        if not flt.keep(trajectory):
            stats.filtered_out += 1
            continue
        stats.written += 1
        yield json.dumps(convert(redact_trajectory(trajectory, redactor)), ensure_ascii=False) + "\n"


def write_export(trajectories: Iterable[Trajectory], output: Path, fmt: ExportFormat, flt: ExportFilter,
                 redactor: Redactor) -> ExportStats:
    """Write the export to `output` atomically (a temporary file renamed into place). Blocking."""
    stats = ExportStats()
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.writelines(export_lines(trajectories, fmt, flt, redactor, stats))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, output)
    finally:
        if temporary.exists():
            temporary.unlink()
    return stats
