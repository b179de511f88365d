"""Turning data into safe HTML: the Jinja2 environment (autoescaped), Markdown, diffs, the SVG chart.

Nothing a user, the agent or a skill author wrote reaches a page unescaped: templates autoescape,
Markdown is rendered by `gateway.markdown_html` (raw HTML shown as text, javascript: links
refused, the result sanitized by nh3), and the chart is built from numbers with its labels
escaped. No secret reaches a page either: every value a template prints passes through the `Redactor` (the environment's and the
config's known secrets, and secret shapes) as Jinja's `finalize`, whatever it came from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from agent.redact import Redactor
from gateway.markdown_html import to_html
from gateway.wording import plural

def markdown(text: str) -> Markup:
    """Markdown to HTML with any raw HTML in the source shown as text."""
    return Markup(to_html(text or ""))


WEB_CHAT_PREFIX = "web-"  # the web chat (gateway/api/static/chat.js) names its conversations web-<random>


def platform_label(session: Any) -> str:
    """Where a session's conversation happens: the web chat's are API sessions with a `web-` id."""
    platform = str(getattr(session, "platform", "") or "cli")
    chat_id = str(getattr(session, "chat_id", "") or "")
    if platform == "api" and chat_id.rsplit(":", 1)[-1].startswith(WEB_CHAT_PREFIX):
        return "web chat"
    return platform


def session_name(session: Any) -> str:
    """What a session is called on a page: its title (its first message); else its key, except for a
    web chat, whose key is a long random id nobody would recognise."""
    title = str(getattr(session, "title", "") or "")
    if title:
        return title
    return "untitled web chat" if platform_label(session) == "web chat" else str(getattr(session, "key", ""))


def when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(timestamp)))


def ago(timestamp: float | None, now: float | None = None) -> str:
    if not timestamp:
        return "never"
    seconds = max(0.0, (time.time() if now is None else now) - float(timestamp))
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """(css class, line) for a unified diff."""
    rows = []
    for line in (diff or "").splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        rows.append((kind, line))
    return rows


def pretty_json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Bucket:
    label: str      # e.g. "14:00"
    value: float


def bar_chart(title: str, buckets: Iterable[Bucket], *, unit: str, width: int = 480, height: int = 120,
              css: str = "bars") -> Markup:
    """A small inline SVG bar chart; every bar has a tooltip (<title>) with its label and value."""
    items = list(buckets)
    top = max((b.value for b in items), default=0.0) or 1.0
    pad_bottom, pad_top = 16, 14
    plot = height - pad_bottom - pad_top
    step = width / max(1, len(items))
    bar = max(1.0, step * 0.75)
    parts = [(f'<svg class="chart {escape(css)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
              f' role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'),
             f'<text class="axis" x="0" y="10">max {escape(_number(top))} {escape(unit)}</text>',
             f'<line class="base" x1="0" y1="{height - pad_bottom}" x2="{width}" y2="{height - pad_bottom}"/>']
    for i, b in enumerate(items):
        h = 0.0 if b.value <= 0 else max(1.0, plot * b.value / top)
        x = i * step + (step - bar) / 2
        y = height - pad_bottom - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                     f'<title>{escape(b.label)}: {escape(_number(b.value))} {escape(unit)}</title></rect>')
        if i % 6 == 0:
            parts.append(f'<text class="axis" x="{x:.1f}" y="{height - 3}">{escape(b.label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def redacting(redactor: Redactor) -> Any:
    """Jinja `finalize`: every printed value with its secrets masked (Markup stays Markup)."""

    def finalize(value: Any) -> Any:
        if isinstance(value, Markup):
            return Markup(redactor.redact(str(value)))
        if isinstance(value, str):
            return redactor.redact(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        return redactor.redact(str(value))

    return finalize


def make_environment(redactor: Redactor | None = None) -> Environment:
    env = Environment(loader=PackageLoader("gateway.dashboard", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      finalize=redacting(redactor or Redactor.from_environ()))
    env.filters.update(markdown=markdown, platform_label=platform_label, session_name=session_name, when=when,
                       ago=ago, diff_lines=diff_lines, pretty_json=pretty_json, plural=plural)
    return env
