"""Scanning a skill: SKILL.md and every supporting file, judged on what will really run and
what the model will really read.

Every line is normalised first (`normalise.fold`: invisible characters removed and reported,
NFKC, confusables folded). Then by kind of file:
- documents (SKILL.md, references): the front matter's decoded values, prose (injection, plain
  language exfiltration, hidden comments, all judged in context), and code blocks (shell blocks
  through the shell reader, Python blocks through the flow analysis);
- shell and other scripts: logical lines with variables resolved and escapes decoded;
- Python: the flow analysis on the syntax tree, plus the line rules on the code with the
  strings only shown to people (help texts, docstrings, print) blanked.
Encoded blobs (base64, hex, escapes, also split over lines) are decoded and scanned again.
A file with a shebang or a script extension is text whatever bytes it holds. Pure functions;
`scan_folder` reads files (sync: call it from a thread in async code).
"""

from __future__ import annotations

import binascii
import os
import re
from dataclasses import replace
from pathlib import Path

from skills.guard import patterns as P
from skills.guard import prose
from skills.guard.collect import Collector
from skills.guard.frontmatter import decoded_values
from skills.guard.model import Finding, GuardReport
from skills.guard.normalise import Removed, fold, visible
from skills.guard.python_flow import analyse, mask
from skills.guard.rules import block_exfiltration, check_line, git_exfiltration, script_exfiltration
from skills.guard.shell import ShellReader, decode_base64, decode_escapes, logical_lines

SCRIPT_SUFFIXES = {".sh", ".bash", ".zsh", ".ksh", ".fish", ".py", ".pyw", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl",
                   ".php", ".ps1", ".psm1", ".bat", ".cmd", ".lua", ".go", ".rs", ".java", ".kt", ".swift", ".r",
                   ".command", ".tcl", ".awk"}
SHELL_LANGS = {"", "sh", "bash", "shell", "zsh", "console", "terminal", "shell-session", "shellsession", "ksh", "fish"}
PYTHON_LANGS = {"python", "py", "python3", "pycon"}
MAX_SCAN_BYTES = 2_000_000
MAX_DEPTH = 2
BASH_BINARY_CHECK = 80
"""bash refuses a script as binary only when a NUL is in its first 80 bytes: later NULs hide nothing from it."""
BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"SQLite format",
                b"wOFF", b"wOF2", b"\x00\x00\x01\x00", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"OggS", b"ID3", b"fLaC")
EXECUTABLE_MAGIC = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
WARNING_CONTEXT = re.compile(
    r"\b(attack\w*|malicious|malware|never (run|execute|paste|pipe|do)|do not (run|execute|paste|pipe)|don't (run|execute"
    r"|paste|pipe)|detect\w*|red flags?|indicators?|IOCs?|phishing|suspicious|dangerous|avoid|anti-?patterns?"
    r"|what not to|bad example|exploit\w*|threats?|hunting|incident|risk\w*|unsafe|insecure|vulnerab\w*|pentest\w*"
    r"|penetration test\w*|red team\w*|CTF|forensic\w*|to flag|flag (these|this|them|it)|patterns? to (flag|catch|block"
    r"|look for)|(command|code|sql|shell|template|prompt) injection|deserialization|leaks? (the|your|secrets?|credentials?)"
    r"|(search|grep|hunt)(es|ing)?\s+([\w~/.-]+\s+){0,4}for)\b", re.IGNORECASE)
UNSAFE_COMMENT = re.compile(
    r"^\W*(unsafe|insecure|vulnerable|vulnerability|malicious|exploit\w*|bad|wrong|anti-?pattern|(never|don't|do not)"
    r" (do|write|use) this)\b|\b((command|code|sql|shell|template|prompt) injection|(unsafe|insecure) deserialization"
    r"|leaks? (the|your) (environment|secrets?|credentials?|keys?|tokens?))\b", re.IGNORECASE)
"""A code example's own trailing comment that calls it unsafe (`pickle.loads(...)  # unsafe deserialization`)."""
RULE_FIXTURE = re.compile(r"^\s*(#|//|--|;)\s*(ruleid|ok|todoruleid|todook|deepok|deepruleid)\s*:", re.IGNORECASE)
"""A detection rule's test annotation (Semgrep): the next line is a case the rule must match, not a step."""
RULE_VALUE = re.compile(
    r"^\s*-?\s*[\"']?(pattern[\w-]*|patterns|regex|match(es)?|query|condition|message|strings?|signature|iocs?|indicators?"
    r"|keywords?|selection\w*|detection|contains|startswith|endswith|[\w.-]+(\|(contains|endswith|startswith|re|all|base64"
    r"\w*|windash|cidr))+)[\"']?\s*:|^\s*\$\w*\s*=\s*[\"'{/]")
