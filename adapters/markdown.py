"""Markdown (as models write it) converted for each platform, and a plain-text fallback.

The agent answers in CommonMark-ish Markdown. Platforms each understand a different dialect:

- Telegram: we use `parse_mode=HTML`, not MarkdownV2. HTML needs only `&`, `<` and `>` escaped
  (MarkdownV2 needs 18 characters escaped outside entities and different rules inside code and
  links), so text the model wrote can never break the parser by accident, and code keeps every
  character verbatim. Supported tags: b, i, s, code, pre, a, blockquote.
- Slack: mrkdwn (`*bold*`, `_italic_`, `~strike~`, `<url|text>`), with `&`, `<`, `>` escaped.
- Discord: renders Markdown itself, so text passes through unchanged.
- Plain: the markup removed (the fallback when a platform rejects our formatting).

The converter parses the text into blocks (fenced code, headings, quotes, list items,
paragraph lines) and inline spans (code, bold, italic, strike, links) and renders each for the
platform, so output tags are always balanced even for half-finished text while streaming: an
unclosed code fence is a code block to the end of the text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# --- parsing -------------------------------------------------------------------------------

InlineKind = Literal["text", "code", "bold", "italic", "strike", "link"]


@dataclass
class Span:
    kind: InlineKind
    text: str = ""                       # for text and code
    children: list[Span] = field(default_factory=list)
    url: str = ""                        # for links


@dataclass
class Block:
    kind: Literal["code", "heading", "quote", "bullet", "numbered", "line", "blank"]
    text: str = ""                       # raw text (code body, or the line without its marker)
    lang: str = ""                       # code fence info string
    marker: str = ""                     # "1." for numbered items
    indent: str = ""                     # leading spaces of list items


FENCE = re.compile(r"^(\s{0,3})(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
NUMBERED = re.compile(r"^(\s*)(\d{1,9}[.)])\s+(.*)$")
RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")


def parse_blocks(text: str) -> list[Block]:
    """Split Markdown into blocks; a fence left open runs to the end of the text."""
    blocks: list[Block] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            marker = fence.group(2)
            body: list[str] = []
            i += 1
            while i < len(lines):
                closing = lines[i].strip()
                if closing.startswith(marker[0] * len(marker)) and set(closing) <= {marker[0]}:
                    break
                body.append(lines[i])
                i += 1
            blocks.append(Block("code", "\n".join(body), lang=fence.group(3)))
            i += 1  # past the closing fence (or the end)
            continue
        if not line.strip():
            blocks.append(Block("blank"))
        elif RULE.match(line):
            blocks.append(Block("line", "──────────"))
        elif m := HEADING.match(line):
            blocks.append(Block("heading", m.group(2)))
        elif m := QUOTE.match(line):
            blocks.append(Block("quote", m.group(1)))
        elif m := BULLET.match(line):
            blocks.append(Block("bullet", m.group(2), indent=m.group(1)))
        elif m := NUMBERED.match(line):
            blocks.append(Block("numbered", m.group(3), marker=m.group(2), indent=m.group(1)))
        else:
            blocks.append(Block("line", line))
        i += 1
    return blocks


_WORD = re.compile(r"\w")


def _is_word(ch: str) -> bool:
    return bool(ch) and bool(_WORD.match(ch))


def parse_inline(text: str) -> list[Span]:
    """Inline Markdown into spans. Unmatched markers stay literal text."""
    spans: list[Span] = []
    buf: list[str] = []
    i = 0
    n = len(text)

    def flush() -> None:
        if buf:
            spans.append(Span("text", "".join(buf)))
            buf.clear()

    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and not text[i + 1].isalnum() and not text[i + 1].isspace():
            buf.append(text[i + 1])
            i += 2
            continue
        if ch == "`":
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            ticks = text[i:i + run]
            end = text.find(ticks, i + run)
            while end != -1 and end + run < n and text[end + run] == "`":
                end = text.find(ticks, end + run + 1)
            if end != -1:
                flush()
                body = text[i + run:end]
                if body.startswith(" ") and body.endswith(" ") and body.strip():
                    body = body[1:-1]
                spans.append(Span("code", body))
                i = end + run
                continue
            buf.append(ticks)
            i += run
            continue
        if text.startswith("**", i) or text.startswith("__", i) or text.startswith("~~", i):
            marker = text[i:i + 2]
            end = _find_closing(text, marker, i + 2)
            if end != -1 and (marker != "__" or (not _is_word(text[i - 1:i]) and not _is_word(text[end + 2:end + 3]))):
                flush()
                kind: InlineKind = "strike" if marker == "~~" else "bold"
                spans.append(Span(kind, children=parse_inline(text[i + 2:end])))
                i = end + 2
                continue
        if ch in "*_" and i + 1 < n and not text[i + 1].isspace() and text[i + 1] != ch:
            # `_` only opens at a word boundary, so snake_case names stay as they are.
            if ch == "*" or not _is_word(text[i - 1:i]):
                end = _find_closing(text, ch, i + 1)
                if end != -1 and (ch == "*" or not _is_word(text[end + 1:end + 2])):
                    flush()
                    spans.append(Span("italic", children=parse_inline(text[i + 1:end])))
                    i = end + 1
                    continue
        if ch == "[":
            close = _matching_bracket(text, i)
            if close != -1 and text.startswith("(", close + 1):
                paren = text.find(")", close + 2)
                url = text[close + 2:paren].strip() if paren != -1 else ""
                if url and " " not in url:
                    flush()
                    spans.append(Span("link", children=parse_inline(text[i + 1:close]), url=url))
                    i = paren + 1
                    continue
        buf.append(ch)
        i += 1
    flush()
    return spans


def _find_closing(text: str, marker: str, start: int) -> int:
    """Index of a closing `marker` after `start` that is not preceded by whitespace."""
    pos = start
    while True:
        end = text.find(marker, pos)
        if end == -1:
            return -1
        if end > start and not text[end - 1].isspace() and text[end - 1] != "\\":
            if len(marker) == 1 and text.startswith(marker * 2, end):
                pos = end + 2      # part of a `**`/`__` pair: not ours
                continue
            return end
        pos = end + 1


def _matching_bracket(text: str, start: int) -> int:
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "[":
            depth += 1
        elif text[j] == "]":
            depth -= 1
            if depth == 0:
                return j
        elif text[j] == "\n":
            return -1
    return -1


# --- rendering -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dialect:
    escape: Callable[[str], str]
    code: Callable[[str], str]
    bold: Callable[[str], str]
    italic: Callable[[str], str]
    strike: Callable[[str], str]
    link: Callable[[str, str], str]          # (rendered label, url)
    pre: Callable[[str, str], str]           # (code body, language)
    heading: Callable[[str], str]
    quote: Callable[[list[str]], str]        # consecutive rendered quote lines
    bullet: str = "•"


def _render_inline(spans: list[Span], d: Dialect) -> str:
    out: list[str] = []
    for s in spans:
        if s.kind == "text":
            out.append(d.escape(s.text))
        elif s.kind == "code":
            out.append(d.code(s.text))
        elif s.kind == "bold":
            out.append(d.bold(_render_inline(s.children, d)))
        elif s.kind == "italic":
            out.append(d.italic(_render_inline(s.children, d)))
        elif s.kind == "strike":
            out.append(d.strike(_render_inline(s.children, d)))
        elif s.kind == "link":
            out.append(d.link(_render_inline(s.children, d), s.url))
    return "".join(out)


def _render(text: str, d: Dialect) -> str:
    out: list[str] = []
    quote: list[str] = []

    def flush_quote() -> None:
        if quote:
            out.append(d.quote(list(quote)))
            quote.clear()

    for block in parse_blocks(text):
        if block.kind != "quote":
            flush_quote()
        if block.kind == "code":
            out.append(d.pre(block.text, block.lang))
        elif block.kind == "heading":
            out.append(d.heading(_render_inline(parse_inline(block.text), d)))
        elif block.kind == "quote":
            quote.append(_render_inline(parse_inline(block.text), d))
        elif block.kind == "bullet":
            out.append(f"{block.indent}{d.bullet} {_render_inline(parse_inline(block.text), d)}")
        elif block.kind == "numbered":
            out.append(f"{block.indent}{d.escape(block.marker)} {_render_inline(parse_inline(block.text), d)}")
        elif block.kind == "blank":
            out.append("")
        else:
            out.append(_render_inline(parse_inline(block.text), d))
    flush_quote()
    return "\n".join(out).strip("\n")


def _html_escape(s: str) -> str:
    return html.escape(s, quote=False)


def _html_pre(body: str, lang: str) -> str:
    if lang:
        return f'<pre><code class="language-{html.escape(lang)}">{_html_escape(body)}</code></pre>'
    return f"<pre>{_html_escape(body)}</pre>"


TELEGRAM_HTML = Dialect(
    escape=_html_escape,
    code=lambda s: f"<code>{_html_escape(s)}</code>",
    bold=lambda s: f"<b>{s}</b>",
    italic=lambda s: f"<i>{s}</i>",
    strike=lambda s: f"<s>{s}</s>",
    link=lambda label, url: f'<a href="{html.escape(url, quote=True)}">{label}</a>',
    pre=_html_pre,
    heading=lambda s: f"<b>{s}</b>",
    quote=lambda lines: "<blockquote>" + "\n".join(lines) + "</blockquote>",
)


def _slack_escape(s: str) -> str:
    # Slack's documented rule: escape exactly these three, everything else is literal.
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(label: str, url: str) -> str:
    safe_url = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{safe_url}|{label.replace('|', '¦')}>" if label else f"<{safe_url}>"


SLACK_MRKDWN = Dialect(
    escape=_slack_escape,
    code=lambda s: f"`{_slack_escape(s)}`",
    bold=lambda s: f"*{s}*",
    italic=lambda s: f"_{s}_",
    strike=lambda s: f"~{s}~",
    link=_slack_link,
    pre=lambda body, lang: f"```\n{_slack_escape(body)}\n```",
    heading=lambda s: f"*{s}*",
    quote=lambda lines: "\n".join(f"> {line}" for line in lines),
)

PLAIN = Dialect(
    escape=lambda s: s,
    code=lambda s: s,
    bold=lambda s: s,
    italic=lambda s: s,
    strike=lambda s: s,
    link=lambda label, url: label if label == url else f"{label} ({url})",
    pre=lambda body, lang: body,
    heading=lambda s: s,
    quote=lambda lines: "\n".join(f"> {line}" for line in lines),
)


def to_telegram_html(text: str) -> str:
    """Markdown → Telegram HTML (`parse_mode="HTML"`)."""
    return _render(text, TELEGRAM_HTML)


def to_slack_mrkdwn(text: str) -> str:
    """Markdown → Slack mrkdwn."""
    return _render(text, SLACK_MRKDWN)


def to_discord(text: str) -> str:
    """Discord renders Markdown (fences, bold, links, headings, quotes) itself: unchanged."""
    return text


def to_plain(text: str) -> str:
    """Markdown with its markup removed; code keeps its text."""
    return _render(text, PLAIN)
