"""Scanning a skill: SKILL.md and every supporting file, judged on what will really run and
what the model will really read.

Every line is normalised first (`normalise.fold`: invisible characters removed and reported,
NFKC, confusables folded). Then by kind of file:
- documents (SKILL.md, references): the front matter's decoded values, prose (injection, plain
  language exfiltration, hidden comments, all judged in context), and code blocks (shell blocks
  through the shell reader, Python blocks through the flow analysis);
- shell and other scripts: logical lines with variables resolved and escapes decoded;
- Python: the flow analysis on the syntax tree, plus the line rules on the code with the
  strings only shown to people (help texts, docstrings, print) blanked;
- a Dockerfile (and a dockerfile code block): its steps as shell commands that run inside an image
  build, not on this machine (a plain download run there is caution; a decoded one stays dangerous).
Encoded blobs (base64, hex, escapes, also split over lines) are decoded and scanned again.
A file with a shebang or a script extension is text whatever bytes it holds. Pure functions;
`scan_folder` reads files (sync: call it from a thread in async code).

This module holds the scan itself, recursive because decoded text is scanned as what it would run
as; `kinds` says what a file is, `characters` reports hidden characters, `context` says what a
line's place in a document makes of it, `explain` adds each finding's context.
"""

from __future__ import annotations

import binascii
import os
import re
from pathlib import Path

from skills.guard import patterns as P
from skills.guard import prose
from skills.guard.characters import escalate_hidden, hidden_chars
from skills.guard.collect import Collector
from skills.guard.context import (EXAMPLE_CONTEXT, PLAIN_TAGS, UNSAFE_COMMENT, WARNING_CONTEXT, fence_after,
                                  heading_paths, hidden_comments, line_headings, rule_fixtures, rule_values,
                                  section_context, warned_sentence)
from skills.guard.explain import explain_findings
from skills.guard.frontmatter import decoded_values
from skills.guard.kinds import (BASH_BINARY_CHECK, BINARY_MAGIC, CONTAINER_LANGS, EXECUTABLE_MAGIC, PYTHON_LANGS,
                                SCRIPT_SUFFIXES, SHELL_LANGS, document_kind, is_python, is_script, is_shell)
from skills.guard.model import Finding, GuardReport
from skills.guard.normalise import NOTHING, ZERO_WIDTH, Removed, fold, visible
from skills.guard.python_flow import analyse
from skills.guard.python_text import mask
from skills.guard.rules import block_exfiltration, check_line, git_exfiltration, script_exfiltration
from skills.guard.shell import ShellReader, decode_base64, decode_escapes, logical_lines

MAX_SCAN_BYTES = 2_000_000
MAX_DEPTH = 2


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

def _scan_document(c: Collector, text: str, depth: int = 0, front: bool = True, kind: str = "instructions") -> None:
    raw_lines = text.splitlines()
    folded: list[str] = []
    removed_by_line: dict[int, Removed] = {}
    fence: str | None = None
    for number, raw in enumerate(raw_lines, start=1):
        escaped_fence = ESCAPED_FENCE.match(raw) if number > 1 and raw.startswith(tuple(ZERO_WIDTH)) else None
        if escaped_fence:
            # `\u200b```lang`: a fence shown as text (how a code block is written inside another one); nothing
            # is hidden, and the line stays text for the guard as it does for a renderer (the mark is kept)
            folded.append(raw)
            removed_by_line[number] = NOTHING
            if fence is None:
                c.add(number, "obfuscation", "caution", "a zero-width space before a code fence marker (shows the "
                      "fence as text); check the lines after it", visible(raw))
            continue
        line, removed = fold(raw, first_line=number == 1)
        fence = fence_after(fence, line)
        folded.append(line)
        removed_by_line[number] = removed
        hidden_chars(c, number, raw, removed, script=False)
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
        escalate_hidden(c, number, removed, raw_lines[number - 1])


