"""What a file in a skill is, from its path and first line: a script (Python, shell or another
interpreter's), a container build file (a Dockerfile: its RUN steps are shell run inside an image
build), a document (SKILL.md's instructions, a reference, an example) or markup and data read as a
template; which code-block languages are shell, Python or a Dockerfile; which bytes mark a binary.
"""

from __future__ import annotations

import re
from pathlib import Path

SCRIPT_SUFFIXES = {".sh", ".bash", ".zsh", ".ksh", ".fish", ".py", ".pyw", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl",
                   ".php", ".ps1", ".psm1", ".bat", ".cmd", ".lua", ".go", ".rs", ".java", ".kt", ".swift", ".r",
                   ".command", ".tcl", ".awk"}
SHELL_LANGS = {"", "sh", "bash", "shell", "zsh", "console", "terminal", "shell-session", "shellsession", "ksh", "fish"}
PYTHON_LANGS = {"python", "py", "python3", "pycon"}
CONTAINER_LANGS = {"dockerfile", "docker", "containerfile"}
CONTAINER_FILE = re.compile(r"^(dockerfile|containerfile)(\.(?!(md|markdown|mdx|rst|txt)$)[\w-]+)?$|\.(dockerfile|containerfile)$",
                            re.IGNORECASE)
BASH_BINARY_CHECK = 80
"""bash refuses a script as binary only when a NUL is in its first 80 bytes: later NULs hide nothing from it."""
BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"SQLite format",
                b"wOFF", b"wOF2", b"\x00\x00\x01\x00", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf", b"OggS", b"ID3", b"fLaC")
EXECUTABLE_MAGIC = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")


DATA_SUFFIXES = {".xsd", ".xml", ".dtd", ".xsl", ".xslt", ".json", ".yaml", ".yml", ".toml", ".csv", ".tsv", ".html",
                 ".htm", ".css", ".svg", ".md", ".markdown", ".mdx", ".rst", ".ini", ".lock", ".map"}
"""Data and markup kept beside scripts (schemas, fixtures, templates): read as documents, not run as shell."""


def is_container_build(path: str) -> bool:
    """A Dockerfile or Containerfile (`Dockerfile`, `Dockerfile.dev`, `app.dockerfile`), wherever it is kept."""
    return bool(CONTAINER_FILE.search(Path(path).name))


def is_script(path: str, text: str = "") -> bool:
    if is_container_build(path) and not text.startswith("#!"):
        return False
    parts = Path(path).parts
    suffix = Path(path).suffix.lower()
    return (suffix in SCRIPT_SUFFIXES or (len(parts) > 1 and parts[0] in ("scripts", "bin") and suffix not in DATA_SUFFIXES)
            or text.startswith("#!"))


DOCUMENT_SUFFIXES = {".md", ".markdown", ".mdx", ".rst", ".txt", ""}
EXAMPLE_DIRS = {"examples", "example", "templates", "template", "assets", "samples", "sample", "fixtures", "testdata",
                "test-data", "test_data"}


def document_kind(path: str) -> str:
    """How a non-script file is read: `instructions` (SKILL.md, what the agent follows), `container` (a
    Dockerfile), `reference` (other Markdown or text), `example` (Markdown under examples/, templates/, assets/...), `template` (markup
    and data: HTML, XML, schemas, JSON, YAML, CSS, SVG; no Markdown structure)."""
    parts = Path(path).parts
    if path == "SKILL.md":
        return "instructions"
    if is_container_build(path):
        return "container"
    if Path(path).suffix.lower() not in DOCUMENT_SUFFIXES:
        return "template"
    return "example" if any(part.lower() in EXAMPLE_DIRS for part in parts[:-1]) else "reference"


def is_python(path: str, text: str) -> bool:
    first = text.split("\n", 1)[0]
    return Path(path).suffix.lower() in (".py", ".pyw") or first.startswith("#!") and "python" in first


def is_shell(path: str, text: str) -> bool:
    first = text.split("\n", 1)[0]
    suffix = Path(path).suffix.lower()
    return suffix in (".sh", ".bash", ".zsh", ".ksh", ".fish", ".command") or first.startswith("#!") and bool(
        re.search(r"\b(ba|z|k|da|fi)?sh\b", first)) or suffix == "" and not first.startswith("#!")
