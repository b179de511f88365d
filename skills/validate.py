"""The strict validator: the Agent Skills specification's rules, at least as strict as `skills-ref`.

`skills-ref` 0.1 checks: only the spec's top-level keys; `name` non-empty, <= 64 characters,
lowercase, no leading/trailing/double hyphen, letters/digits/hyphens only, equal to the folder
name; `description` non-empty, <= 1024 characters; `compatibility` a string <= 500 characters.
It splits the file on the first two `---`, so a `---` inside the front matter breaks it: we refuse
that too. We are stricter on names (ASCII only) and on `metadata` (a string -> string map).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from skills.document import (
    SPEC_FIELDS,
    SkillDocument,
    SkillFormatError,
    front_matter,
    load_front_matter,
    parse,
    render,
    split_front_matter,
)

MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_COMPATIBILITY = 500
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
CATEGORY_PATTERN = NAME_PATTERN


def name_problems(name: str, what: str = "skill name") -> list[str]:
    """Why `name` is not a valid skill (or category) name; [] when it is."""
    if not isinstance(name, str) or not name.strip():
        return [f"{what} must be a non-empty string"]
    problems = []
    if len(name) > MAX_NAME:
        problems.append(f"{what} {name!r} is {len(name)} characters; the limit is {MAX_NAME}")
    if not NAME_PATTERN.match(name):
        problems.append(
            f"{what} {name!r} must use only lowercase letters a-z, digits and single hyphens, "
            "and must not start or end with a hyphen")
    return problems


def description_warning(description: Any) -> str | None:
    """The lint warning for a description longer than the spec's 1,024 characters (a warning, not an error:
    public collections ship such skills and agents read them fine; the index shows a shortened form)."""
    if isinstance(description, str) and len(description) > MAX_DESCRIPTION:
        return (f"'description' is {len(description)} characters; the Agent Skills spec recommends at most "
                f"{MAX_DESCRIPTION} (agents see a shortened form in the skill index)")
    return None


def front_matter_problems(data: dict[str, Any], folder_name: str | None = None, *,
                          long_description_is_error: bool = True) -> list[str]:
    """Problems with a front matter mapping as it would be written (the library's writes keep the
    description limit strict; `text_problems` reports a long description as a lint warning)."""
    problems: list[str] = []
    unknown = sorted(set(data) - set(SPEC_FIELDS))
    if unknown:
        problems.append(f"unexpected front matter keys: {', '.join(unknown)} (allowed: {', '.join(SPEC_FIELDS)})")
    name = data.get("name")
    if name is None:
        problems.append("missing required field 'name'")
    else:
        problems.extend(name_problems(name))
        if folder_name is not None and name != folder_name:
            problems.append(f"name {name!r} must equal the folder name {folder_name!r}")
    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        problems.append("'description' must be a non-empty string saying what the skill does and when to use it")
    elif len(description) > MAX_DESCRIPTION and long_description_is_error:
        problems.append(f"'description' is {len(description)} characters; the limit is {MAX_DESCRIPTION}")
    for key in ("license", "compatibility", "allowed-tools"):
        if key in data and not isinstance(data[key], str):
            problems.append(f"'{key}' must be a string")
    compatibility = data.get("compatibility")
    if isinstance(compatibility, str) and len(compatibility) > MAX_COMPATIBILITY:
        problems.append(f"'compatibility' is {len(compatibility)} characters; the limit is {MAX_COMPATIBILITY}")
    metadata = data.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            problems.append("'metadata' must be a map of string keys to string values")
        else:
            bad = sorted(str(k) for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str))
            if bad:
                problems.append(f"metadata values must be strings: {', '.join(bad)}")
    return problems


def document_problems(document: SkillDocument, folder_name: str | None = None, *,
                      long_description_is_error: bool = True) -> list[str]:
    """Problems with a document as `render` would write it."""
    data = front_matter(document)
    problems = front_matter_problems(data, folder_name, long_description_is_error=long_description_is_error)
    head = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1_000_000)
    if "---" in head:
        problems.append("front matter values must not contain '---' (it ends the front matter block)")
    if not document.body.strip():
        problems.append("the body is empty: write the instructions (When to use, Procedure, Pitfalls, Verification)")
    return problems


def text_problems(text: str, folder_name: str | None = None) -> tuple[list[str], list[str]]:
    """(errors, lint warnings) for raw SKILL.md text read leniently then checked strictly."""
    try:
        parsed = parse(text)
    except SkillFormatError as exc:
        return [str(exc)], []
    errors = document_problems(parsed.document, folder_name, long_description_is_error=False)
    try:  # the raw text itself must be strict too: no unknown keys, no non-string metadata
        raw = load_front_matter(split_front_matter(text)[0])
        if isinstance(raw, dict):
            errors.extend(p for p in front_matter_problems(raw, folder_name, long_description_is_error=False)
                          if p not in errors)
    except SkillFormatError as exc:
        errors.append(str(exc))
    warnings = list(parsed.warnings)
    long_description = description_warning(parsed.document.description)
    if long_description:
        warnings.append(long_description)
    return errors, warnings


def strict_render(document: SkillDocument, folder_name: str | None = None) -> str:
    """Render `document`, or raise `SkillFormatError` listing every problem."""
    problems = document_problems(document, folder_name)
    if problems:
        raise SkillFormatError("; ".join(problems))
    return render(document)
