"""Precision and recall of the near-duplicate check (issue 16) on the labelled pairs.

`tests/dedup_pairs.json` holds skills and two kinds of labelled pairs: "same" (one procedure in
other words) and "different" (different procedures on the same topic, e.g. rotate vs ship
nginx logs). For each mode this prints precision and recall of "is a duplicate" at the
shipped thresholds, plus a sweep of the lexical threshold (how the default was picked).

Embedding mode calls `litellm.aembedding` against a deterministic fake embedding endpoint on
127.0.0.1 (hashed bag of words, see tests/fakes/model_server.py): it measures the mechanics
of the embedding path, not the quality of a real embedding model. Point `--embedding-model`
and `--api-base` at a real one to measure that.

    .venv/bin/python bench/skill_dedup.py [--embedding-model openai/x --api-base URL --api-key KEY]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from skills.similar import SkillDeduplicator, LexicalModel, SkillText, precision_recall, same_name  # noqa: E402

PAIRS = ROOT / "tests" / "dedup_pairs.json"


def load() -> tuple[dict[str, SkillText], list[list[str]], list[list[str]]]:
    data = json.loads(PAIRS.read_text(encoding="utf-8"))
    skills = {name: SkillText.from_markdown(text, name) for name, text in data["skills"].items()}
    return skills, data["same"], data["different"]


async def scores(dedup: SkillDeduplicator, skills: dict[str, SkillText],
                 pairs: list[list[str]]) -> list[tuple[bool, float, float | None]]:
    model = LexicalModel.from_texts((s.content for s in skills.values()), dedup.background())
    result = []
    for a, b in pairs:
        [similarity] = await dedup.compare(skills[a], [skills[b]], model)
        result.append((same_name(a, b), similarity.lexical, similarity.semantic))
    return result


Scored = list[tuple[bool, float, float | None]]


def report(label: str, dedup: SkillDeduplicator, same: Scored, different: Scored) -> None:
    precision, recall = precision_recall([dedup.decide(*s) for s in same], [dedup.decide(*s) for s in different])
    print(f"{label:<34} precision {precision:.3f}  recall {recall:.3f}  "
          f"({len(same)} same-procedure pairs, {len(different)} different-procedure pairs)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedding-model", default="")
    parser.add_argument("--api-base", default="")
    parser.add_argument("--api-key", default="sk-bench")
    options = parser.parse_args()
    skills, same_pairs, different_pairs = load()

    lexical = SkillDeduplicator()
    started = time.perf_counter()
    same = await scores(lexical, skills, same_pairs)
    different = await scores(lexical, skills, different_pairs)
    elapsed = time.perf_counter() - started
    print(f"labelled set: {len(skills)} skills, {PAIRS.relative_to(ROOT)}")
    report(f"lexical (threshold {lexical.lexical_threshold})", lexical, same, different)
    print(f"  {len(same) + len(different)} pairs scored in {elapsed * 1000:.0f} ms")
    print("  sweep of the lexical threshold:")
    for step in range(30, 62, 3):
        threshold = step / 100
        swept = SkillDeduplicator(lexical_threshold=threshold)
        p, r = precision_recall([swept.decide(name, lex, None) for name, lex, _ in same],
                                [swept.decide(name, lex, None) for name, lex, _ in different])
        print(f"    {threshold:.2f}: precision {p:.3f} recall {r:.3f}")

    server = None
    model, api_base = options.embedding_model, options.api_base
    if not model:
        from tests.fakes.model_server import FakeModelServer
        server = await FakeModelServer().start()
        model, api_base = "openai/fake-embedding", server.base_url
    try:
        from agent.skill_writes import litellm_embedder
        embedded = SkillDeduplicator(embed=litellm_embedder(model, api_base=api_base, api_key=options.api_key))
        started = time.perf_counter()
        same = await scores(embedded, skills, same_pairs)
        different = await scores(embedded, skills, different_pairs)
        elapsed = time.perf_counter() - started
        where = "fake endpoint on 127.0.0.1" if server is not None else api_base or "provider default"
        report(f"lexical + embedding ({where})", embedded, same, different)
        print(f"  {model}: {len(same) + len(different)} pairs in {elapsed * 1000:.0f} ms "
              f"(thresholds: embedding {embedded.embedding_threshold}, lexical floor {embedded.embedding_floor})")
    finally:
        if server is not None:
            await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