ESCAPED_FENCE = re.compile(r"^[\u200b\u2060\ufeff]+(`{3,}|~{3,})[\w+-]*\s*$")
"""A code fence behind zero-width characters: not a fence for a Markdown renderer, so shown as text."""
INLINE_CODE = re.compile(r"`[^`]+`")
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
    hidden_comments(c, folded, "example", set())


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
    headings = line_headings(folded)
    header = ""
    """The header row of the Markdown table a line is in."""
    topics = heading_paths(folded) if kind != "instructions" else [""] * len(folded)
    """In a reference or an example the whole heading path says what a passage is about (a document titled
    `# Pwn Request Attacks` quotes attacks under every subheading); SKILL.md's instructions are judged
    by their own section only."""
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
        context = section_context(folded, headings, index)
        _prose_line(c, number, line, line, context)
        spans = re.findall(r"`([^`]+)`", line) if "`" in line else []
        for code in spans:
            check_line(c, number, code, "", script=False, mktemp=set())
        # each inline code span is a command of its own: the prose around them is judged without them, so
        # two spans a sentence apart (`echo $(env)` ... `curl ...`) are not read as one command line
        check_line(c, number, INLINE_CODE.sub(" ", line) if spans else line, "", script=False, mktemp=set())
        _blobs(c, number, line, False, depth)
        prose_numbered.append((number, [prose.without_negated(line)]))
        words = prose.context_words(line)
        if WARNING_CONTEXT.search(words) or prose.META.search(words) and re.search(r"`", line):
            c.demote(number, "quoted in documentation", when=lambda f, line=line: warned_sentence(line, f.excerpt))
            quoted_lines.add(number)
        if WARNING_CONTEXT.search(prose.context_words(topics[index])):
            c.demote(number, "quoted in a reference about attacks", when=lambda f: f.rule != "prompt-injection")
            quoted_lines.add(number)
        if kind != "instructions" and TABLE_ROW.match(line):
            header = header if index > 0 and TABLE_ROW.match(folded[index - 1]) else line
            if FINDINGS_TABLE.search(prose.context_words(header + "\n" + line)):
                c.demote(number, "a row of a table of findings, rated by severity or risk",
                         when=lambda f: f.rule != "prompt-injection")
                quoted_lines.add(number)
    if fence is not None:
        blocks.append((lang, block, len(folded) - len(block)))

    seen: list[tuple[int, list[str]]] = list(prose_numbered)
    for lang, lines, start in blocks:
        context = section_context(folded, headings, max(0, start - 1)) + "\n" + topics[max(0, start - 1)]
        if not (lang in PYTHON_LANGS and _scan_python(c, "\n".join(l for _, l in lines), depth,
                                                      offset=lines[0][0] - 1 if lines else 0)):
            lines = _data_strings(c, rule_values(lang, lines), depth)
            if lang in SHELL_LANGS or lang not in ("json", "yaml", "yml", "toml", "ini", "xml", "html", "csv", "text", "txt",
                                                   "markdown", "md", "diff", "yara", "yar", "sigma"):
                commands = _scan_commands(c, "", depth, lines=lines, script=False)
                seen += commands
                if lang in CONTAINER_LANGS:
                    _container_steps(c, commands)
            else:
                for number, line in lines:
                    check_line(c, number, line, "", script=False, mktemp=set())
                    _blobs(c, number, line, False, depth)
                _split_blobs(c, lines, False, depth)
        if lang not in SHELL_LANGS | CONTAINER_LANGS | COMMAND_DATA_LANGS:
            _payload_strings(c, lines)
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
    rule_fixtures(c, folded)
    hidden_comments(c, folded, kind, fenced)
    for number in fenced & quoted_lines:
        c.demote(number, "a comment in an example in a passage about attacks", when=lambda f: f.rule == "hidden-instructions")


PAYLOAD_LITERAL = re.compile(r"(['\"])[\w.:/@=-]{0,80}(;|&&|\|\|?|\$\()\s*[^'\"\n]{1,300}?\1")
"""A string literal shaped like a command-injection payload: one plain value (a host, a file name), a shell
separator, a command (`'localhost; rm -rf /'`, `"a.txt && curl ... | sh"`, `"$(id)"`)."""
COMMAND_DATA_LANGS = {"json", "jsonc", "yaml", "yml", "toml", "ini", "xml", "html", "text", "txt", "markdown", "md", "diff",
                      "makefile", "make", "just", "cmd", "bat", "batch", "powershell", "ps1", "pwsh", "nix"}
"""Blocks whose strings are themselves commands something runs (package.json scripts, a workflow's `run:`,
a Makefile recipe): a command string there is not test data."""
SHELL_RUNNER = re.compile(r"\w*(system|exec|spawn|popen|passthru|proc_open)\w*\s*[(.:!]|\b(run|call|check_\w+|getoutput|Runtime"
                          r"|ProcessBuilder|child_process|subprocess|eval|Command|Invoke-\w+|sh|bash|cmd)\s*[(.:!]|`|%x|\bqx\b",
                          re.IGNORECASE)


