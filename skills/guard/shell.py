"""Shell analysis: what a shell script (or a shell code block) will really run.

Matching one raw line at a time misses what the shell assembles before it runs: a command
continued over lines (`curl ... \\` newline `| bash`), a command built from variables
(`c=cu; $c""rl`), hex escapes (`printf '\\x63\\x75...' | sh`), a base64 payload assembled in one
place and run in another. `ShellReader` walks the lines in order, joins continuations, tracks
simple assignments (`x=...`, `x+=...`, `export x=...`) with their values resolved, decodes
`printf`/`echo -e`/`$'...'` escapes and `echo BLOB | base64 -d` literals, and yields for each
logical line the *views* the guard matches: the line as written, with variables resolved, with
escapes decoded and with quotes that split words removed. It also remembers which variables and
files hold fetched or decoded content, so running them later is recognised (`tainted_exec`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

ASSIGN = re.compile(r"^(?:export\s+|local\s+|readonly\s+|declare\s+(?:-\w+\s+){0,6}|typeset\s+)?([A-Za-z_]\w*)(\+?)=(.*)$")
VAR_REF = re.compile(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)")
ESCAPE_ARG = re.compile(r"\$'((?:[^'\\]|\\.)*)'|\b(?:printf|echo\s+-[a-zA-Z]*e[a-zA-Z]*)\s+(?:-\S+\s+){0,6}(['\"])((?:(?!\2).)*)\2"
                        r"|\bprintf\s+([^\s'\"|;&]{0,600}\\[^\s|;&]{0,600})")
ESCAPES = re.compile(r"\\x[0-9A-Fa-f]{1,2}|\\u[0-9A-Fa-f]{4}|\\0?[0-7]{1,3}")
B64_LITERAL = re.compile(r"\b(?:echo|printf)\s+(?:-\w+\s+){0,6}['\"]?([A-Za-z0-9+/=]{8,})['\"]?\s*\|\s*(?:base64|openssl\s+(?:base64|enc))"
                         r"\b[^|]{0,600}\s(?:-[a-zA-Z]*d[a-zA-Z]*|--decode|-D)\b|\bbase64\s+(?:-[a-zA-Z]*d[a-zA-Z]*|--decode|-D)\s+<<<\s*['\"]?"
                         r"([A-Za-z0-9+/=]{8,})")
FETCH = re.compile(r"\b(curl|wget|iwr|Invoke-WebRequest|irm)\b", re.IGNORECASE)
DECODE = re.compile(r"\b(base64|openssl\s+(base64|enc))\b[^|;&]{0,600}\s(-[a-zA-Z]*d[a-zA-Z]*|--decode|-D)\b|\bxxd\s+-r|\bgunzip\b|\bzcat\b", re.IGNORECASE)
OUTPUT_FILE = re.compile(r"(?:>|\s-o|\s-O|--output(?:-document)?=?|\s-out)\s*['\"]?([^\s'\";|&)]+)")
RUNNERS = r"(?:sudo\s+)?(?:ba|z|da|k)?sh|source|\.|python[0-9.]*|perl|ruby|node|php"
MKTEMP = "\x00mktemp\x00"
QUOTE_SPLIT = re.compile(r"(?<=[\w/.-])(?:''|\"\")(?=[\w/.-])|(?<=\w)['\"](?=\w)|\\(?=[A-Za-z])")


def decode_escapes(text: str) -> str:
    """`\\x63`, `\\u0063` and octal escapes decoded (the way printf, echo -e and $'...' do)."""
    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        try:
            if token[1] in "xu":
                return chr(int("0x" + token[2:], 0))
            return chr(int(token[1:].lstrip("0") or "0", 8))
        except ValueError:
            return token
    return ESCAPES.sub(one, text).replace("\\n", "\n").replace("\\t", "\t")


def decode_base64(blob: str) -> str | None:
    """The text of a base64 literal when it decodes to mostly printable UTF-8."""
    try:
        raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
        text = raw.decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\n\r\t")
    return text if text and printable / len(text) > 0.9 else None


def logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join `\\` continuations and lines ending in a pipe or `&&`/`||` with the next line."""
    joined: list[tuple[int, str]] = []
    start: int | None = None
    buffer = ""
    for number, line in lines:
        if start is None:
            start, buffer = number, ""
        stripped = line.rstrip()
        if stripped.endswith("\\") and not stripped.endswith("\\\\"):
            buffer += stripped[:-1] + " "
            continue
        if re.search(r"(\||&&)\s*$", stripped) and not stripped.lstrip().startswith("#"):
            buffer += stripped + " "
            continue
        joined.append((start, buffer + line))
        start = None
    if start is not None:
        joined.append((start, buffer))
    return joined