"""A value a detection rule matches (Semgrep `pattern:`, Sigma `CommandLine|contains:`, YARA `$a = "..."`)."""
RULE_LANGS = {"yaml", "yml", "json", "toml", "yara", "yar", "sigma", "semgrep", ""}
EXAMPLE_CONTEXT = re.compile(r"\b(examples?|e\.g\.|for instance|looks like|sample|such as|format|syntax)\b", re.IGNORECASE)


DATA_SUFFIXES = {".xsd", ".xml", ".dtd", ".xsl", ".xslt", ".json", ".yaml", ".yml", ".toml", ".csv", ".tsv", ".html",
                 ".htm", ".css", ".svg", ".md", ".markdown", ".mdx", ".rst", ".ini", ".lock", ".map"}
"""Data and markup kept beside scripts (schemas, fixtures, templates): read as documents, not run as shell."""


def is_script(path: str, text: str = "") -> bool:
    parts = Path(path).parts
    suffix = Path(path).suffix.lower()
    return (suffix in SCRIPT_SUFFIXES or (len(parts) > 1 and parts[0] in ("scripts", "bin") and suffix not in DATA_SUFFIXES)
            or text.startswith("#!"))


DOCUMENT_SUFFIXES = {".md", ".markdown", ".mdx", ".rst", ".txt", ""}
EXAMPLE_DIRS = {"examples", "example", "templates", "template", "assets", "samples", "sample", "fixtures", "testdata",
                "test-data", "test_data"}


def document_kind(path: str) -> str:
    """How a non-script file is read: `instructions` (SKILL.md, what the agent follows), `reference` (other
    Markdown or text), `example` (Markdown under examples/, templates/, assets/...), `template` (markup
    and data: HTML, XML, schemas, JSON, YAML, CSS, SVG; no Markdown structure)."""
    parts = Path(path).parts
    if path == "SKILL.md":
        return "instructions"
    if Path(path).suffix.lower() not in DOCUMENT_SUFFIXES:
        return "template"
    return "example" if any(part.lower() in EXAMPLE_DIRS for part in parts[:-1]) else "reference"


def _is_python(path: str, text: str) -> bool:
    first = text.split("\n", 1)[0]
    return Path(path).suffix.lower() in (".py", ".pyw") or first.startswith("#!") and "python" in first


def _is_shell(path: str, text: str) -> bool:
    first = text.split("\n", 1)[0]
    suffix = Path(path).suffix.lower()
    return suffix in (".sh", ".bash", ".zsh", ".ksh", ".fish", ".command") or first.startswith("#!") and bool(
        re.search(r"\b(ba|z|k|da|fi)?sh\b", first)) or suffix == "" and not first.startswith("#!")


# ---------------------------------------------------------------- hidden characters

def _hidden_chars(c: Collector, number: int, raw: str, removed: Removed, script: bool) -> None:
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


def _escalate_hidden(c: Collector, number: int, removed: Removed, raw: str) -> None:
    """Hidden characters on a line that turned out dangerous once they were removed."""
    hiding = removed.any_hidden or removed.confusables
    if hiding and any(f.severity == "dangerous" and f.rule != "obfuscation" for (n, _), f in c.found.items() if n == number):
        c.add(number, "obfuscation", "dangerous", "hidden or look-alike characters disguise a dangerous line",
              "", visible(raw))


# ---------------------------------------------------------------- encoded payloads

def _scan_derived(c: Collector, number: int, text: str, kind: str, depth: int, what: str, raw: str = "") -> str:
    """Scan decoded or assembled text and lift its findings to `number`; the dangerous rules found ("" if none)."""
    if depth >= MAX_DEPTH or not text.strip():
        return ""
    inner = Collector(c.file)
    if kind == "python":
        _scan_python(inner, text, depth + 1)
    elif kind == "document":
        _scan_document(inner, text, depth + 1, front=False)
    else:
        git_exfiltration(inner, _scan_commands(inner, text, depth + 1), script=True)
    for finding in inner.findings():
        if finding.severity == "dangerous":
            c.add(number, finding.rule, "dangerous", f"{what}: {finding.message}", finding.excerpt, raw)
    if inner.found and not any(f.severity == "dangerous" for f in inner.found.values()) and kind != "document":
        worst = inner.findings()[0]
        c.add(number, worst.rule, "caution", f"{what}: {worst.message}", worst.excerpt, raw)
    return ", ".join(sorted({f.rule for f in inner.found.values() if f.severity == "dangerous"}))


