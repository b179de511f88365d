"""SKILL.md documents: YAML front matter plus a Markdown body.

Front matter is read with a loader that refuses YAML aliases, anchors and tags and caps the
block's size (`load_front_matter`): an alias bomb of a few hundred bytes is refused at once
instead of expanding to millions of characters. Values are stored and shown decoded (a YAML
`"\x63url"` is `curl`), which is what the guard scans.

Reading is lenient: unknown top-level keys (e.g. `version` from other agents' skills) and
non-string `metadata` values are kept, each with a lint warning. Writing is strict: `render`
emits only the Agent Skills fields, block-style YAML that the reference validator
(`skills-ref`, which parses with strictyaml) accepts, and `validate.py` checks the result.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

try:  # the C loader is ~10x faster; fall back when PyYAML was built without libyaml
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FRONT_MATTER = 64 * 1024
"""Characters of YAML front matter read at most (a description is <= 1,024; this is generous)."""
MAX_FRONT_MATTER_EVENTS = 5_000
"""YAML parse events read at most: bounds the work on a hostile block of tiny nested nodes."""
_SURROGATE = re.compile("[\ud800-\udfff]")
SPEC_FIELDS = ("name", "description", "license", "compatibility", "allowed-tools", "metadata")
VOLATILE_METADATA = ("use_count", "last_used")
"""Usage counters: they change on every use and do not count as an edit of the skill."""


class SkillFormatError(ValueError):
    """A SKILL.md that cannot be read at all (no front matter, bad YAML, missing field)."""


@dataclass(frozen=True)
class SkillDocument:
    """One parsed SKILL.md."""

    name: str
    description: str
    body: str
    license: str | None = None
    compatibility: str | None = None
    allowed_tools: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Top-level keys the spec does not know; kept on read, folded into `metadata` on write."""

    def with_metadata(self, **values: str) -> SkillDocument:
        merged = dict(self.metadata)
        merged.update({k: str(v) for k, v in values.items()})
        return replace(self, metadata=merged)

    def fingerprint(self) -> str:
        """A hash of what the skill says, ignoring usage counters (for "did anyone change it?")."""
        meta = {k: v for k, v in sorted(self.metadata.items()) if k not in VOLATILE_METADATA}
        payload = json.dumps([self.name, self.description, self.license, self.compatibility,
                              self.allowed_tools, meta, self.body.strip()], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ParsedSkill:
    document: SkillDocument
    warnings: tuple[str, ...] = ()


def _check_text(text: str) -> None:
    """Refuse what cannot be stored as UTF-8: a lone UTF-16 surrogate (a model's JSON can carry one)."""
    found = _SURROGATE.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        raise SkillFormatError(f"line {line}: a lone UTF-16 surrogate (U+{ord(found.group()):04X}) is not text "
                               "that can be stored")


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter YAML, body). The file must open with a `---` line and close it with another."""
    _check_text(text)
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise SkillFormatError("does not start with a YAML front matter block ('---' on the first line)")
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1:])
    raise SkillFormatError("front matter is not closed with a '---' line")


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def load_front_matter(raw_front: str) -> Any:
    """The YAML front matter's value, refusing aliases, anchors, explicit tags and oversize blocks.

    The events are checked before anything is built, so a hostile block costs at most
    `MAX_FRONT_MATTER_EVENTS` parse events and never expands.
    """
    if len(raw_front) > MAX_FRONT_MATTER:
        raise SkillFormatError(f"front matter is {len(raw_front)} characters; the limit is {MAX_FRONT_MATTER}")
    try:
        for count, event in enumerate(yaml.parse(raw_front, Loader=_Loader)):
            if count > MAX_FRONT_MATTER_EVENTS:
                raise SkillFormatError(f"front matter has more than {MAX_FRONT_MATTER_EVENTS} YAML nodes")
            where = f"line {event.start_mark.line + 1}" if event.start_mark else "front matter"
            if isinstance(event, yaml.AliasEvent):
                raise SkillFormatError(f"front matter {where}: YAML aliases (*{event.anchor}) are not allowed")
            if getattr(event, "anchor", None):
                raise SkillFormatError(f"front matter {where}: YAML anchors (&{event.anchor}) are not allowed")
            if getattr(event, "tag", None) and not (isinstance(event, yaml.ScalarEvent) and event.implicit[0]):
                raise SkillFormatError(f"front matter {where}: YAML tags ({event.tag}) are not allowed")
        return yaml.load(raw_front, Loader=_Loader)
    except yaml.YAMLError as exc:
        problem = str(exc).replace("\n", " ")
        raise SkillFormatError(f"front matter is not valid YAML: {problem}") from exc


def parse(text: str) -> ParsedSkill:
    """Leniently parse SKILL.md text. Raises `SkillFormatError` when it is unusable."""
    raw_front, body = split_front_matter(text)
    data = load_front_matter(raw_front)
    if not isinstance(data, dict):
        raise SkillFormatError("front matter must be a YAML mapping of keys to values")
    warnings: list[str] = []
    for key in ("name", "description"):
        value = data.get(key)
        if value is None or not str(value).strip():
            raise SkillFormatError(f"front matter is missing the required field '{key}'")
        if not isinstance(value, str):
            warnings.append(f"'{key}' should be a string, not {type(value).__name__}")

    metadata: dict[str, str] = {}
    raw_meta = data.get("metadata")
    if isinstance(raw_meta, dict):
        for key, value in raw_meta.items():
            if not isinstance(value, str):
                warnings.append(f"metadata.{key} is {type(value).__name__}, kept as text")
            metadata[str(key)] = _as_text(value)
    elif raw_meta is not None:
        warnings.append("'metadata' should be a map of strings; ignored")

    extra = {str(k): v for k, v in data.items() if k not in SPEC_FIELDS}
    for key in extra:
        warnings.append(f"unknown front matter key '{key}' (not in the Agent Skills spec); kept in metadata on write")

    def optional(key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            warnings.append(f"'{key}' should be a string, not {type(value).__name__}")
            if key == "allowed-tools" and isinstance(value, list):
                return " ".join(str(v) for v in value)
        return _as_text(value)

    document = SkillDocument(
        name=str(data["name"]).strip(),
        description=_as_text(data["description"]).strip(),
        body=body.strip("\n"),
        license=optional("license"),
        compatibility=optional("compatibility"),
        allowed_tools=optional("allowed-tools"),
        metadata=metadata,
        extra=extra,
    )
    return ParsedSkill(document, tuple(warnings))


def front_matter(document: SkillDocument) -> dict[str, Any]:
    """The strict front matter mapping, in spec order; unknown keys folded into `metadata`."""
    data: dict[str, Any] = {"name": document.name, "description": document.description}
    if document.license:
        data["license"] = document.license
    if document.compatibility:
        data["compatibility"] = document.compatibility
    if document.allowed_tools:
        data["allowed-tools"] = document.allowed_tools
    metadata = {key: _as_text(value) for key, value in document.extra.items()}
    metadata.update(document.metadata)
    if metadata:
        data["metadata"] = dict(sorted(metadata.items()))
    return data


def render(document: SkillDocument) -> str:
    """Strict SKILL.md text: block-style YAML (strictyaml-compatible), a blank line, the body."""
    head = yaml.safe_dump(front_matter(document), sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=1_000_000)
    body = document.body.strip("\n")
    return f"---\n{head}---\n\n{body}\n" if body else f"---\n{head}---\n"
