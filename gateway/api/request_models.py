"""The request bodies of `/v1/chat/completions` and `/v1/responses`, checked with pydantic.

Types are strict (`"stream": "false"` is not a boolean, `user` must be a string), ranges are
OpenAI's, and what the gateway cannot honour is refused rather than ignored: `n` other than 1,
client-side tools, log probabilities. Every refusal is an `ApiError` (400) naming the
parameter the way OpenAI does (`messages[2].content`). Messages become what the agent runs: the
client's system messages (its instructions), its earlier messages (the history), and its new
user message. Lone UTF-16 surrogates (invalid in UTF-8, so unstorable) become U+FFFD. A body
nested deeper than `MAX_DEPTH` arrays and objects is refused before anything walks it (Python's
own recursion limit would otherwise turn it into a 500).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.api.errors import ApiError

MAX_USER_CHARS = 128
MAX_MESSAGES = 2000  # each is stored on its own: a bound on what one request can make the store do
MAX_DEPTH = 64  # arrays/objects inside each other; OpenAI's bodies (json_schema included) need far fewer
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SURROGATE = re.compile("[\ud800-\udfff]")
M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class StreamOptions(_Strict):
    include_usage: bool = False


class ResponseFormat(_Strict):
    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class _Sampling(_Strict):
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stream: bool | None = None
    user: str | None = Field(None, max_length=MAX_USER_CHARS)
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_MESSAGES)
    n: int | None = Field(None, ge=1, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    response_format: ResponseFormat | None = None
    stream_options: StreamOptions | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    functions: list[Any] | None = None
    function_call: str | dict[str, Any] | None = None

    def params(self) -> dict[str, Any]:
        """The sampling parameters passed to every model call of the turn."""
        chosen = self.model_dump(include={"temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
                                          "seed"}, exclude_none=True)
        if self.response_format is not None and self.response_format.type != "text":
            chosen["response_format"] = self.response_format.model_dump(exclude_none=True)
        return chosen


class TextFormat(_Strict):
    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextOptions(_Strict):
    format: TextFormat | None = None


class ResponsesRequest(_Sampling):
    input: str | Annotated[list[dict[str, Any]], Field(max_length=MAX_MESSAGES)]
    instructions: str | None = None
    previous_response_id: str | None = Field(None, max_length=128)
    store: bool | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    text: TextOptions | None = None
    metadata: dict[str, str] | None = None
    top_logprobs: int | None = None
    conversation: Any = None
    background: bool | None = None

    def params(self) -> dict[str, Any]:
        chosen = self.model_dump(include={"temperature", "top_p"}, exclude_none=True)
        if self.max_output_tokens is not None:
            chosen["max_tokens"] = self.max_output_tokens
        fmt = self.text.format if self.text is not None else None
        if fmt is not None and fmt.type == "json_object":
            chosen["response_format"] = {"type": "json_object"}
        elif fmt is not None and fmt.type == "json_schema":
            schema = {"name": fmt.name or "response", "schema": fmt.schema_ or {}}
            if fmt.strict is not None:
                schema["strict"] = fmt.strict
            chosen["response_format"] = {"type": "json_schema", "json_schema": schema}
        return chosen


@dataclass(frozen=True)
class ClientConversation:
    """A request's messages as the agent runs them."""

    instructions: str
    history: tuple[dict[str, Any], ...]
    content: str | dict[str, Any]  # the new user message: text, or a message with content parts


# -- parsing --------------------------------------------------------------------------------------
def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the request body must be JSON") from None
    except RecursionError:  # deeper than the interpreter's stack: certainly deeper than MAX_DEPTH
        raise ApiError(400, _too_deep(), code="too_deeply_nested") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    if _depth(body) > MAX_DEPTH:
        raise ApiError(400, _too_deep(), code="too_deeply_nested")
    return _clean(body)


def _too_deep() -> str:
    return f"the request body nests arrays and objects more than {MAX_DEPTH} levels deep"


