"""Hidden characters: invisible, bidirectional, tag and look-alike characters found while a line is
folded (`normalise.fold`), reported by what they can hide, and raised to dangerous when the line
they sat in turned out dangerous once they were removed.
"""

from __future__ import annotations

import re

from skills.guard.collect import Collector
from skills.guard.normalise import Removed, visible


def hidden_chars(c: Collector, number: int, raw: str, removed: Removed, script: bool) -> None:
    if not (removed.any_hidden or removed.confusables):
        return
    shown = visible(raw)
    if removed.tags and not ("\U0001f3f4" in raw and re.fullmatch(r"[a-z0-9]{0,7}", removed.tags)):
        c.add(number, "obfuscation", "dangerous", f"Unicode tag characters smuggle invisible text: {removed.tags!r}",
              removed.tags, shown)
    if removed.bidi:
        rtl = re.search(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]", raw)
        c.add(number, "obfuscation", "caution" if rtl and not script else "dangerous",
              "bidirectional control characters can make text read differently than it runs", shown)
    if removed.zero_width:
        c.add(number, "obfuscation", "dangerous", "invisible characters hide text from a human reader", shown)
    if removed.soft_hyphens or removed.marks:
        c.add(number, "obfuscation", "caution", "invisible soft hyphens or direction marks inside the text", shown)
    if removed.confusables and re.search(r"[A-Za-z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff][A-Za-z]", raw):
        c.add(number, "obfuscation", "caution", "words mixing Latin with look-alike Cyrillic or Greek letters", shown)


def escalate_hidden(c: Collector, number: int, removed: Removed, raw: str) -> None:
    """Hidden characters on a line that turned out dangerous once they were removed."""
    hiding = removed.any_hidden or removed.confusables
    if hiding and any(f.severity == "dangerous" and f.rule != "obfuscation" for (n, _), f in c.found.items() if n == number):
        c.add(number, "obfuscation", "dangerous", "hidden or look-alike characters disguise a dangerous line",
              "", visible(raw))
