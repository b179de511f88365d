"""Python string folding: what a string expression will hold when it runs, read from its syntax
tree without running it (concatenation, f-strings, `join`, `chr`/`map(chr, ...)`, reversal,
`bytes.fromhex`, base64/base32/base85, hex, zlib, rot13, encode/decode), so the scanner can scan
what `exec` or `os.system` will really get.
"""

from __future__ import annotations

import ast
import base64
import binascii
import codecs
import re
import zlib

MAX_FOLD = 200_000


def dotted_name(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append(dotted_name(node.func) + "()")
    return ".".join(reversed(parts))


class Folder:
    """Folds string expressions; `constants` holds the names bound to a folded string."""

    def __init__(self) -> None:
        self.constants: dict[str, str | bytes] = {}

    def fold(self, node: ast.AST | None, depth: int = 0) -> str | bytes | None:
        if node is None or depth > 40:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                part = self.fold(value.value if isinstance(value, ast.FormattedValue) else value, depth + 1)
                if not isinstance(part, str):
                    return None
                parts.append(part)
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.fold(node.left, depth + 1), self.fold(node.right, depth + 1)
            if type(left) is type(right) and left is not None and len(left) + len(right) < MAX_FOLD:  # type: ignore[arg-type]
                return left + right  # type: ignore[operator]
            return None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            value = self.fold(node.value, depth + 1)
            step = node.slice.step
            if value is not None and isinstance(step, ast.UnaryOp) and isinstance(step.operand, ast.Constant) \
                    and step.operand.value == 1 and node.slice.lower is None and node.slice.upper is None:
                return value[::-1]
            return None
        if isinstance(node, ast.Call):
            return self._fold_call(node, depth)
        return None

    def _fold_call(self, node: ast.Call, depth: int) -> str | bytes | None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        args = [self.fold(a, depth + 1) for a in node.args]
        try:
            if name == "chr" and len(node.args) == 1 and isinstance(node.args[0], ast.Constant):
                return chr(int(node.args[0].value))
            if name == "join" and isinstance(func, ast.Attribute) and len(node.args) == 1:
                sep = self.fold(func.value, depth + 1)
                items = self._fold_items(node.args[0], depth)
                if isinstance(sep, str) and items is not None and all(isinstance(i, str) for i in items):
                    return sep.join(items)  # type: ignore[arg-type]
                return None
            if name in ("decode", "encode") and isinstance(func, ast.Attribute):
                value = self.fold(func.value, depth + 1)
                if isinstance(value, bytes) and name == "decode":
                    return value.decode("utf-8", "replace")
                if isinstance(value, str) and name == "encode":
                    return value.encode("utf-8")
                return None
            if not args or args[0] is None:
                return None
            first = args[0]
            raw = first.encode("latin-1", "ignore") if isinstance(first, str) else first
            if name in ("b64decode", "decodebytes", "a2b_base64", "urlsafe_b64decode"):
                return base64.urlsafe_b64decode(raw) if name.startswith("urlsafe") else base64.b64decode(raw + b"=" * (-len(raw) % 4))
            if name == "b32decode":
                return base64.b32decode(raw)
            if name == "b85decode":
                return base64.b85decode(raw)
            if name == "a85decode":
                return base64.a85decode(raw)
            if name in ("fromhex", "unhexlify", "a2b_hex", "b16decode"):
                return binascii.unhexlify(re.sub(rb"\s", b"", raw))
            if name == "decompress" and isinstance(first, bytes):
                return zlib.decompress(first)[:MAX_FOLD]
            if name == "decode" and len(args) > 1 and isinstance(args[1], str) and "rot" in args[1] and isinstance(first, str):
                return codecs.decode(first, "rot13")
            if name in ("str", "bytes") and len(args) == 1:
                return first
        except (ValueError, binascii.Error, zlib.error, TypeError, OverflowError):
            return None
        return None

    def _fold_items(self, node: ast.AST, depth: int) -> list[str | bytes | None] | None:
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.fold(e, depth + 1) for e in node.elts]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "map" \
                and len(node.args) == 2 and isinstance(node.args[0], ast.Name) and node.args[0].id == "chr":
            codes = node.args[1]
            if isinstance(codes, (ast.List, ast.Tuple)) and all(isinstance(e, ast.Constant) and isinstance(e.value, int)
                                                                for e in codes.elts):
                return [chr(e.value) for e in codes.elts]  # type: ignore[attr-defined]
        if isinstance(node, ast.GeneratorExp) and isinstance(node.elt, ast.Call) and isinstance(node.elt.func, ast.Name) \
                and node.elt.func.id == "chr" and len(node.generators) == 1:
            codes = node.generators[0].iter
            if isinstance(codes, (ast.List, ast.Tuple)) and all(isinstance(e, ast.Constant) and isinstance(e.value, int)
                                                                for e in codes.elts):
                return [chr(e.value) for e in codes.elts]  # type: ignore[attr-defined]
        return None