def _blobs(c: Collector, number: int, line: str, script: bool, depth: int) -> None:
    candidates = [(m.group(0), "base64") for m in P.BASE64_BLOB.finditer(line)]
    candidates += [(m.group(0), "hex") for m in P.HEX_BLOB.finditer(line)]
    candidates += [(m.group(0), "escape") for m in P.ESCAPED_BYTES.finditer(line)]
    for blob, kind in candidates:
        if kind == "base64" and re.fullmatch(r"[0-9a-fA-F]+", blob):
            continue
        if line.lstrip().startswith(("sha256", "sha512", "integrity")) or "data:image/" in line \
                or re.search(r"\b(sha\d+|digest|checksum|hash|integrity)\b", line, re.IGNORECASE) and kind == "hex":
            continue
        decoded = _decode_blob(blob, kind)
        if decoded is None:
            if kind == "hex" and len(blob) < P.OPAQUE_HEX_MIN:
                continue
            c.add(number, "obfuscation", "caution", f"long {kind} blob ({len(blob)} characters) that a reader cannot check",
                  line)
            continue
        hidden = _scan_derived(c, number, decoded, "commands" if script else "document", depth,
                               f"{kind}-encoded payload hides", line)
        if hidden:
            c.add(number, "obfuscation", "dangerous", f"{kind}-encoded payload hides: {hidden}", decoded, line)
        else:
            c.add(number, "obfuscation", "caution", f"long {kind}-encoded text ({len(blob)} characters)", decoded, line)
    if P.CHAR_CODES.search(line):
        c.add(number, "obfuscation", "dangerous" if P.EXEC_WORDS.search(line) else "caution",
              "text assembled from character codes", line)


def _decode_blob(blob: str, kind: str) -> str | None:
    if kind == "base64":
        return decode_base64(blob)
    if kind == "hex":
        try:
            return binascii.unhexlify(blob).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
    text = decode_escapes(blob)
    return text if text != blob else None


def _split_blobs(c: Collector, lines: list[tuple[int, str]], script: bool, depth: int) -> None:
    """Base64 split over consecutive lines (a heredoc, a wrapped literal): joined and decoded."""
    run: list[tuple[int, str]] = []
    for number, line in [*lines, (0, "")]:
        token = line.strip().strip("'\",+\\").strip()
        if re.fullmatch(r"[A-Za-z0-9+/]{16,}={0,2}", token) and not re.fullmatch(r"[0-9a-fA-F]+", token):
            run.append((number, token))
            continue
        if len(run) >= 2:
            joined = "".join(t for _, t in run)
            decoded = decode_base64(joined)
            if decoded:
                hidden = _scan_derived(c, run[0][0], decoded, "commands" if script else "document", depth,
                                       "base64 split over lines hides", run[0][1])
                if hidden:
                    c.add(run[0][0], "obfuscation", "dangerous", f"base64 split over lines hides: {hidden}", decoded)
        run = []


# ---------------------------------------------------------------- commands (shell and other scripts)

def _scan_commands(c: Collector, text: str, depth: int = 0, lines: list[tuple[int, str]] | None = None,
                   script: bool = True) -> list[tuple[int, list[str]]]:
    """Shell-like code: logical lines through the shell reader, every view through the line rules."""
    numbered = lines if lines is not None else list(enumerate(text.splitlines(), start=1))
    reader = ShellReader()
    seen: list[tuple[int, list[str]]] = []
    for number, line in logical_lines(numbered):
        stripped = line.lstrip()
        if stripped.startswith("#") and not stripped.startswith("#!"):
            continue
        command = re.sub(r"^\s*(\$|>|PS>|%)\s+", "", line)
        views = reader.feed(command)
        mktemp = {name for name in reader.values if reader.mktemp_var(name)}
        for view in views:
            check_line(c, number, view, line if view != line else "", script=script, mktemp=mktemp)
        why = reader.tainted_exec(command)
        if why:
            c.add(number, "download-exec", "dangerous", why, command)
        for view in views[1:]:
            if "\n" in view:  # decoded multi-line content: scan it as a script of its own
                _scan_derived(c, number, view, "commands", depth, "decoded command text", line)
        for code in _inline_python(views[-1] if len(views) > 1 else command):
            _scan_derived(c, number, code, "python", depth, "python -c code", line)
        for view in views[:1]:
            _blobs(c, number, view, script, depth)
        seen.append((number, views))
    _split_blobs(c, numbered, script, depth)
    return seen