@dataclass
class ShellReader:
    """Reads shell lines in order; `views(line)` gives the forms the guard should match."""

    values: dict[str, str] = field(default_factory=dict)
    tainted_vars: set[str] = field(default_factory=set)
    """Variables holding fetched or decoded content."""
    tainted_files: set[str] = field(default_factory=set)
    """Files written from fetched or decoded content."""

    def resolve(self, text: str, depth: int = 0) -> str:
        if depth > 3 or "$" not in text:
            return text

        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            return self.values.get(name, match.group(0))
        return VAR_REF.sub(value, text)

    def _value(self, raw: str) -> str:
        raw = raw.strip()
        if raw.strip("\"'").startswith("$(") and "mktemp" in raw[:40]:
            return MKTEMP
        raw = self.resolve(raw)
        decoded = self._decode_inline(raw)
        if decoded is not None:
            return decoded
        raw = re.sub(r"\$'((?:[^'\\]|\\.)*)'", lambda m: decode_escapes(m.group(1)), raw)
        return re.sub(r"^\"(.*)\"$|^'(.*)'$", lambda m: m.group(1) if m.group(1) is not None else m.group(2),
                      QUOTE_SPLIT.sub("", raw))

    @staticmethod
    def _decode_inline(text: str) -> str | None:
        match = B64_LITERAL.search(text)
        if match:
            return decode_base64(match.group(1) or match.group(2))
        printf = re.match(r"^\$\(\s*(?:printf|echo\s+-e)\s+(['\"])(.*)\1\s*\)$", text)
        if printf and ESCAPES.search(printf.group(2)):
            return decode_escapes(printf.group(2))
        return None

    def _statements(self, line: str) -> list[str]:
        return [s.strip() for s in re.split(r"(?<![|&]);(?!;)|&&", line) if s.strip()]

    def feed(self, line: str) -> list[str]:
        """Record this line's assignments and taints; return its views (first = as written)."""
        views = [line]
        resolved = self.resolve(line)
        for statement in self._statements(line):
            match = ASSIGN.match(statement)
            if not match or " " in match.group(1):
                continue
            name, append, raw = match.groups()
            value = self._value(raw)
            if FETCH.search(raw) or DECODE.search(raw) or len(ESCAPES.findall(raw)) >= 3 \
                    or value != MKTEMP and self._decode_inline(self.resolve(raw)):
                self.tainted_vars.add(name)
            if any(f"${v}" in raw or f"${{{v}}}" in raw for v in self.tainted_vars):
                self.tainted_vars.add(name)
            self.values[name] = (self.values.get(name, "") + value) if append else value
        if resolved != line:
            views.append(resolved)
        decoded = ESCAPE_ARG.sub(lambda m: decode_escapes(m.group(1) or m.group(3) or m.group(4) or ""), resolved)
        if decoded != resolved:
            views.append(decoded)
        inline = self._decode_inline(resolved)
        if inline:
            views.append(inline)
        unsplit = QUOTE_SPLIT.sub("", decoded)
        if unsplit not in views:
            views.append(unsplit)
        if FETCH.search(resolved) or DECODE.search(resolved):
            for target in OUTPUT_FILE.findall(resolved):
                if target not in ("/dev/null", "-"):
                    self.tainted_files.add(target)
        return views

    def tainted_exec(self, line: str) -> str | None:
        """Why this line runs fetched or decoded content (a variable or a file), or None."""
        for name in self.tainted_vars:
            ref = rf"\$\{{?{name}\}}?"
            if re.search(rf"\b(eval|exec)\s+['\"]?{ref}|\b(sh|bash|zsh|python[0-9.]*|perl|node)\s+(-\w+\s+){{0,6}}-c\s+['\"]?{ref}"
                         rf"|(echo|printf)\s+(-\w+\s+){{0,6}}['\"]?{ref}['\"]?\s*\|\s*({RUNNERS})\b|^\s*['\"]?{ref}['\"]?\s*$"
                         rf"|({RUNNERS})\s+<<<\s*['\"]?{ref}", line):
                return f"runs ${name}, which holds downloaded or decoded content"
        statements = [s.strip() for s in re.split(r"(?<![|&]);|&&|\|\|", line) if s.strip()]
        for path in self.tainted_files:
            quoted = re.escape(path)
            for statement in statements:
                if FETCH.search(statement) or DECODE.search(statement) or re.match(r"chmod\b", statement):
                    continue  # the download or decode itself
                if re.search(rf"^(?:(?:{RUNNERS}|exec|nohup|timeout\s+\d+|sudo)\s+(-\S+\s+){{0,6}})?['\"]?{quoted}['\"]?(\s|$|&)"
                             rf"|^\./{re.escape(path.removeprefix('./'))}\b", statement):
                    return f"runs {path}, which was downloaded or decoded earlier"
        return None

    def mktemp_var(self, name: str) -> bool:
        return self.values.get(name) == MKTEMP
