"""Where the literal secrets are inside configuration values (config.toml, cron jobs).

A value holds a secret when the key it sits under says so (`token`, `api_key`, `password`,
`Authorization`, an MCP `env` name like `GITHUB_TOKEN` ...), or inside it:

- URLs: the password of the user-info (`postgres://u:PASS@h/db`, `https://user:PASS@searx`),
  a long user name standing alone (`https://TOKEN@host`), the values of secret query keys
  (`?key=`, `token`, `api_key`, `access_token`, `sig`, ...), and the secret part of webhook
  paths (Slack `hooks.slack.com/services/...`, Discord `/api/webhooks/ID/TOKEN`, or a long
  random-looking path segment of a webhook: a `webhook:` target, a `*hook*` key or URL);
- header values: `Bearer X`, `Basic X`, `token X` (the credential part);
- command-line arguments: `--password X`, `--token=X`;
- anything the `Redactor` recognises by shape (sk-..., xoxb-..., bot tokens, private keys).

`secret_spans` returns the character ranges of one value; `walk` visits every string of nested
config data with its path and the spans found. `${NAME}` references are never secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.redact import MIN_CONFIG_SECRET_LENGTH, Redactor

SECRET_KEY = re.compile(r"(token|secret|password|passwd|pwd|api[_-]?key|apikey|private_?key|credential|authorization"
                        r"|cookie|dsn|signature|access_?key|auth)", re.IGNORECASE)
SECRET_QUERY_KEYS = {"key", "api_key", "apikey", "api-key", "token", "access_token", "auth_token", "refresh_token",
                     "id_token", "client_secret", "secret", "sig", "signature", "password", "pass", "pwd", "auth",
                     "x-api-key", "code_secret", "private_token", "session", "sessionid", "jwt", "hmac"}
SECRET_FLAG = re.compile(r"^--?(?:[a-z0-9-]*?)(token|secret|password|passwd|pwd|api-?key|apikey|key|auth"
                         r"|credential|dsn)$", re.IGNORECASE)
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
AUTH_SCHEME = re.compile(r"^\s*(?:bearer|basic|token|bot|digest|apikey|api-key)\s+", re.IGNORECASE)
RANDOM_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{24,}$")
MIN_SECRET = 4


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str    # what it is, for naming a ${NAME}: "password", "token", "webhook", ...


def _looks_random(segment: str) -> bool:
    return bool(RANDOM_SEGMENT.match(segment)) and any(c.isdigit() for c in segment) \
        and any(c.isalpha() for c in segment)


def _url_spans(text: str, offset: int, hook: bool) -> list[Span]:
    spans: list[Span] = []
    try:
        parts = urlsplit(text)
    except ValueError:
        return spans
    netloc_start = text.find("//") + 2
    netloc = parts.netloc
    if "@" in netloc:
        userinfo = netloc.rsplit("@", 1)[0]
        user, sep, password = userinfo.partition(":")
        if sep and password:
            start = netloc_start + len(user) + 1
            spans.append(Span(offset + start, offset + start + len(password), "password"))
        elif len(user) >= 16 or _looks_random(user):
            spans.append(Span(offset + netloc_start, offset + netloc_start + len(user), "token"))
    path_start = netloc_start + len(netloc)
    host = (parts.hostname or "").lower()
    path = parts.path
    segments = path.split("/")
    position = path_start
    secret_from: int | None = None
    if host.endswith("hooks.slack.com") and path.startswith("/services/"):
        secret_from = path_start + len("/services/")
    elif host.endswith(("discord.com", "discordapp.com")) and "/webhooks/" in path:
        tail = path.split("/webhooks/", 1)[1].split("/")
        if len(tail) >= 2:
            secret_from = path_start + path.index("/webhooks/") + len("/webhooks/") + len(tail[0]) + 1
    if secret_from is not None:
        spans.append(Span(offset + secret_from, offset + path_start + len(path), "webhook"))
    elif hook or "hook" in (host + path).lower():
        for segment in segments:
            if segment and _looks_random(segment) and not REFERENCE.search(segment):
                spans.append(Span(offset + position, offset + position + len(segment), "webhook"))
            position += len(segment) + 1
    if parts.query:
        query_start = path_start + len(path) + 1
        position = query_start
        for pair in parts.query.split("&"):
            name, sep, value = pair.partition("=")
            if sep and value and name.lower() in SECRET_QUERY_KEYS:
                start = position + len(name) + 1
                spans.append(Span(offset + start, offset + start + len(value), name.lower().replace("-", "_")))
            position += len(pair) + 1
    return spans


def _shape_spans(text: str, redactor: Redactor) -> list[Span]:
    return [Span(f.start, f.end, "secret") for f in redactor.find(text)]


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            label = span.label if last.label == "secret" else last.label
            merged[-1] = Span(last.start, max(span.end, last.end), label)
            continue
        merged.append(span)
    return merged


def _outside_references(text: str, spans: list[Span]) -> list[Span]:
    refs = [(m.start(), m.end()) for m in REFERENCE.finditer(text)]
    kept = []
    for span in spans:
        if any(s < span.end and span.start < e for s, e in refs):
            continue
        if span.end - span.start >= MIN_SECRET or span.label == "password":
            kept.append(span)
    return kept


def secret_spans(key: str, value: str, redactor: Redactor) -> list[Span]:
    """Ranges of `value` (found under `key`) that are literal secrets, merged, in order."""
    if not value or REFERENCE.fullmatch(value.strip()):
        return []
    spans: list[Span] = []
    hook = "hook" in key.lower() or value.lstrip().lower().startswith("webhook:")
    for match in URL_IN_TEXT.finditer(value):
        spans.extend(_url_spans(match.group(0), match.start(), hook))
    spans.extend(_shape_spans(value, redactor))
    if key and SECRET_KEY.search(key) and not spans:
        scheme = AUTH_SCHEME.match(value)
        start = scheme.end() if scheme else 0
        stripped_end = len(value.rstrip())
        if stripped_end > start and not REFERENCE.search(value[start:]):
            spans.append(Span(start, stripped_end, key))
    return _merge(_outside_references(value, spans))


@dataclass(frozen=True)
class Found:
    path: tuple[str, ...]     # keys and list indexes leading to the string
    value: str
    spans: list[Span]


def walk(data: Any, redactor: Redactor, path: tuple[str, ...] = ()) -> Iterator[Found]:
    """Every string in nested dicts/lists with the secrets found in it (only those with some)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, redactor, (*path, str(key)))
    elif isinstance(data, list):
        key = path[-1] if path else ""
        for index, value in enumerate(data):
            if isinstance(value, str) and key == "args":
                spans = _arg_spans(data, index, redactor)
            elif isinstance(value, str):
                spans = secret_spans(key, value, redactor)
            else:
                yield from walk(value, redactor, (*path, str(index)))
                continue
            if spans:
                yield Found((*path, str(index)), value, spans)
    elif isinstance(data, str):
        spans = secret_spans(path[-1] if path else "", data, redactor)
        if spans:
            yield Found(path, data, spans)


