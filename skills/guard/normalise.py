"""Normalising text before the guard matches it, and reporting what was removed.

A reader sees "ignore" whether it is written with a Cyrillic "о", a soft hyphen inside it or a
zero-width space between its letters; the model reads the same word. So every line is matched
in a folded form: invisible characters (zero-width, bidi controls, soft hyphen, variation
selectors) removed, Unicode tag characters removed (and the ASCII they smuggle decoded),
NFKC applied (full-width and mathematical letters become ASCII) and the Cyrillic and Greek
letters that look like Latin ones folded to Latin (Unicode TR39 "confusables" for the scripts
that matter for English trigger phrases). `fold` returns the folded line and what it removed,
so the scanner can report the presence of hidden characters separately from what they hid.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\u180e\ufeff")
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
DIRECTION_MARKS = frozenset("\u200e\u200f\u061c")
SOFT_HYPHEN = "\u00ad"
VARIATION_SELECTORS = frozenset(chr(c) for c in range(0xFE00, 0xFE10))
TAG_RANGE = range(0xE0000, 0xE0080)

# TR39 confusables: Cyrillic, Greek and a few Latin-extended letters that render like ASCII.
_CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "һ": "h", "ӏ": "l", "ɡ": "g", "ո": "n", "ս": "u", "ց": "g", "օ": "o", "ᴦ": "r", "ʏ": "y",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Һ": "H", "Ӏ": "I",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    "ı": "i", "ȷ": "j", "ℓ": "l", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-",
    "‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "＂": '"', "＇": "'",
}
_FOLD_TABLE = str.maketrans(_CONFUSABLES)


@dataclass(frozen=True)
class Removed:
    """Hidden characters found in one line: what kind, and the text tag characters smuggled."""

    zero_width: int = 0
    bidi: int = 0
    marks: int = 0
    soft_hyphens: int = 0
    tags: str = ""
    confusables: int = 0
    emoji_joiners: int = 0

    @property
    def any_hidden(self) -> bool:
        return bool(self.zero_width or self.bidi or self.marks or self.soft_hyphens or self.tags)


NOTHING = Removed()


def _emoji(ch: str) -> bool:
    return (ord(ch) >= 0x2190 and unicodedata.category(ch) in ("So", "Sk", "Mn")) or 0x1F000 <= ord(ch) <= 0x1FAFF


def _joins_non_latin(line: str, index: int) -> bool:
    """A ZWJ between emoji, or a ZWNJ/ZWJ between letters of a script that needs it (Persian, Indic)."""
    before = line[index - 1] if index > 0 else ""
    after = line[index + 1] if index + 1 < len(line) else ""
    if not before or not after:
        return False
    if (_emoji(before) or before in VARIATION_SELECTORS) and _emoji(after):
        return True
    return all(ord(c) > 0x0590 and unicodedata.category(c).startswith(("L", "M")) for c in (before, after))


def _rtl_context(line: str, index: int) -> bool:
    return any(unicodedata.bidirectional(c) in ("R", "AL") for c in line[max(0, index - 3):index + 4])


def fold(line: str, *, first_line: bool = False) -> tuple[str, Removed]:
    """(the line as the guard matches it, what was hidden in it)."""
    if line.isascii():
        return line, NOTHING
    kept: list[str] = []
    counts = {"zero_width": 0, "bidi": 0, "marks": 0, "soft_hyphens": 0, "confusables": 0, "emoji_joiners": 0}
    tags: list[str] = []
    for index, ch in enumerate(line):
        code = ord(ch)
        if code in TAG_RANGE:
            if 0xE0020 <= code <= 0xE007E:
                tags.append(chr(code - 0xE0000))
            continue
        if ch in ZERO_WIDTH:
            if ch == "\ufeff" and first_line and index == 0:
                continue
            if ch in "\u200c\u200d" and _joins_non_latin(line, index):
                counts["emoji_joiners"] += 1
                kept.append(ch)
                continue
            counts["zero_width"] += 1
            continue
        if ch in BIDI_CONTROLS:
            counts["bidi"] += 1
            continue
        if ch in DIRECTION_MARKS:
            if not _rtl_context(line, index):
                counts["marks"] += 1
            continue
        if ch == SOFT_HYPHEN:
            counts["soft_hyphens"] += 1
            continue
        if ch in VARIATION_SELECTORS:
            continue
        kept.append(ch)
    text = unicodedata.normalize("NFKC", "".join(kept))
    folded = text.translate(_FOLD_TABLE)
    counts["confusables"] = sum(1 for a, b in zip(text, folded) if a != b and a.isalpha())
    return folded, Removed(tags="".join(tags), **counts)


def visible(text: str) -> str:
    """Text with invisible characters shown as <U+XXXX>, for a report."""
    return "".join(ch if ch.isprintable() and ch not in DIRECTION_MARKS and ch != SOFT_HYPHEN
                   else f"<U+{ord(ch):04X}>" for ch in text)
