"""A home's config.toml made safe to put in a profile: every secret (values under secret keys,
URL user-info and secret query keys, webhook paths, header credentials, MCP env and args, DSNs,
anything secret-shaped; see `agent.secret_fields`) replaced by a `${NAME}` reference, the same
name for the same value, and the result written back as TOML. `references` lists the names a
text needs."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from agent.redact import Redactor


class ProfileError(Exception):
    """A profile cannot be written or read; the message says what and where."""


def _emit_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_emit_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_emit_value(v)}" for k, v in value.items()) + " }"
    raise ProfileError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for configuration data (tables, arrays of tables, scalars, lists)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) or isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_emit_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        if isinstance(value, list):
            for item in value:
                out += f"\n[[{name}]]\n" + to_toml(item, name)
        else:
            out += f"\n[{name}]\n" + to_toml(value, name)
    return out


@dataclass
class SecretNames:
    """Names for the `${NAME}` references that replace literal secrets; one name per value."""

    by_value: dict[str, str] = field(default_factory=dict)
    where: dict[str, list[str]] = field(default_factory=dict)

    def name_for(self, value: str, path: tuple[str, ...], label: str, data: Any) -> str:
        if value in self.by_value:
            name = self.by_value[value]
        else:
            base = _env_name(path, label, data)
            name, n = base, 2
            while name in self.where:
                name, n = f"{base}_{n}", n + 1
            self.by_value[value] = name
            self.where[name] = []
        self.where[name].append(".".join(path))
        return name


def _env_name(path: tuple[str, ...], label: str, data: Any) -> str:
    """MODEL_API_KEY, MCP_SERVERS_GITHUB_ENV_GITHUB_TOKEN, WEB_SEARCH_URL_PASSWORD, CRON_1A2B_TARGET_WEBHOOK ..."""
    parts: list[str] = []
    node = data
    for part in path:
        if isinstance(node, list) and part.isdigit():
            item = node[int(part)]
            named = item.get("name") or item.get("id") if isinstance(item, dict) else None
            parts.append(str(named) if named else part)
            node = item
            continue
        parts.append(part)
        node = node.get(part) if isinstance(node, dict) else None
    if label and label.lower() not in (path[-1].lower() if path else "", "secret"):
        parts.append(label)
    name = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_").upper()
    return ("S_" + name if name[:1].isdigit() else name) or "SECRET"


def replace_secrets(data: Any, names: SecretNames, redactor: Redactor, prefix: tuple[str, ...] = (),
                    root: Any = None) -> Any:
    """A copy of `data` with every literal secret inside its strings replaced by `${NAME}`."""
    from agent.secret_fields import walk

    cleaned = json.loads(json.dumps(data))
    for found in walk(cleaned, redactor):
        value = found.value
        for span in reversed(found.spans):
            secret = found.value[span.start:span.end]
            name = names.name_for(secret, (*prefix, *found.path), span.label, root if root is not None else cleaned)
            value = value[:span.start] + "${" + name + "}" + value[span.end:]
        node = cleaned
        for part in found.path[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = found.path[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return cleaned


def sanitize_config(text: str, redactor: Redactor | None = None,
                    names: SecretNames | None = None) -> tuple[str, list[str]]:
    """(config text with every literal secret replaced by a `${NAME}` reference, the places changed).

    Secrets are found by `agent.secret_fields`: values under secret-named keys, URL user-info and
    secret query keys, webhook paths, header credentials, MCP env and args, DSNs, secret shapes.
    `${NAME}` references already there are kept; `names` collects the names given."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"config.toml is not valid TOML: {exc}") from exc
    redactor = redactor or Redactor.from_environ()
    names = names if names is not None else SecretNames()
    before = {w for places in names.where.values() for w in places}
    cleaned = replace_secrets(data, names, redactor, root=data)
    changed = sorted({w for places in names.where.values() for w in places} - before)
    return to_toml(cleaned), changed


def references(text: str) -> list[str]:
    """The `${NAME}` names a text refers to, in order of first appearance."""
    return list(dict.fromkeys(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)))
