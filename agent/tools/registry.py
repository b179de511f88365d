"""Typed tools: an async function becomes a tool whose JSON schema comes from its signature.

    @tool
    async def read_file(ctx: ToolContext, path: str, max_chars: int = 20000) -> str:
        '''Read a text file from the workspace.

        Args:
            path: file path relative to the workspace.
            max_chars: stop after this many characters.
        '''

The first paragraph of the docstring is the tool's description; `Args:` entries describe the
parameters. A parameter annotated `ToolContext` receives the call's context and is not part of
the schema. Arguments are validated by pydantic before the call; every failure (bad arguments,
`ToolError`, any exception) comes back as a result the model can read, never as a crash.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import docstring_parser
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from agent.workspace import Workspace

Approver = Callable[[str, str], Awaitable[bool]]
"""(tool name, human-readable description of the risky action) -> approved?"""


async def deny_all(_tool: str, _description: str) -> bool:
    return False


class ToolError(Exception):
    """An expected tool failure; its message goes back to the model as the result."""


@dataclass
class ToolContext:
    """What a tool call may use: the workspace, the session, and an approval channel."""

    workspace: Workspace
    session_id: str = ""
    user_id: str = ""
    team: str = ""
    platform: str = ""
    approve: Approver = deny_all
    services: dict[str, Any] = field(default_factory=dict)
    depth: int = 0


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    content: str
    duration_ms: float


class Tool:
    """A callable the model may use, with its OpenAI function schema."""

    def __init__(self, func: Callable[..., Awaitable[Any]], *, name: str | None = None,
                 description: str | None = None) -> None:
        if not inspect.iscoroutinefunction(func):
            raise TypeError(f"tool {func.__name__} must be an async function")
        self.func = func
        self.name = name or func.__name__
        doc = docstring_parser.parse(inspect.getdoc(func) or "")
        summary = "\n\n".join(p for p in (doc.short_description, doc.long_description) if p)
        self.description = description or summary or self.name
        param_docs = {p.arg_name: p.description or "" for p in doc.params}
        hints = get_type_hints(func)
        fields: dict[str, Any] = {}
        self.context_param: str | None = None
        for param in inspect.signature(func).parameters.values():
            annotation = hints.get(param.name, Any)
            if annotation is ToolContext:
                self.context_param = param.name
                continue
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, FieldInfo(default=default, description=param_docs.get(param.name)))
        self.arguments_model: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{self.name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        self.parameters = _clean_schema(self.arguments_model.model_json_schema())

    def schema(self) -> dict[str, Any]:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    async def __call__(self, ctx: ToolContext, arguments: dict[str, Any]) -> Any:
        validated = self.arguments_model.model_validate(arguments)
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if self.context_param:
            kwargs[self.context_param] = ctx
        return await self.func(**kwargs)


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop what only adds tokens to every model call: pydantic's `title` keys, and the
    `anyOf: [T, null]` + `default: null` of an optional argument, which becomes plain `T` (it is
    not required, so the model simply leaves it out; an explicit null is still accepted)."""
    if isinstance(schema, list):
        return [_clean_schema(v) for v in schema]  # type: ignore[return-value]
    if not isinstance(schema, dict):
        return schema
    cleaned = {k: _clean_schema(v) for k, v in schema.items() if k != "title" or not isinstance(v, str)}
    variants = cleaned.get("anyOf")
    if "default" in cleaned and cleaned["default"] is None and isinstance(variants, list) and len(variants) == 2 \
            and {"type": "null"} in variants:
        (kept,) = [v for v in variants if v != {"type": "null"}]
        rest = {k: v for k, v in cleaned.items() if k not in ("anyOf", "default")}
        cleaned = {**kept, **rest}
    return cleaned


def tool(func: Callable[..., Awaitable[Any]] | None = None, *, name: str | None = None,
         description: str | None = None) -> Any:
    """Decorator: turn an async function into a `Tool`."""
    def wrap(f: Callable[..., Awaitable[Any]]) -> Tool:
        return Tool(f, name=name, description=description)
    return wrap(func) if func is not None else wrap


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "ok"
    return json.dumps(value, ensure_ascii=False, default=str)


class ToolRegistry:
    """The tools a session offers, by name."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools or []:
            self.register(t)

    def register(self, t: Tool) -> None:
        if t.name in self._tools:
            raise ValueError(f"a tool named {t.name!r} is already registered")
        self._tools[t.name] = t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def remove(self, name: str) -> None:
        """Stop offering `name` (no error when it is not registered)."""
        self._tools.pop(name, None)

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self._tools.values()]

    def only(self, names: list[str]) -> ToolRegistry:
        return ToolRegistry([t for n, t in self._tools.items() if n in names])

    def __len__(self) -> int:
        return len(self._tools)

    async def execute(self, ctx: ToolContext, name: str, raw_arguments: str) -> ToolResult:
        """Run a tool call; failures become readable results, never exceptions."""
        started = time.perf_counter()

        def done(ok: bool, content: str) -> ToolResult:
            return ToolResult(ok, content, (time.perf_counter() - started) * 1000)

        t = self._tools.get(name)
        if t is None:
            return done(False, f"Error: there is no tool named {name!r}. Available tools: {', '.join(self._tools)}")
        try:
            arguments = json.loads(raw_arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            return done(False, f"Error: the arguments for {name} are not a JSON object ({exc}): {raw_arguments[:200]}")
        try:
            return done(True, _render(await t(ctx, arguments)))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            return done(False, f"Error: invalid arguments for {name}: {problems}")
        except ToolError as exc:
            return done(False, f"Error: {exc}")
        except Exception as exc:  # noqa: BLE001 - a tool bug must not end the turn
            return done(False, f"Error: {name} failed: {type(exc).__name__}: {exc}")
