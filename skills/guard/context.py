"""Where a line is in a document and what that makes of it: the heading and lines above it, whether
its own sentence is about attacks or what to avoid, an example's comment that calls it unsafe, the
values a detection rule matches (Semgrep, Sigma, YARA) and its test cases, markup lines that are
only tags, and comments judged by what they say and where they are.
"""

from __future__ import annotations

import re

from skills.guard import prose
from skills.guard.collect import Collector

WARNING_CONTEXT = re.compile(
    r"\b(attack\w*|malicious|malware|never (run|execute|paste|pipe|do)|do not (run|execute|paste|pipe)|don't (run|execute"
    r"|paste|pipe)|detect\w*|red flags?|indicators?|IOCs?|phishing|suspicious|dangerous|avoid|anti-?patterns?"
    r"|what not to|bad example|exploit\w*|threats?|hunting|incident|risk\w*|unsafe|insecure|vulnerab\w*|pentest\w*"
    r"|penetration test\w*|red team\w*|CTF|forensic\w*|to flag|flag (these|this|them|it)|patterns? to (flag|catch|block"
    r"|look for)|(command|code|sql|shell|template|prompt) injection|deserialization|leaks? (the|your|secrets?|credentials?)"
    r"|(search|grep|hunt)(es|ing)?\s+([\w~/.-]+\s+){0,4}for|arbitrary (code|commands?)|(remote )?code execution|RCE"
    r"|privilege escalation|false sense of security|proof[- ]of[- ]concepts?|PoCs?|CVE-\d{4}-\d+)\b", re.IGNORECASE)
UNSAFE_COMMENT = re.compile(
    r"^\W*(unsafe|insecure|dangerous|vulnerable|vulnerability|malicious|exploit\w*|bad|wrong|anti-?pattern|(never|don't|do not)"
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
FENCE_MARKER = re.compile(r"^\s*(`{3,}|~{3,})")
EXAMPLE_CONTEXT = re.compile(r"\b(examples?|e\.g\.|for instance|looks like|sample|such as|format|syntax)\b", re.IGNORECASE)


def line_headings(lines: list[str]) -> list[str]:
    """The Markdown heading each line sits under (one pass)."""
    current, found = "", []
    for line in lines:
        if line.lstrip().startswith("#"):
            current = line[:300]
        found.append(current)
    return found


def heading_paths(lines: list[str]) -> list[str]:
    """For each line, the Markdown headings above it outside code blocks, from the document's title
    down (`# Pwn Request Attacks` / `## Go init() Injection`): what the passage it sits in is about."""
    path: list[tuple[int, str]] = []
    fence: str | None = None
    found: list[str] = []
    for line in lines:
        before, fence = fence, fence_after(fence, line)
        if before is None and fence is None:     # prose, not a fence marker
            heading = re.match(r"^(#{1,6})\s+\S", line)
            if heading:
                level = len(heading.group(1))
                path = [(n, text) for n, text in path if n < level] + [(level, line[:300])]
        found.append("\n".join(text for _, text in path))
    return found


def fence_after(fence: str | None, line: str) -> str | None:
    """The code fence open after `line` (its marker character, or None), given the one open before it:
    a marker opens a block, and closes the open one only when it is of the same character."""
    marker = FENCE_MARKER.match(line)
    if not marker:
        return fence
    token = marker.group(1)[0]
    return token if fence is None else None if fence == token else fence


def section_context(lines: list[str], headings: list[str], index: int) -> str:
    return headings[index] + "\n" + "\n".join(line[:2000] for line in lines[max(0, index - 3):index])


def hidden_comments(c: Collector, folded: list[str], where: str, fenced: set[int]) -> None:
    """Comments and invisible markup, judged by what they say and where they are."""
    for number, body in prose.hidden_blocks("\n".join(folded)):
        verdict = prose.hidden_instruction(body, "example" if number in fenced else where)
        if verdict:
            c.add(number, "hidden-instructions", verdict[0], verdict[1], body)  # type: ignore[arg-type]


PLAIN_TAGS = re.compile(r"^\s*(</?[\w:.-]+(\s+[\w:.-]+\s*=\s*(\"[\w:./#+@-]*\"|'[\w:./#+@-]*'))*\s*/?>\s*)+$")
"""A line of markup that is only tags whose attribute values are single words, names or URLs (the bulk of
an XML schema): no command, sentence or path that does something can be written in it."""


def rule_values(lang: str, lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """In a detection rule (Semgrep, Sigma or YARA, in a YAML, JSON or plain block) the values it matches are
    patterns, not commands: those lines keep only their key for the command rules."""
    if lang not in RULE_LANGS or not lines:
        return lines
    first = next((line for _, line in lines if line.strip()), "")
    if lang == "" and not re.match(r"^\s*(rules?\b|title:|detection:|id:|import\s+\")", first):
        return lines
    return [(number, line.split(":", 1)[0] + ":" if RULE_VALUE.match(line) and ":" in line.split("=", 1)[0]
             else line.split("=", 1)[0] + "=" if RULE_VALUE.match(line) else line) for number, line in lines]


def rule_fixtures(c: Collector, lines: list[str]) -> None:
    """A line right after a `# ruleid:` / `# ok:` annotation is a detection rule's test case (in a file that
    marks at least one `ruleid:`, the way Semgrep tests are written)."""
    if not any("ruleid" in line and re.match(r"^\s*(#|//|--|;)\s*(todo)?ruleid\s*:", line) for line in lines):
        return
    for index, line in enumerate(lines[:-1]):
        if RULE_FIXTURE.match(line):
            c.demote(index + 2, "a test case of a detection rule, marked ruleid or ok")


def warned_sentence(line: str, excerpt: str) -> bool:
    """The sentence of `line` that holds the flagged text is itself about attacks or what to avoid ("Never
    run `...`", "Attackers paste `...`"): another sentence's warning ("Avoid long answers. Run `...`") is
    not. When the flagged text cannot be placed in one sentence the line as a whole decides."""
    needle = " ".join(excerpt.split())[:40]
    for sentence in re.split(r"(?<=[.;!?])\s+", line):
        if needle and needle in " ".join(sentence.split()):
            words = prose.context_words(sentence)
            return bool(WARNING_CONTEXT.search(words) or prose.META.search(words) and "`" in sentence)
    return True
