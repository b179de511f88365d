"""Hypothesis strategies for the property tests of parsers of outside text (tests/test_fuzz_*.py).

Each builds mostly well-formed input of one format and then breaks it in the ways people and
attackers do: a hostile snippet spliced in at a random line, a lone surrogate, NUL bytes, odd
line ends, huge numbers. A fixed seed and bounded examples keep every run the same and short.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SEED = 31
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
SLOW_FUZZ = settings(FUZZ, max_examples=30)

HOSTILE = ["&anchor x", "*anchor", "!!python/object/apply:os.system ['id']", "{", "[", ": :", "\x00", "\ud800",
           "---", "? [a, b]\n: c", "a: &x [1]\nb: *x", "\t", "%YAML 1.1", "!!binary AAAA", "<<: {a: 1}", "- - -",
           "'", '"\\x', "\ufeff", "\u2028", "\u202e", "\u200b", "99999999999999999999999999", "-.inf", "~"]


def spliced(text: str, snippets: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`text` with 0-3 snippets inserted at random lines."""
    @st.composite
    def build(draw: Any) -> str:
        lines = text.splitlines()
        for _ in range(draw(st.integers(0, 3))):
            lines.insert(draw(st.integers(0, len(lines))), draw(snippets))
        return "\n".join(lines) + "\n"
    return build()


SCALARS = st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.booleans(), st.none(), st.datetimes())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4), max_leaves=12)
SKILL_KEYS = st.sampled_from(["name", "description", "license", "compatibility", "allowed-tools", "metadata",
                              "version"]) | st.text(max_size=10)


@st.composite
def skill_texts(draw: Any, name: str = "fuzzed") -> str:
    """A SKILL.md: front matter from random YAML values (often with a valid name and description), broken."""
    data: dict[Any, Any] = draw(st.dictionaries(SKILL_KEYS, VALUES, max_size=6))
    if draw(st.booleans()):
        data.update(name=name, description=draw(st.text(min_size=1, max_size=60)))
    try:
        front = yaml.safe_dump(data, allow_unicode=draw(st.booleans()),
                               default_flow_style=draw(st.sampled_from([None, True, False])))
    except yaml.YAMLError:
        front = f"name: {name}\n"
    front = draw(spliced(front, st.sampled_from(HOSTILE) | st.text(max_size=20)))
    opener = draw(st.sampled_from(["---\n", "---\r\n", "\ufeff---\n", "--- \n", ""]))
    closer = draw(st.sampled_from(["---\n", "---", "", "...\n"]))
    return opener + front + closer + draw(st.text(max_size=80))