# ---------------------------------------------------------------- Python

INLINE_PYTHON = re.compile(r"\bpython[0-9.]*\s+(?:-[A-Za-z]+\s+){0,4}-c\s+(?:\"((?:[^\"\\]|\\.){8,})\"|'([^']{8,})')")


def _inline_python(command: str) -> list[str]:
    """The code of `python3 -c "..."` on a shell line, read by the Python flow analysis."""
    return [m.group(1).replace('\\"', '"') if m.group(1) is not None else m.group(2)
            for m in INLINE_PYTHON.finditer(command) if "import" in (m.group(1) or m.group(2) or "")
            or "(" in (m.group(1) or m.group(2) or "")]


def _scan_python(c: Collector, text: str, depth: int = 0, offset: int = 0) -> bool:
    """Python source through the flow analysis; False when it does not parse."""
    result = analyse(text)
    if result is None:
        return False
    for finding in result.findings:
        c.add(finding.line + offset, finding.rule, finding.severity, finding.message, finding.text)  # type: ignore[arg-type]
    for line, kind, derived in result.derived:
        _scan_derived(c, line + offset, derived, "python" if kind == "python" else "commands", depth,
                      "code it runs")
    masked = mask(text, result.inert_spans)
    inner = Collector(c.file)
    for number, line in enumerate(masked, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        check_line(inner, number, line, "", script=True, mktemp=set())
        _blobs(inner, number, line, True, depth)
    for finding in inner.findings():
        if finding.rule == "exfiltration":
            continue  # the flow analysis decides exfiltration in Python
        c.add(finding.line + offset, finding.rule, finding.severity, finding.message, finding.excerpt)
    return True


# ---------------------------------------------------------------- documents

def _headings(lines: list[str]) -> list[str]:
    """The Markdown heading each line sits under (one pass)."""
    current, found = "", []
    for line in lines:
        if line.lstrip().startswith("#"):
            current = line[:300]
        found.append(current)
    return found


def _section_context(lines: list[str], headings: list[str], index: int) -> str:
    return headings[index] + "\n" + "\n".join(line[:2000] for line in lines[max(0, index - 3):index])


def _scan_document(c: Collector, text: str, depth: int = 0, front: bool = True, kind: str = "instructions") -> None:
    raw_lines = text.splitlines()
    folded: list[str] = []
    removed_by_line: dict[int, Removed] = {}
    for number, raw in enumerate(raw_lines, start=1):
        line, removed = fold(raw, first_line=number == 1)
        folded.append(line)
        removed_by_line[number] = removed
        _hidden_chars(c, number, raw, removed, script=False)
        if removed.tags:
            _scan_derived(c, number, removed.tags, "document", depth, "hidden tag-character text", visible(raw))

    if front and text.lstrip("\ufeff").startswith("---"):
        values, problem, hostile = decoded_values(text)
        if hostile:
            c.add(1, "obfuscation", "dangerous", f"front matter refused: {problem}", problem or "")
        elif problem:
            c.add(1, "unscannable", "caution", f"front matter cannot be read: {problem}", problem)
        for number, value in values:
            for part in value.splitlines() or [value]:
                part_folded, _ = fold(part)
                _prose_line(c, number, part_folded, part_folded, "")
                check_line(c, number, part_folded, "", script=False, mktemp=set())
            escaped = re.search(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|N\{)", raw_lines[number - 1]
                                if number <= len(raw_lines) else "")
            if escaped and any(f.severity == "dangerous" for (n, _), f in c.found.items() if n == number):
                c.add(number, "obfuscation", "dangerous", "YAML escapes hide what the front matter says", value,
                      raw_lines[number - 1])

    if kind == "template":
        _scan_markup(c, folded, depth)
    else:
        _scan_markdown(c, folded, depth, kind)
    for number, removed in removed_by_line.items():
        _escalate_hidden(c, number, removed, raw_lines[number - 1])


def _hidden(c: Collector, folded: list[str], where: str, fenced: set[int]) -> None:
    """Comments and invisible markup, judged by what they say and where they are."""
    for number, body in prose.hidden_blocks("\n".join(folded)):
        verdict = prose.hidden_instruction(body, "example" if number in fenced else where)
        if verdict:
            c.add(number, "hidden-instructions", verdict[0], verdict[1], body)  # type: ignore[arg-type]


DATA_ENTRY = re.compile(r"^\s*[\[{]?\s*[\"']?[\w:. @-]{1,80}[\"']?\s*:\s*\S")
"""A line of example data that starts with a key: `content: "..."`, `"answer": "..."`, `{"q": "...", "a": "..."}`."""
LONG_STRING = re.compile(r"\"((?:[^\"\\\n]|\\.){80,})\"")


def _data_strings(c: Collector, lines: list[tuple[int, str]], depth: int) -> list[tuple[int, str]]:
    """Entries of example data (JSON, a JavaScript object, YAML) whose value is text (a page, an answer,
    a prompt) are documents, not command lines: each such string is unescaped and scanned as a document
    of its own (its prose by the prose rules, its code blocks as code), and the line keeps only its keys
    for the line rules. Text that only talks about credentials is documentation; a command in it is
    still found there."""
    kept: list[tuple[int, str]] = []
    for number, line in lines:
        if '"' not in line or len(line) < 90 or not DATA_ENTRY.match(line):
            kept.append((number, line))
            continue

        def one(match: re.Match[str]) -> str:
            text = match.group(1)
            if len(re.findall(r"[A-Za-z]{2,}", text)) < 10:
                return match.group(0)
            decoded = text.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"').replace("\\\\", "\\")
            _scan_derived(c, number, decoded, "document", depth, "text in a data entry", line)
            return '""'
        kept.append((number, LONG_STRING.sub(one, line)))
    return kept


PLAIN_TAGS = re.compile(r"^\s*(</?[\w:.-]+(\s+[\w:.-]+\s*=\s*(\"[\w:./#+@-]*\"|'[\w:./#+@-]*'))*\s*/?>\s*)+$")
"""A line of markup that is only tags whose attribute values are single words, names or URLs (the bulk of
an XML schema): no command, sentence or path that does something can be written in it."""


def _rule_values(lang: str, lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """In a detection rule (Semgrep, Sigma or YARA, in a YAML, JSON or plain block) the values it matches are
    patterns, not commands: those lines keep only their key for the command rules."""
    if lang not in RULE_LANGS or not lines:
        return lines
    first = next((line for _, line in lines if line.strip()), "")
    if lang == "" and not re.match(r"^\s*(rules?\b|title:|detection:|id:|import\s+\")", first):
        return lines
    return [(number, line.split(":", 1)[0] + ":" if RULE_VALUE.match(line) and ":" in line.split("=", 1)[0]
             else line.split("=", 1)[0] + "=" if RULE_VALUE.match(line) else line) for number, line in lines]


def _rule_fixtures(c: Collector, lines: list[str]) -> None:
    """A line right after a `# ruleid:` / `# ok:` annotation is a detection rule's test case (in a file that
    marks at least one `ruleid:`, the way Semgrep tests are written)."""
    if not any("ruleid" in line and re.match(r"^\s*(#|//|--|;)\s*(todo)?ruleid\s*:", line) for line in lines):
        return
    for index, line in enumerate(lines[:-1]):
        if RULE_FIXTURE.match(line):
            c.demote(index + 2, "a test case of a detection rule, marked ruleid or ok")


def _scan_markup(c: Collector, folded: list[str], depth: int) -> None:
    """Markup and data (HTML, XML, schemas, JSON, CSS): every line through the line rules, the text the
    model reads through the injection rules; indentation is layout here, not a Markdown code block."""
    folded = [line for _, line in _data_strings(c, list(enumerate(folded, start=1)), depth)]
    for number, line in enumerate(folded, start=1):
        if not line.strip():
            continue
        if PLAIN_TAGS.match(line):
            _blobs(c, number, line, False, depth)
            continue
        _prose_line(c, number, line, line, "")
        check_line(c, number, line, "", script=False, mktemp=set())
        _blobs(c, number, line, False, depth)
    _split_blobs(c, list(enumerate(folded, start=1)), False, depth)
    block_exfiltration(c, [(n, [line]) for n, line in enumerate(folded, start=1) if line.strip()], window=15)
    _escalate_persistence(c, window=10)
    _hidden(c, folded, "example", set())


def _scan_markdown(c: Collector, folded: list[str], depth: int, kind: str) -> None:
    fence: str | None = None
    lang = ""
    block: list[tuple[int, str]] = []
    blocks: list[tuple[str, list[tuple[int, str]], int]] = []
    prose_numbered: list[tuple[int, list[str]]] = []
    quoted_lines: set[int] = set()
    """Lines that quote an attack in a passage about it: not steps the agent takes."""
    fenced: set[int] = set()
    """Lines inside fenced code blocks: a comment there is part of an example (an indented line is not:
    in a list item it is prose, and a comment in it is hidden)."""
    headings = _headings(folded)
    for index, line in enumerate(folded):
        number = index + 1
        marker = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
        if marker:
            token = marker.group(1)[0] * 3
            if fence is None:
                fence, lang, block = token, marker.group(2).lower(), []
                continue
            if fence == token:
                blocks.append((lang, block, index - len(block)))
                fence = None
                continue
        if fence is not None:
            block.append((number, line))
            fenced.add(number)
            continue
        if line.startswith(("    ", "\t")) and line.strip():
            blocks.append(("", [(number, line.strip())], index))
            continue
        context = _section_context(folded, headings, index)
        _prose_line(c, number, line, line, context)
        for code in re.findall(r"`([^`]+)`", line) or []:
            check_line(c, number, code, "", script=False, mktemp=set())
        check_line(c, number, line, "", script=False, mktemp=set())
        _blobs(c, number, line, False, depth)
        prose_numbered.append((number, [prose.without_negated(line)]))
        words = prose.context_words(line)
        if WARNING_CONTEXT.search(words) or prose.META.search(words) and re.search(r"`", line):
            c.demote(number, "quoted in documentation", when=lambda f, line=line: _warned_sentence(line, f.excerpt))
            quoted_lines.add(number)
    if fence is not None:
        blocks.append((lang, block, len(folded) - len(block)))

    seen: list[tuple[int, list[str]]] = list(prose_numbered)
    for lang, lines, start in blocks:
        context = _section_context(folded, headings, max(0, start - 1))
        if not (lang in PYTHON_LANGS and _scan_python(c, "\n".join(l for _, l in lines), depth,
                                                      offset=lines[0][0] - 1 if lines else 0)):
            lines = _data_strings(c, _rule_values(lang, lines), depth)
            if lang in SHELL_LANGS or lang not in ("json", "yaml", "yml", "toml", "ini", "xml", "html", "csv", "text", "txt",
                                                   "markdown", "md", "diff", "yara", "yar", "sigma"):
                seen += _scan_commands(c, "", depth, lines=lines, script=False)
            else:
                for number, line in lines:
                    check_line(c, number, line, "", script=False, mktemp=set())
                    _blobs(c, number, line, False, depth)
                _split_blobs(c, lines, False, depth)
        for number, line in lines:
            comment = re.search(r"\s(#|//)\s*(.+)$", line)
            if comment and UNSAFE_COMMENT.search(comment.group(2)):
                c.demote(number, "an example its own comment calls unsafe")
                quoted_lines.add(number)
        if WARNING_CONTEXT.search(prose.context_words(context)):
            for number, _ in lines:
                c.demote(number, "an example in a passage about attacks or things to avoid")
                quoted_lines.add(number)
        elif EXAMPLE_CONTEXT.search(prose.context_words(context)):
            for number, line in lines:
                if re.match(r"^\s*(@\w+|[\d*/,-]+(\s+[\d*/,-]+){4})\s", line) and not P.CRON_INSTALL.search(line):
                    c.demote(number, "a crontab line shown as an example")
    block_exfiltration(c, [(n, views) for n, views in seen if n not in quoted_lines], window=15)
    git_exfiltration(c, sorted((n, views) for n, views in seen if n not in quoted_lines), script=False)
    _escalate_persistence(c, window=10)
    _rule_fixtures(c, folded)
    _hidden(c, folded, kind, fenced)


def _warned_sentence(line: str, excerpt: str) -> bool:
    """The sentence of `line` that holds the flagged text is itself about attacks or what to avoid ("Never
    run `...`", "Attackers paste `...`"): another sentence's warning ("Avoid long answers. Run `...`") is
    not. When the flagged text cannot be placed in one sentence the line as a whole decides."""
    needle = " ".join(excerpt.split())[:40]
    for sentence in re.split(r"(?<=[.;!?])\s+", line):
        if needle and needle in " ".join(sentence.split()):
            words = prose.context_words(sentence)
            return bool(WARNING_CONTEXT.search(words) or prose.META.search(words) and "`" in sentence)
    return True


def _escalate_persistence(c: Collector, window: int | None) -> None:
    """A service, cron job or start-up file written next to code that downloads or hands out a shell."""
    bad = [n for (n, rule), f in c.found.items() if f.severity == "dangerous"
           and rule in ("download-exec", "reverse-shell", "exfiltration")]
    for (number, rule), finding in list(c.found.items()):
        if rule == "persistence" and finding.severity == "caution" \
                and any(window is None or abs(b - number) <= window for b in bad):
            c.add(number, "persistence", "dangerous", f"{finding.message}, next to code that downloads and runs a payload",
                  finding.excerpt, finding.raw)


def _prose_line(c: Collector, number: int, line: str, shown: str, context: str) -> None:
    verdict = prose.injection(line, context)
    if verdict:
        c.add(number, "prompt-injection", verdict[0], verdict[1], shown)  # type: ignore[arg-type]
    verdict = prose.plain_exfiltration(line, context)
    if verdict:
        c.add(number, "exfiltration", verdict[0], verdict[1], shown)  # type: ignore[arg-type]


# ---------------------------------------------------------------- files

KIND_WORDS = {"instructions": "SKILL.md's instructions", "reference": "a reference document",
              "example": "an example document", "template": "a template or data file (markup, not instructions)"}


def _explained(findings: list[Finding], file: str, text: str, script: bool) -> list[Finding]:
    """Each finding with its context: where the line is and what that made of its level, and the lines
    around it. Computed only for files with findings (one pass over the lines)."""
    if not findings:
        return findings
    lines = text.splitlines()
    kind = "script" if script else document_kind(file)
    places: dict[int, str] = {}
    if kind in ("instructions", "reference", "example"):
        heading, fence, lang = "", None, ""
        for number, line in enumerate(lines, start=1):
            marker = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
            if marker and fence is None:
                fence, lang = marker.group(1)[0], marker.group(2).lower() or "plain"
            elif marker and fence == marker.group(1)[0]:
                fence = None
            elif fence is None and line.lstrip().startswith("#"):
                heading = line.strip()[:80]
            under = f" under {heading!r}" if heading else ""
            if fence is not None:
                what = "commands the agent may run" if lang in SHELL_LANGS | {"plain"} | PYTHON_LANGS else "an example"
                places[number] = f"a {lang} code block in {KIND_WORDS[kind]}{under} ({what})"
            else:
                places[number] = f"prose in {KIND_WORDS[kind]}{under}"
    explained = []
    for f in findings:
        if kind == "script":
            where = "a Python script the skill ships (its code; help texts, docstrings and prints are not judged)" \
                if _is_python(file, text) else "a script the skill ships (judged as it runs, variables resolved)"
        else:
            where = places.get(f.line, KIND_WORDS.get(kind, kind))
        reason = re.search(r"\(([^()]*)\)\s*$", f.message)
        level = f"; kept at caution: {reason.group(1)}" if f.severity == "caution" and reason else ""
        around = tuple(f"{n}| {lines[n - 1].strip()[:120]}" for n in (f.line - 1, f.line + 1)
                       if 1 <= n <= len(lines) and lines[n - 1].strip()) if f.line else ()
        explained.append(replace(f, context=where + level, around=around))
    return explained


def scan_text(file: str, text: str, *, script: bool | None = None) -> list[Finding]:
    """Findings in one file's text; `file` is its path inside the skill (e.g. scripts/run.sh), each with
    the context that decided its level (`Finding.context`, `Finding.explain()`)."""
    script = is_script(file, text) if script is None else script
    return _explained(_scan_text(file, text, script), file, text, script)


def _scan_text(file: str, text: str, script: bool) -> list[Finding]:
    c = Collector(file)
    if not script:
        _scan_document(c, text, kind=document_kind(file))
        return c.findings()
    folded_lines: list[str] = []
    removed_by_line: dict[int, Removed] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line, removed = fold(raw, first_line=number == 1)
        folded_lines.append(line)
        removed_by_line[number] = removed
        _hidden_chars(c, number, raw, removed, script=True)
    folded_text = "\n".join(folded_lines)
    if not (_is_python(file, text) and _scan_python(c, folded_text)):
        seen = _scan_commands(c, folded_text)
        block_exfiltration(c, seen, window=None)
        git_exfiltration(c, seen, script=True)
        if not _is_shell(file, text):
            script_exfiltration(c, list(enumerate(folded_lines, start=1)))
    _escalate_persistence(c, window=None)
    _rule_fixtures(c, folded_lines)
    for number, line in enumerate(folded_lines, start=1):
        verdict = prose.injection(line, "")
        if verdict:
            c.add(number, "prompt-injection", verdict[0], verdict[1], line)  # type: ignore[arg-type]
    raw_lines = text.splitlines()
    for number, removed in removed_by_line.items():
        _escalate_hidden(c, number, removed, raw_lines[number - 1])
    return c.findings()


def guard_skill_text(skill_md: str, files: dict[str, str] | None = None, name: str = "skill") -> GuardReport:
    """Scan a skill given as text: SKILL.md plus optional supporting files {relative path: text}.

    For skills the agent writes itself: the caller refuses the write when the verdict is
    `dangerous` and sends `report.describe()` back to the model.
    """
    report = GuardReport(name)
    report.findings.extend(scan_text("SKILL.md", skill_md, script=False))
    report.files_scanned = 1
    for path, text in sorted((files or {}).items()):
        report.findings.extend(scan_text(path, text))
        report.files_scanned += 1
    return report


def scan_folder(folder: Path, name: str | None = None) -> GuardReport:
    """Scan a skill folder (or a lone SKILL.md): every file, hidden ones, links and binaries included."""
    folder = Path(folder)
    if folder.is_file():
        report = GuardReport(name or folder.parent.name)
        report.findings.extend(_scan_file(folder, folder.name))
        report.files_scanned = 1
        return report
    report = GuardReport(name or folder.name)
    root = folder.resolve()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", ".git"))
        entries = sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for entry in entries:
            path = Path(dirpath) / entry
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                target = Path(os.path.realpath(path))
                inside = target == root or root in target.parents
                report.findings.append(Finding(relative, 0, "unscannable" if inside else "outside-folder",
                                               "caution" if inside else "dangerous",
                                               f"symbolic link to {os.readlink(path)}"
                                               + ("" if inside else " (outside the skill's folder)")))
                continue
            report.files_scanned += 1
            report.findings.extend(_scan_file(path, relative))
    return report


def _scan_file(path: Path, relative: str) -> list[Finding]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SCAN_BYTES + 1)
    except OSError as exc:
        return [Finding(relative, 0, "unscannable", "caution", f"cannot read: {exc}")]
    findings: list[Finding] = []
    if len(raw) > MAX_SCAN_BYTES:
        findings.append(Finding(relative, 0, "unscannable", "caution",
                                f"larger than {MAX_SCAN_BYTES} bytes; only the start was scanned"))
        raw = raw[:MAX_SCAN_BYTES]
    if raw.startswith(EXECUTABLE_MAGIC) and (b"\x00" in raw[:4096]):
        return findings + [Finding(relative, 0, "unscannable", "caution",
                                   "a compiled executable: its behaviour cannot be reviewed")]
    scriptlike = raw.startswith(b"#!") or Path(relative).suffix.lower() in SCRIPT_SUFFIXES or relative == "SKILL.md"
    if not scriptlike and (raw.startswith(BINARY_MAGIC) or b"\x00" in raw[:BASH_BINARY_CHECK]):
        return findings  # images, archives and other binary assets: no interpreter runs them as text
    if b"\x00" in raw:
        findings.append(Finding(relative, 0, "obfuscation", "caution",
                                "NUL bytes inside a text file (bash runs past them; a viewer may stop showing the rest)"))
        raw = raw.replace(b"\x00", b"")
    text = raw.decode("utf-8", errors="replace")
    return findings + scan_text(relative, text, script=False if relative == "SKILL.md" else None)
