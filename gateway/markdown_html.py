"""Markdown to safe HTML, for the web chat and the dashboard: one renderer, one sanitizer.

Rendering is markdown-it-py (CommonMark, plus tables and strikethrough) with raw HTML off, so
`<script>` or `<img onerror=...>` in the source come out as text, and links whose scheme it
refuses (`javascript:`, `vbscript:`, most `data:`) stay text. The result then passes nh3
(Ammonia) with an allowlist of exactly the tags and attributes this renderer produces, so a
renderer bug or a plugin cannot smuggle markup through. Images become links (an answer that
embeds `![x](https://host/?q=SECRET)` would otherwise make the browser send it; the page's CSP
blocks it too), and links open in a new tab with `rel="noopener noreferrer"`.
"""

from __future__ import annotations

from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "em", "strong", "s", "del", "code", "pre",
        "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td"}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "code": {"class"}, "th": {"style"}, "td": {"style"}}
URL_SCHEMES = {"http", "https", "mailto"}

_cleaner = nh3.Cleaner(tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                       set_tag_attribute_values={"a": {"target": "_blank"}},
                       filter_style_properties={"text-align"}, link_rel="noopener noreferrer")


def _image_as_link(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env) or "image"
    return f'<a href="{escapeHtml(str(token.attrGet("src") or ""))}">{escapeHtml(alt)}</a>'


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}) \
        .enable("table").enable("strikethrough")
    md.add_render_rule("image", _image_as_link)
    return md


_renderer = _markdown()


def to_html(text: str) -> str:
    """`text` (Markdown) as an HTML fragment that is safe to put into a page as it is."""
    return _cleaner.clean(_renderer.render(text or ""))