def _arg_spans(args: list[Any], index: int, redactor: Redactor) -> list[Span]:
    """A command-line argument: `--token X` (X is secret), `--token=X`, or a URL/shape inside it."""
    value = str(args[index])
    previous = str(args[index - 1]) if index > 0 else ""
    if SECRET_FLAG.match(previous) and not value.startswith("-"):
        return secret_spans("token", value, redactor)
    flag, sep, rest = value.partition("=")
    if sep and SECRET_FLAG.match(flag):
        return [Span(s.start + len(flag) + 1, s.end + len(flag) + 1, s.label)
                for s in secret_spans("token", rest, redactor)]
    return secret_spans("", value, redactor)


def secret_values(data: Any, redactor: Redactor) -> set[str]:
    """The literal secret strings inside config data (for a Redactor of known values)."""
    return {found.value[s.start:s.end] for found in walk(data, redactor) for s in found.spans}




def redactor_for_config(data: Any, environ: Mapping[str, str] | None = None) -> Redactor:
    """The environment's secrets plus every literal secret in config data (a dict, e.g.
    `Config.model_dump()` after `${NAME}` expansion: keys, URLs, headers, MCP env and args)."""
    base = Redactor.from_environ(environ)
    found = {v for v in secret_values(data, base) if len(v) >= MIN_CONFIG_SECRET_LENGTH}
    return base.with_values(found)
