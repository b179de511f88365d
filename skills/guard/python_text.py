"""Python source as people see it: the strings only shown to people (docstrings, argparse help,
print and log calls, a report entry's description), blanked for the line rules so help text is not read as code, and the source
text of a node, cut out only when it becomes a finding.
"""

from __future__ import annotations

import ast
import re

INERT_KEYWORDS = {"help", "description", "epilog", "usage", "metavar", "prog"}
INERT_ENTRIES = INERT_KEYWORDS | {"message", "title", "summary", "detail", "details", "explanation", "remediation",
                                  "recommendation", "reason", "note", "hint"}
"""Keys of a dict entry whose text is a report's prose for people ({"description": "Symlinks can ..."})."""
PROSE = re.compile(r"^[^|;&`$<>]*$")
"""A dict entry's text is only prose when it holds no shell operator (a value can be looked up and run later,
so `{"message": "curl ... | sh"}` stays code)."""
INERT_CALLS = {"print", "echo", "secho", "debug", "info", "warning", "warn", "error", "critical", "exception", "log",
               "write_line"}


def inert_spans(tree: ast.AST) -> list[tuple[int, int, int, int]]:
    """Where the strings only shown to people are: (line, column, end line, end column), columns
    in UTF-8 bytes."""
    spans: list[tuple[int, int, int, int]] = []

    def span(node: ast.AST) -> None:
        if hasattr(node, "end_lineno") and node.end_lineno is not None:  # type: ignore[attr-defined]
            spans.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]

    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            span(node.value)
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in INERT_ENTRIES and _prose(value):
                    span(value)
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in INERT_KEYWORDS and _plain_string(keyword.value):
                    span(keyword.value)
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id \
                if isinstance(node.func, ast.Name) else ""
            if name in INERT_CALLS:
                for arg in node.args:
                    if _plain_string(arg):
                        span(arg)
    return spans


def _prose(node: ast.AST) -> bool:
    """A sentence or more of plain words: a string (or f-string's literal parts) of at least six words,
    no shell operators and no address."""
    parts = [node] if isinstance(node, ast.Constant) else list(node.values) if isinstance(node, ast.JoinedStr) else []
    text = " ".join(p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str))
    return bool(text) and len(text.split()) >= 6 and "://" not in text and bool(PROSE.match(text))


def _plain_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) or isinstance(node, ast.JoinedStr)


class Segments:
    """The source text of nodes of one file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._lines: list[str] | None = None

    def cut(self, node: ast.AST) -> str:
        """The source text of `node`, as `ast.get_source_segment` gives it, without splitting the whole
        file for every call (only nodes that become findings are cut out)."""
        if self._lines is None:
            self._lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", self.source)  # as ast splits
        start, end = node.lineno - 1, (node.end_lineno or node.lineno) - 1  # type: ignore[attr-defined]
        if start >= len(self._lines):
            return ""
        first = self._lines[start].encode("utf-8")
        if start == end:
            return first[node.col_offset:node.end_col_offset].decode("utf-8", "replace")  # type: ignore[attr-defined]
        last = self._lines[end].encode("utf-8") if end < len(self._lines) else b""
        return first[node.col_offset:].decode("utf-8", "replace") + "".join(self._lines[start + 1:end]) \
            + last[:node.end_col_offset].decode("utf-8", "replace")  # type: ignore[attr-defined]


def mask(source: str, spans: list[tuple[int, int, int, int]]) -> list[str]:
    """The source's lines with the inert strings blanked (so line rules do not read help text as code)."""
    lines = source.splitlines()
    for start, start_col, end, end_col in spans:
        for number in range(start, end + 1):
            if number - 1 >= len(lines):
                break
            text = lines[number - 1]
            # ast columns are UTF-8 byte offsets
            raw = text.encode("utf-8")
            lo = start_col if number == start else 0
            hi = end_col if number == end else len(raw)
            raw = raw[:lo] + b" " * (hi - lo) + raw[hi:]
            lines[number - 1] = raw.decode("utf-8", "replace")
    return lines