def _depth(value: Any) -> int:
    """How many arrays/objects deep `value` goes (without recursion: a deep value cannot crash this)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def _param(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _type_tag(str(part)):
            out += ("." if out else "") + str(part)
    return out


def _type_tag(part: str) -> bool:
    """pydantic names the member of a union that failed (`str`, `list[dict[str, any]]`): not a field."""
    return part in ("str", "int", "float", "bool", "dict", "list") or part.startswith(
        ("list[", "dict[", "function-", "literal["))


def validate(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        param = _param(first["loc"])
        # a union (`str | list`) fails once per member: say every way the value could have been right
        said = "; or ".join(dict.fromkeys(e["msg"] for e in errors if _param(e["loc"]) == param))
        raise ApiError(400, f"{param}: {said}" if param else said, param=param or None,
                       code="invalid_value" if first["type"] != "missing" else "missing_required_parameter") \
            from None


def refuse_unsupported(request: ChatCompletionRequest | ResponsesRequest) -> None:
    """400 for what the gateway would otherwise silently not do."""
    if request.tools:
        raise ApiError(400, "tools: client-side tools are not supported; the agent runs its own tools on the "
                            "server and answers with text", param="tools", code="unsupported_parameter")
    if request.tool_choice not in (None, "none", "auto"):
        raise ApiError(400, "tool_choice: only 'auto' and 'none' are supported (there are no client-side tools)",
                       param="tool_choice", code="unsupported_parameter")
    if request.top_logprobs is not None:
        raise ApiError(400, "top_logprobs: log probabilities are not available", param="top_logprobs",
                       code="unsupported_parameter")
    if isinstance(request, ResponsesRequest):
        if request.conversation is not None:
            raise ApiError(400, "conversation: not supported; continue with previous_response_id",
                           param="conversation", code="unsupported_parameter")
        if request.background:
            raise ApiError(400, "background: not supported; use stream for long answers", param="background",
                           code="unsupported_parameter")
    if isinstance(request, ChatCompletionRequest):
        if request.logprobs:
            raise ApiError(400, "logprobs: log probabilities are not available", param="logprobs",
                           code="unsupported_parameter")
        if request.functions or request.function_call is not None:
            raise ApiError(400, "functions: client-side functions are not supported", param="functions",
                           code="unsupported_parameter")
        if request.stream_options is not None and not request.stream:
            raise ApiError(400, "stream_options: only allowed when stream is true", param="stream_options")
        if isinstance(request.stop, list) and len(request.stop) > 4:
            raise ApiError(400, "stop: at most 4 sequences", param="stop")


def check_user(user: str | None) -> str:
    """The person the request is for ('' for nobody in particular)."""
    if user is None:
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in user):
        raise ApiError(400, "user: control characters are not allowed", param="user")
    return user.strip()


def check_session_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not SESSION_ID.fullmatch(value):
        raise ApiError(400, "X-Hermes-Session-Id: 1 to 128 characters, letters, digits, '.', '_' and '-', "
                            "starting with a letter or digit", param="X-Hermes-Session-Id",
                       code="invalid_session_id")
    return value


# -- chat messages ----------------------------------------------------------------------------------
def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"{where}: must be a string", param=where)
    return value


def _image_url(value: Any, where: str) -> str:
    """An image by `https:`/`http:` URL or inline `data:` URL; nothing that names a local file."""
    url = _text(value, where)
    if not url.lower().startswith(("https://", "http://", "data:image/")):
        raise ApiError(400, f"{where}: images are given as an http(s) URL or a data:image/... URL", param=where)
    return url


def _chat_parts(parts: list[Any], where: str, role: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        if not isinstance(part, dict):
            raise ApiError(400, f"{at}: a content part must be an object", param=at)
        kind = part.get("type")
        if kind == "text":
            out.append({"type": "text", "text": _text(part.get("text"), at + ".text")})
        elif kind == "image_url" and role == "user":
            image = part.get("image_url")
            url = _image_url(image.get("url") if isinstance(image, dict) else image, at + ".image_url.url")
            out.append({"type": "image_url", "image_url": {"url": url, **(
                {"detail": image["detail"]} if isinstance(image, dict) and isinstance(image.get("detail"), str)
                else {})}})
        elif kind == "refusal" and role == "assistant":
            out.append({"type": "text", "text": _text(part.get("refusal"), at + ".refusal")})
        else:
            raise ApiError(400, f"{at}.type: {kind!r} content is not supported here", param=at + ".type")
    return out


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Plain text when every part is text (cheaper to store and to count), else the parts."""
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def chat_conversation(messages: list[dict[str, Any]]) -> ClientConversation:
    instructions: list[str] = []
    history: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        at = f"messages[{index}]"
        role = message.get("role")
        if role in ("tool", "function"):
            raise ApiError(400, f"{at}.role: {role!r} messages answer client-side tools, which are not supported",
                           param=at + ".role")
        if role not in ("system", "developer", "user", "assistant"):
            raise ApiError(400, f"{at}.role: must be one of system, developer, user, assistant", param=at + ".role")
        if message.get("tool_calls") or message.get("function_call"):
            raise ApiError(400, f"{at}.tool_calls: client-side tool calls are not supported",
                           param=at + ".tool_calls")
        raw = message.get("content")
        if raw is None and role == "assistant":
            content: str | list[dict[str, Any]] = ""
        elif isinstance(raw, str):
            content = raw
        elif isinstance(raw, list):
            content = _content(_chat_parts(raw, at + ".content", "user" if role == "user" else str(role)))
        else:
            raise ApiError(400, f"{at}.content: must be a string or a list of content parts",
                           param=at + ".content")
        if role in ("system", "developer"):
            if not isinstance(content, str):
                raise ApiError(400, f"{at}.content: system messages are text", param=at + ".content")
            instructions.append(content)
        else:
            history.append({"role": role, "content": content})
    if not history or history[-1]["role"] != "user":
        raise ApiError(400, "messages: the last message (after system messages) must be a user message",
                       param="messages")
    last = history.pop()
    new: str | dict[str, Any] = last["content"] if isinstance(last["content"], str) else last
    return ClientConversation("\n\n".join(i for i in instructions if i.strip()), tuple(history), new)


