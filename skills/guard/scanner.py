"""Scanning a skill: SKILL.md and every supporting file, line by line, against the guard's rules.

Documents (SKILL.md, references) are scanned whole, fenced code blocks included: the agent runs
what a skill tells it to. Scripts get the same rules plus the ones only code can break (writing
or reading outside the skill's folder, file-level exfiltration). Encoded blobs are decoded and
scanned again, so a payload does not hide behind base64. Pure functions, no I/O except reading
the folder in `scan_folder` (sync: call it from a thread in async code).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import unicodedata
from pathlib import Path

from skills.guard import patterns as P
from skills.guard.model import Finding, GuardReport, Severity

SCRIPT_SUFFIXES = {".sh", ".bash", ".zsh", ".fish", ".py", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl", ".php",
                   ".ps1", ".psm1", ".bat", ".cmd", ".lua", ".go", ".rs", ".java", ".kt", ".swift", ".r"}
MAX_SCAN_BYTES = 2_000_000
MAX_DEPTH = 2
EXCERPT = 160

ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064", "\ufeff", "\u180e"}
BIDI_CONTROLS = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}
EXECUTABLE_MAGIC = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")


def is_script(path: str, text: str = "") -> bool:
    parts = Path(path).parts
    return (Path(path).suffix.lower() in SCRIPT_SUFFIXES or (len(parts) > 1 and parts[0] == "scripts")
            or text.startswith("#!"))


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.found: dict[tuple[int, str], Finding] = {}

    def add(self, line: int, rule: str, severity: Severity, message: str, excerpt: str = "") -> None:
        key = (line, rule)
        current = self.found.get(key)
        if current is not None and (current.severity == "dangerous" or severity == "caution"):
            return
        excerpt = " ".join(excerpt.split())
        if len(excerpt) > EXCERPT:
            excerpt = excerpt[:EXCERPT - 3] + "..."
        self.found[key] = Finding(self.file, line, rule, severity, message, excerpt)

    def findings(self) -> list[Finding]:
        return sorted(self.found.values(), key=lambda f: (f.line, f.rule))


def _visible(text: str) -> str:
    return "".join(ch if ch.isprintable() else f"<U+{ord(ch):04X}>" for ch in text)


def _emoji_neighbour(line: str, index: int) -> bool:
    def emoji(ch: str) -> bool:
        return ord(ch) >= 0x2190 and unicodedata.category(ch) in ("So", "Sk", "Mn") or 0x1F000 <= ord(ch) <= 0x1FAFF
    before = line[index - 1] if index > 0 else ""
    after = line[index + 1] if index + 1 < len(line) else ""
    return bool(before and after and (emoji(before) or before == "\ufe0f") and emoji(after))


def _unicode(c: _Collector, number: int, line: str, first_line: bool) -> None:
    for index, ch in enumerate(line):
        if ch in BIDI_CONTROLS:
            c.add(number, "obfuscation", "dangerous",
                  f"bidirectional control character U+{ord(ch):04X} can make text read differently than it runs",
                  _visible(line))
        elif ch in ZERO_WIDTH:
            if ch == "\ufeff" and first_line and index == 0:
                continue
            if ch == "\u200d" and _emoji_neighbour(line, index):
                continue  # emoji sequences join with ZWJ
            c.add(number, "obfuscation", "dangerous",
                  f"invisible character U+{ord(ch):04X} hides text from a human reader", _visible(line))
        elif 0xE0000 <= ord(ch) <= 0xE007F:
            c.add(number, "obfuscation", "dangerous",
                  "Unicode tag characters smuggle invisible text to the model", _visible(line))


def _decode_blob(blob: str, kind: str) -> str | None:
    """The decoded text of an encoded blob when it is mostly printable text, else None."""
    try:
        if kind == "base64":
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
        elif kind == "hex":
            raw = binascii.unhexlify(blob)
        else:
            raw = blob.encode("latin-1").decode("unicode_escape").encode("latin-1")
    except (ValueError, binascii.Error, UnicodeError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\n\r\t")
    return text if text and printable / len(text) > 0.95 else None


def _blobs(c: _Collector, number: int, line: str, script: bool, depth: int) -> None:
    candidates = [(m.group(0), "base64") for m in P.BASE64_BLOB.finditer(line)]
    candidates += [(m.group(0), "hex") for m in P.HEX_BLOB.finditer(line)]
    candidates += [(m.group(0), "escape") for m in P.ESCAPED_BYTES.finditer(line)]
    for blob, kind in candidates:
        if kind == "base64" and re.fullmatch(r"[0-9a-fA-F]+", blob):
            continue  # hex digests are matched as hex
        if line.lstrip().startswith(("sha256", "sha512", "integrity")) or "data:image/" in line:
            c.add(number, "obfuscation", "caution", f"long {kind} blob ({len(blob)} characters)", line)
            continue
        decoded = _decode_blob(blob, kind) if depth < MAX_DEPTH else None
        if decoded is None and kind == "hex" and len(blob) < P.OPAQUE_HEX_MIN:
            continue  # a digest or an id, not a payload
        if decoded is None:
            c.add(number, "obfuscation", "caution",
                  f"long {kind}-encoded blob ({len(blob)} characters) that a reader cannot check", line)
            continue
        inner = _Collector(c.file)
        for inner_number, inner_line in enumerate(decoded.splitlines() or [decoded], start=1):
            _scan_line(inner, inner_number, inner_line, script, in_code=True, depth=depth + 1)
        _file_level(inner, decoded.splitlines(), script)
        worst = [f for f in inner.findings() if f.severity == "dangerous"]
        if worst:
            rules = ", ".join(sorted({f.rule for f in worst}))
            c.add(number, "obfuscation", "dangerous",
                  f"{kind}-encoded payload hides: {rules} ({worst[0].message})", worst[0].excerpt)
        else:
            c.add(number, "obfuscation", "caution", f"long {kind}-encoded text ({len(blob)} characters)", line)
    if P.CHAR_CODES.search(line):
        severity: Severity = "dangerous" if P.EXEC_WORDS.search(line) else "caution"
        c.add(number, "obfuscation", severity, "text assembled from character codes", line)


def _scan_line(c: _Collector, number: int, line: str, script: bool, in_code: bool, depth: int = 0) -> None:
    for pattern in P.PROMPT_INJECTION:
        if pattern.search(line):
            c.add(number, "prompt-injection", "dangerous", "tries to override the agent's instructions", line)
            break

    network = P.NETWORK.search(line)
    if network and (P.SECRET_FILE_READ.search(line) or P.ENV_DUMP.search(line)
                    or (P.SENSITIVE_FILE.search(line) and re.search(r"[|@<>]|\$\(|`|-T\b|--upload|-F\b|-d\b", line))):
        c.add(number, "exfiltration", "dangerous",
              "sends credential files or the environment to a network address", line)
    elif network and P.DATA_WITH_SECRET.search(line):
        c.add(number, "exfiltration", "dangerous", "sends a secret variable as request data", line)

    for pattern in P.DOWNLOAD_EXEC:
        if pattern.search(line):
            c.add(number, "download-exec", "dangerous", "downloads or decodes code and runs it", line)
            break
    else:
        if P.DOWNLOAD_CHMOD.search(line):
            c.add(number, "download-exec", "caution", "downloads a file and makes it executable", line)

    for pattern in P.DESTRUCTIVE:
        if pattern.search(line):
            c.add(number, "destructive", "dangerous", "destroys data or the system", line)
            break
    else:
        for pattern in P.CAUTION_DESTRUCTIVE:
            if pattern.search(line):
                c.add(number, "destructive", "caution", "deletes or overwrites data; check the target", line)
                break

    _persistence(c, number, line, script)
    if script:
        _outside(c, number, line)
    _blobs(c, number, line, script, depth)


def _persistence(c: _Collector, number: int, line: str, script: bool) -> None:
    payload_bad = bool(P.PAYLOAD_RED_FLAGS.search(line))
    if P.AUTHORIZED_KEYS.search(line) and re.search(r">>|>|\btee\b|\bcp\b|\bopen\(|write|echo|cat\b", line):
        c.add(number, "persistence", "dangerous", "adds an ssh key to authorized_keys (remote access)", line)
    elif P.AUTHORIZED_KEYS.search(line):
        c.add(number, "persistence", "caution", "mentions ssh authorized_keys", line)
    if P.REBOOT.search(line):
        c.add(number, "persistence", "dangerous", "installs a job that runs at every boot", line)
    if P.CRON_INSTALL.search(line):
        severity: Severity = "dangerous" if payload_bad else "caution"
        c.add(number, "persistence", severity, "installs a cron job non-interactively", line)
    if P.RC_WRITE.search(line):
        severity = "dangerous" if payload_bad else "caution"
        c.add(number, "persistence", severity, "changes a shell start-up file", line)
    for pattern in P.PERSISTENCE_DANGEROUS:
        if pattern.search(line):
            c.add(number, "persistence", "dangerous", "installs itself to run at login or boot", line)
            break
    for pattern in P.PERSISTENCE_CAUTION:
        if pattern.search(line):
            c.add(number, "persistence", "dangerous" if payload_bad and script else "caution",
                  "installs a service, agent or hook that runs later", line)
            break


def _outside(c: _Collector, number: int, line: str) -> None:
    stripped = line.strip()
    if stripped.startswith(("#", "//")) and not stripped.startswith("#!"):
        return
    for match in P.SHELL_WRITE.finditer(line):
        target = match.group(1)
        severity: Severity = "dangerous" if (P.SENSITIVE_TARGET.search(target) or "../.." in target) else "caution"
        c.add(number, "outside-folder", severity, f"writes outside the skill's folder ({target})", line)
    py = P.PY_WRITE.search(line)
    if py:
        target = py.group(1) or py.group(0)
        severity = "dangerous" if P.SENSITIVE_TARGET.search(target.lstrip("(")) or "/etc" in target \
            or "Path.home" in target or "expanduser" in target else "caution"
        c.add(number, "outside-folder", severity, "writes outside the skill's folder", line)
    if P.SECRET_FILE_READ.search(line) or (P.SENSITIVE_FILE.search(line) and P.CREDENTIAL_ACCESS.search(line)):
        c.add(number, "outside-folder", "dangerous", "reads credential files outside the skill's folder", line)
    elif P.OUTSIDE_READ.search(line):
        c.add(number, "outside-folder", "caution", "reaches outside the skill's folder", line)


def _file_level(c: _Collector, lines: list[str], script: bool, code_lines: set[int] | None = None) -> None:
    """Exfiltration spread over several lines: reading secrets in one place, sending in another."""
    considered = [(n, l) for n, l in enumerate(lines, start=1) if script or (code_lines and n in code_lines)]
    senders = [n for n, l in considered if P.NETWORK.search(l)]
    if not senders:
        return
    for number, line in considered:
        secret = P.SECRET_FILE_READ.search(line) or P.ENV_DUMP.search(line) \
            or (script and P.SENSITIVE_FILE.search(line) and re.search(r"open\(|read|expanduser|Path\.home", line))
        if not secret or number in senders and (number, "exfiltration") in c.found:
            continue
        near = [s for s in senders if script or abs(s - number) <= 12]
        if near:
            c.add(number, "exfiltration", "dangerous",
                  f"reads secrets here and sends data over the network at line {near[0]}", line)


def _hidden(c: _Collector, text: str) -> None:
    """HTML comments, markdown comments and hidden markup that speak to the model."""
    found = [(m.start(), m.group(1)) for m in P.HTML_COMMENT.finditer(text)]
    found += [(m.start(), m.group(2)) for m in P.MD_COMMENT.finditer(text)]
    found += [(m.start(), m.group(4)) for m in P.HIDDEN_MARKUP.finditer(text)]
    for start, body in found:
        line = text.count("\n", 0, start) + 1
        instruction = any(p.search(body) for p in P.PROMPT_INJECTION) \
            or (P.MODEL_WORDS.search(body) and P.IMPERATIVE.search(body)) \
            or P.NETWORK.search(body) or re.search(r"\b(rm|eval|exec|base64|chmod|sudo)\b", body)
        if instruction:
            c.add(line, "hidden-instructions", "dangerous",
                  "instructions hidden from a human reader (invisible when rendered)", body)


def scan_text(file: str, text: str, *, script: bool | None = None) -> list[Finding]:
    """Findings in one file's text; `file` is its path inside the skill (e.g. scripts/run.sh)."""
    script = is_script(file, text) if script is None else script
    c = _Collector(file)
    lines = text.splitlines()
    code_lines: set[int] = set()
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        marker = re.match(r"^\s*(`{3,}|~{3,})", line)
        if marker and not script:
            token = marker.group(1)[0] * 3
            fence = None if fence == token else (fence or token)
            continue
        in_code = fence is not None or line.startswith(("    ", "\t"))
        if in_code:
            code_lines.add(number)
        _unicode(c, number, line, number == 1)
        _scan_line(c, number, line, script, in_code=in_code)
    _file_level(c, lines, script, code_lines)
    if not script:
        _hidden(c, text)
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
    """Scan a skill folder (or a lone SKILL.md): every file, links and binaries included."""
    folder = Path(folder)
    if folder.is_file():
        report = GuardReport(name or folder.parent.name)
        report.findings.extend(scan_text(folder.name, folder.read_text(encoding="utf-8", errors="replace"),
                                         script=False if folder.name == "SKILL.md" else None))
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
    if b"\x00" in raw[:8192]:
        return findings  # images and other binary assets: nothing to run
    text = raw.decode("utf-8", errors="replace")
    return findings + scan_text(relative, text, script=False if relative == "SKILL.md" else None)