def _payload_strings(c: Collector, lines: list[tuple[int, str]]) -> None:
    """In an example in another language (PHP, Java, JavaScript, Python...) a command-injection payload
    passed around as a string (`new Config(hostname: 'localhost; rm -rf /')`, the test data of a security
    check) is data: when nothing in the example hands a string to a shell, a line whose command findings
    all sit inside such a literal is kept for review (`caution`)."""
    flagged = [(n, line) for n, line in lines if any(n == number and f.severity == "dangerous" for (number, _), f in
                                                     c.found.items())]
    if not flagged or any(SHELL_RUNNER.search(line) for _, line in lines):
        return
    for number, line in flagged:
        if not PAYLOAD_LITERAL.search(line):
            continue
        outside = Collector(c.file)
        check_line(outside, number, PAYLOAD_LITERAL.sub("''", line), "", script=False, mktemp=set())
        if not any(f.severity == "dangerous" for f in outside.found.values()):
            c.demote(number, "a command-injection payload as a string in an example that runs no shell",
                     when=lambda f: f.rule in ("destructive", "download-exec", "exfiltration", "reverse-shell"))


TABLE_ROW = re.compile(r"^\s*\|.*\|.*\|\s*$")
FINDINGS_TABLE = re.compile(r"\b(severity|risk|impact|CVE-\d{4}-\d+|CWE-\d+|vulnerab\w*)\b", re.I)
"""A table of findings or attack patterns (a severity or risk column, CVE or CWE numbers): in a reference its
rows describe what to look for (SKILL.md's own tables can be steps, and are judged as such)."""
DECODING = re.compile(r"\b(base64|base32|basenc|xxd|openssl|uudecode)\b|\\x[0-9A-Fa-f]{2}|\\[0-7]{3}")


def _container_steps(c: Collector, seen: list[tuple[int, list[str]]]) -> None:
    """A Dockerfile's steps run inside the image being built, not on this machine: a plain download piped
    into a shell there (`RUN curl ... | bash`) is the image's install step, kept for review (`caution`); one
    that decodes what it runs (base64, hex or octal escapes) hides it and stays dangerous."""
    for number, views in seen:
        if not any(DECODING.search(view) for view in views):
            c.demote(number, "a step of a container image build, not run on this machine",
                     when=lambda f: f.rule == "download-exec")


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

def scan_text(file: str, text: str, *, script: bool | None = None) -> list[Finding]:
    """Findings in one file's text; `file` is its path inside the skill (e.g. scripts/run.sh), each with
    the context that decided its level (`Finding.context`, `Finding.explain()`)."""
    script = is_script(file, text) if script is None else script
    return explain_findings(_scan_text(file, text, script), file, text, script)


def _scan_text(file: str, text: str, script: bool) -> list[Finding]:
    c = Collector(file)
    container = not script and document_kind(file) == "container"
    if not script and not container:
        _scan_document(c, text, kind=document_kind(file))
        return c.findings()
    folded_lines: list[str] = []
    removed_by_line: dict[int, Removed] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line, removed = fold(raw, first_line=number == 1)
        folded_lines.append(line)
        removed_by_line[number] = removed
        hidden_chars(c, number, raw, removed, script=True)
    folded_text = "\n".join(folded_lines)
    if container:
        seen = _scan_commands(c, folded_text, script=False)
        block_exfiltration(c, seen, window=None)
        git_exfiltration(c, seen, script=False)
        _container_steps(c, seen)
    elif not (is_python(file, text) and _scan_python(c, folded_text)):
        seen = _scan_commands(c, folded_text)
        block_exfiltration(c, seen, window=None)
        git_exfiltration(c, seen, script=True)
        if not is_shell(file, text):
            script_exfiltration(c, list(enumerate(folded_lines, start=1)))
    _escalate_persistence(c, window=None)
    rule_fixtures(c, folded_lines)
    for number, line in enumerate(folded_lines, start=1):
        verdict = prose.injection(line, "")
        if verdict:
            c.add(number, "prompt-injection", verdict[0], verdict[1], line)  # type: ignore[arg-type]
    raw_lines = text.splitlines()
    for number, removed in removed_by_line.items():
        escalate_hidden(c, number, removed, raw_lines[number - 1])
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