# -- Responses API input ------------------------------------------------------------------------------
def _response_parts(parts: list[Any], where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        if not isinstance(part, dict):
            raise ApiError(400, f"{at}: a content part must be an object", param=at)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            out.append({"type": "text", "text": _text(part.get("text"), at + ".text")})
        elif kind == "refusal":
            out.append({"type": "text", "text": _text(part.get("refusal"), at + ".refusal")})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": _image_url(part["image_url"], at + ".image_url")}
            if isinstance(part.get("detail"), str) and part["detail"] != "auto":
                image["detail"] = part["detail"]
            out.append({"type": "image_url", "image_url": image})
        else:
            raise ApiError(400, f"{at}.type: {kind!r} input is not supported (text, and images by URL, are)",
                           param=at + ".type")
    return out


def response_conversation(request: ResponsesRequest) -> ClientConversation:
    instructions = [request.instructions] if request.instructions and request.instructions.strip() else []
    if isinstance(request.input, str):
        return ClientConversation("\n\n".join(instructions), (), request.input)
    history: list[dict[str, Any]] = []
    for index, item in enumerate(request.input):
        at = f"input[{index}]"
        kind = item.get("type", "message")
        if kind != "message":
            raise ApiError(400, f"{at}.type: {kind!r} items are not supported (client-side tools and their "
                                "outputs are not; send messages)", param=at + ".type")
        role = item.get("role")
        if role not in ("system", "developer", "user", "assistant"):
            raise ApiError(400, f"{at}.role: must be one of system, developer, user, assistant", param=at + ".role")
        raw = item.get("content")
        if isinstance(raw, str):
            content: str | list[dict[str, Any]] = raw
        elif isinstance(raw, list):
            parts = _response_parts(raw, at + ".content")
            if role != "user" and any(p["type"] != "text" for p in parts):
                raise ApiError(400, f"{at}.content: only user messages may carry images", param=at + ".content")
            content = _content(parts)
        else:
            raise ApiError(400, f"{at}.content: must be a string or a list of content parts", param=at + ".content")
        if role in ("system", "developer"):
            instructions.append(str(content))
        else:
            history.append({"role": role, "content": content})
    if not history or history[-1]["role"] != "user":
        raise ApiError(400, "input: the last item must be a user message", param="input")
    last = history.pop()
    new: str | dict[str, Any] = last["content"] if isinstance(last["content"], str) else last
    return ClientConversation("\n\n".join(instructions), tuple(history), new)


def validate_model(requested: str | None, choices: list[str]) -> str:
    """The model id the request names ('hermes' when it names none); 400 listing the choices."""
    name = requested or "hermes"
    if name not in choices:
        raise ApiError(400, f"model: {name!r} is not served here; choose one of: {', '.join(choices)}",
                       param="model", code="model_not_found")
    return name
