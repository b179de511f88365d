"""Near-duplicate skills: is this new (or proposed, or approved) skill the same procedure as one we have?

Decided in code on the whole skill (description and body; the name only when it is identical):

- lexical: cosine similarity of sublinear TF-IDF vectors over the skill's words (the stemmer
  and stop words of `skills.search`), document frequencies from the library's BM25 index plus
  the bundled skills (so a near-empty library still knows which words are common);
- embedding (optional): cosine similarity of two embeddings from an `Embed` callback the caller
  supplies (the gateway passes one calling `litellm.aembedding` for `[skills] embedding_model`;
  this package imports neither LiteLLM nor `agent/`).

A pair is a duplicate when the names are equal (or made of the same words), or the lexical score reaches
`lexical_threshold`, or (with embeddings) the embedding score reaches `embedding_threshold`
while the lexical score is at least `embedding_floor`. The defaults were picked on the labelled
set in `tests/dedup_pairs.json`; `bench/skill_dedup.py` prints their precision and recall.

`relevant_skills` uses the same vectors to pick the skills worth showing a review: only those
whose similarity to the work reaches a threshold (none is a fine answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from skills.document import SkillFormatError, parse
from skills.search import terms

log = logging.getLogger(__name__)
Embed = Callable[[list[str]], Awaitable[list[list[float]]]]
"""texts -> one vector per text (same order)."""

LEXICAL_THRESHOLD = 0.47
EMBEDDING_THRESHOLD = 0.86
EMBEDDING_FLOOR = 0.25
RELEVANCE_THRESHOLD = 0.12
CANDIDATES = 12
MAX_TEXT_CHARS = 20_000
EMBED_CHARS = 8_000
BUNDLED_ROOT = Path(__file__).resolve().parent / "bundled"


@dataclass(frozen=True)
class SkillText:
    """The parts of a skill the comparison reads."""

    name: str
    description: str
    body: str

    @classmethod
    def from_markdown(cls, text: str, fallback_name: str = "") -> SkillText:
        """From full SKILL.md text; unparseable text is compared as plain body text."""
        try:
            document = parse(text).document
        except SkillFormatError:
            return cls(fallback_name, "", text)
        return cls(document.name or fallback_name, document.description, document.body)

    @property
    def content(self) -> str:
        return f"{self.description}\n{self.body}"[:MAX_TEXT_CHARS]

    def digest(self) -> str:
        return hashlib.sha256(f"{self.name}\0{self.content}".encode()).hexdigest()


@dataclass(frozen=True)
class Similarity:
    """How close an existing skill is to the one being written."""

    name: str
    lexical: float
    semantic: float | None
    duplicate: bool

    def describe(self) -> str:
        semantic = f", embedding {self.semantic:.2f}" if self.semantic is not None else ""
        return f"{self.name} (lexical {self.lexical:.2f}{semantic})"


def _same_word(a: str, b: str) -> bool:
    """Equal stems, or stems sharing their first five letters (rotat / rotation, deploy / deployment)."""
    prefix = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        prefix += 1
    return a == b or prefix >= 5


def same_name(a: str, b: str) -> bool:
    """Equal names, or names made of the same words: nginx-log-rotation = rotate-nginx-logs."""
    if a == b:
        return True
    words_a, words_b = set(terms(a.replace("-", " "))), set(terms(b.replace("-", " ")))
    if len(words_a) < 2 or len(words_a) != len(words_b):
        return False
    return all(any(_same_word(x, y) for y in words_b) for x in words_a) \
        and all(any(_same_word(x, y) for x in words_a) for y in words_b)


def term_counts(text: str) -> Counter[str]:
    return Counter(terms(text[:MAX_TEXT_CHARS]))


def _presence(texts: Iterable[str]) -> tuple[Counter[str], int]:
    df: Counter[str] = Counter()
    count = 0
    for text in texts:
        df.update(set(terms(text[:MAX_TEXT_CHARS])))
        count += 1
    return df, count


def bundled_frequencies(root: Path = BUNDLED_ROOT) -> tuple[Counter[str], int]:
    """Document frequencies of the shipped skills (a background corpus for small libraries)."""
    texts = []
    for path in sorted(root.glob("*/*/SKILL.md")):
        try:
            texts.append(SkillText.from_markdown(path.read_text(encoding="utf-8")).content)
        except OSError:
            continue
    return _presence(texts)


@dataclass
class LexicalModel:
    """TF-IDF cosine similarity with document frequencies from a corpus."""

    df: Counter[str]
    documents: int

    @classmethod
    def from_texts(cls, texts: Iterable[str], background: tuple[Counter[str], int] | None = None) -> LexicalModel:
        df, count = _presence(texts)
        if background is not None:
            df.update(background[0])
            count += background[1]
        return cls(df, count)

    def idf(self, term: str) -> float:
        return math.log((self.documents + 1) / (self.df.get(term, 0) + 0.5))

    def vector(self, counts: Counter[str]) -> dict[str, float]:
        return {t: (1 + math.log(n)) * max(self.idf(t), 0.0) for t, n in counts.items() if n > 0}

    @staticmethod
    def cosine(a: dict[str, float], b: dict[str, float]) -> float:
        if len(a) > len(b):
            a, b = b, a
        dot = sum(v * b.get(t, 0.0) for t, v in a.items())
        norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
        return dot / norm if norm else 0.0

    def similarity(self, a: str, b: str) -> float:
        return self.cosine(self.vector(term_counts(a)), self.vector(term_counts(b)))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass
class SkillDeduplicator:
    """Finds near duplicates of a skill in a library (one per gateway or CLI run; holds caches)."""

    embed: Embed | None = None
    lexical_threshold: float = LEXICAL_THRESHOLD
    embedding_threshold: float = EMBEDDING_THRESHOLD
    embedding_floor: float = EMBEDDING_FLOOR
    relevance_threshold: float = RELEVANCE_THRESHOLD
    _background: tuple[Counter[str], int] | None = field(default=None, repr=False)
    _vectors: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _model_cache: tuple[tuple[int, int | None], LexicalModel] | None = field(default=None, repr=False)

    def background(self) -> tuple[Counter[str], int]:
        if self._background is None:
            self._background = bundled_frequencies()
        return self._background

    def decide(self, same_name: bool, lexical: float, semantic: float | None) -> bool:
        if same_name or lexical >= self.lexical_threshold:
            return True
        return semantic is not None and semantic >= self.embedding_threshold and lexical >= self.embedding_floor

    async def embeddings(self, texts: list[str]) -> list[list[float]]:
        """Embeddings of `texts`, cached by content (one call for the ones not seen before)."""
        assert self.embed is not None
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        if missing:
            vectors = await self.embed([t for _, t in missing])
            if len(vectors) != len(missing):
                raise ValueError(f"the embedding model returned {len(vectors)} vectors for {len(missing)} texts")
            for (key, _), vector in zip(missing, vectors, strict=True):
                self._vectors[key] = list(vector)
            while len(self._vectors) > 4_096:
                self._vectors.pop(next(iter(self._vectors)))
        return [self._vectors[k] for k in keys]

    async def compare(self, candidate: SkillText, others: Sequence[SkillText],
                      model: LexicalModel) -> list[Similarity]:
        """Scores of `candidate` against each of `others`, best first (duplicates and non-duplicates)."""
        if not others:
            return []
        mine = model.vector(term_counts(candidate.content))
        lexical = [model.cosine(mine, model.vector(term_counts(o.content))) for o in others]
        semantic: list[float | None] = [None] * len(others)
        if self.embed is not None:
            try:
                vectors = await self.embeddings([candidate.content[:EMBED_CHARS]]
                                                + [o.content[:EMBED_CHARS] for o in others])
                semantic = [cosine(vectors[0], v) for v in vectors[1:]]
            except Exception as exc:  # noqa: BLE001 - an unreachable embedding model must not block writes
                log.warning("embedding model failed (%s: %s); near-duplicate check is lexical only this time",
                            type(exc).__name__, exc)
        result = [Similarity(o.name, round(lex, 4), None if sem is None else round(sem, 4),
                             self.decide(same_name(o.name, candidate.name), lex, sem))
                  for o, lex, sem in zip(others, lexical, semantic, strict=True)]
        return sorted(result, key=lambda s: (not s.duplicate, -(s.semantic or 0.0) - s.lexical, s.name))

    async def scan(self, library: object, candidate: SkillText, *, exclude: Iterable[str] = ()) -> list[Similarity]:
        """`candidate` against the closest skills of `library` (a `skills.library.SkillLibrary`)."""
        from skills.library import SkillLibrary

        assert isinstance(library, SkillLibrary)
        snapshot = await library.snapshot()
        skipped = set(exclude)
        hits = await asyncio.to_thread(snapshot.search, f"{candidate.name.replace('-', ' ')} {candidate.content}",
                                       CANDIDATES)
        names = [h.key for h in hits]
        if candidate.name in snapshot.by_name and candidate.name not in names:
            names.insert(0, candidate.name)
        others = [SkillText(s.name, s.description, s.document.body)
                  for s in (snapshot.get(n) for n in names if n not in skipped) if s is not None]
        model = await asyncio.to_thread(self._library_model, snapshot)
        return await self.compare(candidate, others, model)

    async def duplicates(self, library: object, candidate: SkillText, *,
                         exclude: Iterable[str] = ()) -> list[Similarity]:
        """The skills of `library` that `candidate` nearly duplicates, closest first."""
        return [s for s in await self.scan(library, candidate, exclude=exclude) if s.duplicate]

    def _library_model(self, snapshot: object) -> LexicalModel:
        skills = getattr(snapshot, "skills", ())
        key = getattr(snapshot, "generation", None)
        cached = self._model_cache
        if cached is not None and cached[0] == (id(snapshot), key):
            return cached[1]
        model = LexicalModel.from_texts((f"{s.description}\n{s.document.body}" for s in skills), self.background())
        self._model_cache = ((id(snapshot), key), model)
        return model

    async def relevant(self, library: object, query: str, limit: int = 5) -> list[tuple[str, float]]:
        """Skills whose similarity to `query` (the work under review) reaches the relevance threshold."""
        from skills.library import SkillLibrary

        assert isinstance(library, SkillLibrary)
        if not query.strip():
            return []
        snapshot = await library.snapshot()
        hits = await asyncio.to_thread(snapshot.search, query, CANDIDATES)
        model = await asyncio.to_thread(self._library_model, snapshot)
        wanted = model.vector(term_counts(query))
        scored = []
        for hit in hits:
            skill = snapshot.get(hit.key)
            if skill is None:
                continue
            text = f"{skill.name.replace('-', ' ')} {skill.description}\n{skill.document.body}"
            score = model.cosine(wanted, model.vector(term_counts(text)))
            if score >= self.relevance_threshold:
                scored.append((skill.name, round(score, 4)))
        return sorted(scored, key=lambda item: -item[1])[:limit]


def precision_recall(scores_same: Sequence[bool], scores_different: Sequence[bool]) -> tuple[float, float]:
    """(precision, recall) of duplicate decisions on labelled same / different pairs."""
    true_positive = sum(scores_same)
    false_positive = sum(scores_different)
    precision = true_positive / (true_positive + false_positive) if true_positive + false_positive else 1.0
    recall = true_positive / len(scores_same) if scores_same else 1.0
    return precision, recall
